"""metav1.Condition helpers: set a condition without losing its lastTransitionTime."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def timestamp(moment: datetime | None = None) -> str:
    return (moment or now()).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def set_condition(conditions: list[dict[str, Any]] | None, type_: str, status: bool | str, reason: str,
                  message: str, generation: int | None, at: datetime | None = None) -> list[dict[str, Any]]:
    """Return ``conditions`` with ``type_`` set; lastTransitionTime moves only when the status does."""
    status_text = status if isinstance(status, str) else ("True" if status else "False")
    result = [dict(c) for c in conditions or [] if c.get("type") != type_]
    previous = next((c for c in conditions or [] if c.get("type") == type_), None)
    changed = previous is None or previous.get("status") != status_text
    condition = {
        "type": type_, "status": status_text, "reason": reason, "message": message,
        "lastTransitionTime": timestamp(at) if changed else previous["lastTransitionTime"],  # type: ignore[index]
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    result.append(condition)
    return sorted(result, key=lambda c: c["type"])


def get_condition(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def is_true(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    condition = get_condition(conditions, type_)
    return condition is not None and condition.get("status") == "True"
