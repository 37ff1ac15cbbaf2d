"""What the mutating webhook fills in on Promotions: the time things happened, which CEL cannot know.

Identity (created-by, last-modified-by) is stamped by the API server itself
(crds/admission_identity.yaml); this webhook adds only what needs a clock: the server's time
and the approver's groups on a new approval, and a default sunset on a deprecation request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gl_api.conditions import timestamp

DEFAULT_SUNSET = timedelta(days=90)


def promotion_defaults(operation: str, body: dict[str, Any], old: dict[str, Any] | None,
                       userinfo: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Spec fields to fill: a default sunset, and the server's time and the approver's groups on new approvals."""
    spec = body.get("spec") or {}
    changes: dict[str, Any] = {}
    deprecation = spec.get("deprecation")
    if operation == "CREATE" and deprecation and not deprecation.get("sunsetAt"):
        changes["deprecation"] = {**deprecation, "sunsetAt": timestamp(now + DEFAULT_SUNSET)}
    before = (old or {}).get("spec", {}).get("approvals") or []
    approvals = spec.get("approvals") or []
    stamped = []
    for approval in approvals:
        if approval in before or approval.get("user") != userinfo.get("username"):
            stamped.append(approval)  # others' approvals are the validating policies' business
            continue
        stamped.append({**approval, "at": timestamp(now), "groups": list(userinfo.get("groups") or [])})
    if stamped != approvals:
        changes["approvals"] = stamped
    return changes


def json_patch(changes: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec changes as JSON Patch operations (``add`` replaces a member that exists)."""
    return [{"op": "add", "path": f"/spec/{key}", "value": value} for key, value in changes.items()]
