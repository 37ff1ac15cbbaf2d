"""May this user do that? SubjectAccessReviews, asked of the API server's own authorizer (RBAC)."""

from __future__ import annotations

from collections.abc import Sequence

from kubernetes import client

from gl_api import GROUP

APPROVE_VERB = "approve"


def allowed(api: client.ApiClient, user: str, groups: Sequence[str] | None, verb: str, resource: str, *,
            group: str = GROUP, namespace: str | None = None, name: str | None = None) -> bool:
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=list(groups) if groups else None,
        resource_attributes=client.V1ResourceAttributes(group=group, resource=resource, verb=verb,
                                                        namespace=namespace, name=name)))
    return bool(client.AuthorizationV1Api(api).create_subject_access_review(review).status.allowed)


def may_approve(api: client.ApiClient, user: str, groups: Sequence[str] | None, namespace: str,
                promotion: str) -> bool:
    """Does ``user`` hold the custom verb ``approve`` on this Promotion (as for CertificateSigningRequests)?"""
    return allowed(api, user, groups, APPROVE_VERB, "promotions", namespace=namespace, name=promotion)
