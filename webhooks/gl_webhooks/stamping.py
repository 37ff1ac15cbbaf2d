"""What the mutating webhook writes: who created and last changed an object, and server-side defaults.

Identity comes from the admission request's userInfo, never from the client: a client-supplied
created-by is overwritten on create and restored on update.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gl_api import labels
from gl_api.conditions import timestamp

LAST_MODIFIED_BY = labels.LAST_MODIFIED_BY
DEFAULT_SUNSET = timedelta(days=90)


def annotations(operation: str, body: dict[str, Any], old: dict[str, Any] | None,
                username: str) -> dict[str, str]:
    """The annotations to set; empty when they already say the right thing."""
    current = body["metadata"].get("annotations") or {}
    if operation == "CREATE" or old is None:
        creator = username
    else:
        creator = (old["metadata"].get("annotations") or {}).get(labels.CREATED_BY, "")
    wanted = {LAST_MODIFIED_BY: username}
    if creator:
        wanted[labels.CREATED_BY] = creator
    return {key: value for key, value in wanted.items() if current.get(key) != value}


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
