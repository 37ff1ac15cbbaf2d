"""The new status of an AgentVersion after a state change: state, history, conditions, deprecation.

Pure: the caller writes the result with an optimistic-concurrency precondition, so a
transition is applied once even when two workers (or a restarted operator) race.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gl_api import conditions
from gl_api.conditions import timestamp
from gl_api.lifecycle import State

ACCEPTED = "Accepted"
READY = "Ready"


@dataclass(frozen=True)
class Transition:
    to: State
    by: str
    reason: str
    promotion: str | None = None
    fast_track: str | None = None
    replacement: str | None = None
    sunset_at: datetime | None = None


def already_applied(status: dict[str, Any], promotion: str, promotion_created: datetime) -> bool:
    """True when this Promotion's transition is in the history (an earlier run applied it)."""
    for entry in status.get("stateHistory") or []:
        if entry.get("promotion") == promotion and conditions.parse_timestamp(entry["at"]) >= promotion_created:
            return True
    return False


def publish_status(status: dict[str, Any], generation: int, by: str, now: datetime) -> dict[str, Any]:
    """A newly published version: draft, with the publish recorded."""
    return {
        "state": State.draft.value,
        "observedGeneration": generation,
        "stateHistory": [{"to": State.draft.value, "at": timestamp(now), "by": by, "reason": "published"}],
        "conditions": conditions.set_condition(status.get("conditions"), ACCEPTED, True, "Published",
                                               "version accepted into the registry as draft", generation, now),
    }


def transition_status(status: dict[str, Any], change: Transition, generation: int, now: datetime) -> dict[str, Any]:
    """The status fields a transition rewrites (to be merge-patched; other fields stay untouched)."""
    current = status.get("state")
    reason = change.reason
    if change.fast_track:
        reason = f"{reason} [fast track: incident {change.fast_track}]".strip()
    entry: dict[str, Any] = {"from": current, "to": change.to.value, "at": timestamp(now), "by": change.by,
                             "reason": reason}
    if change.promotion:
        entry["promotion"] = change.promotion
    patch: dict[str, Any] = {
        "state": change.to.value,
        "observedGeneration": generation,
        "stateHistory": [*(status.get("stateHistory") or []), entry],
        "conditions": conditions.set_condition(
            status.get("conditions"), READY, change.to in (State.experimental, State.certified),
            "State" + change.to.value.capitalize(), f"{current} -> {change.to.value}: {reason}", generation, now),
    }
    if change.to is State.deprecated:
        patch["deprecation"] = {"replacement": change.replacement, "announcedAt": timestamp(now),
                                "sunsetAt": timestamp(change.sunset_at)}
    elif current == State.deprecated.value and change.to is State.certified:
        patch["deprecation"] = None  # a rolled-back deprecation no longer has a sunset
    return patch


def sunset_at(requested: str | None, default: timedelta, now: datetime) -> datetime:
    if requested:
        return conditions.parse_timestamp(requested)
    return now + default
