"""Check approvals with SubjectAccessReviews: does each approver (still) hold the `approve` verb?

The API server already refused approvals given in someone else's name or without the verb
(crds/admission_promotion-identity.yaml); this re-check at decision time catches an approver
whose rights were revoked since, and enforces four eyes even if that policy was removed.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from gl_kube.access import may_approve
from gl_api.promotion_checks import ApprovalVerdict


def verdicts(api: client.ApiClient, promotion: dict[str, Any], requester: str) -> list[ApprovalVerdict]:
    meta = promotion["metadata"]
    result = []
    for approval in promotion["spec"].get("approvals") or []:
        user = approval["user"]
        if not requester:
            result.append(ApprovalVerdict(user, False, "the Promotion has no recorded requester, so four eyes "
                                                       "cannot be shown"))
        elif user == requester:
            result.append(ApprovalVerdict(user, False, "the requester cannot approve their own Promotion"))
        elif not may_approve(api, user, approval.get("groups"), meta["namespace"], meta["name"]):
            result.append(ApprovalVerdict(user, False, f"SubjectAccessReview: {user} may not approve promotions in "
                                                       f"{meta['namespace']}"))
        else:
            result.append(ApprovalVerdict(user, True, "holds the approve verb"))
    return result
