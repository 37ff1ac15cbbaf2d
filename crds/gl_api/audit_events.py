"""The audit trail's event types: the words users query by, mapped onto the rows the trail records.

``gl audit query --event-type agent.promoted`` asks the mirror for ``auditevents?eventType=agent.promoted``.
The trail itself keeps what was observed (``audit_events``: kind, operation, change, decision,
reason, request_uid; see gl_mirror.audit and gl_mirror.request_log); :func:`sql_case` is the one
mapping from those columns to an event type, used by the mirror both to filter (in SQL) and to
label each row it returns. A row has at most one type; rows of no type (updates, reads, the first
``draft`` entry of a state history, ...) are still in the trail, found by ``operation``.

Lifecycle moves come from the version's state history (``state_change`` rows, ``change.from`` and
``change.to``), classified by the one lifecycle table (gl_api.lifecycle), so the vocabulary
follows it.

Pure: no database here, only the SQL text; :func:`parse_time` reads the query's time bounds.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from gl_api.lifecycle import BACKWARD, TRANSITIONS, State

_FORWARD = [(a, b) for a, targets in TRANSITIONS.items() for b in targets if (a, b) not in BACKWARD]
_PROMOTIONS = [(a, b) for a, b in _FORWARD if b in (State.experimental, State.certified)]
# What each event type is, as docs/cli.md and `gl audit query --help` say it.
EVENT_TYPES: dict[str, str] = {
    "agent.published": "an AgentVersion was created (published), by whoever created it",
    "agent.promoted": "a version moved forward to " + " or ".join(sorted({b.value for _, b in _PROMOTIONS})),
    "agent.deprecated": "a version moved to deprecated",
    "agent.retired": "a version moved to retired",
    "agent.rolled_back": "a version moved back: " + ", ".join(f"{a.value}->{b.value}" for a, b in sorted(BACKWARD)),
    "agent.approved": "an approval was added to a Promotion",
    "deployment.created": "an AgentDeployment was created",
    "deployment.rolled_back": "the operator rolled an AgentDeployment back on an SLO breach",
    "policy.denied": "an admission policy refused a request: the registry's webhooks (Rego) or the API "
                     "server's own admission policies",
    "access.denied": "the API server refused a request for want of authentication or permission (RBAC, or the "
                     "mirror's own access check); needs the API server's audit log",
}


class UnknownEventType(ValueError):
    pass


def check(event_type: str) -> str:
    """``event_type`` if it is one of :data:`EVENT_TYPES`; otherwise the error lists them."""
    if event_type not in EVENT_TYPES:
        raise UnknownEventType(f"unknown event type {event_type!r}; use one of: {', '.join(EVENT_TYPES)}")
    return event_type


def _pairs(pairs: list[tuple[State, State]]) -> str:
    return ", ".join(f"('{a.value}', '{b.value}')" for a, b in sorted(pairs))


def sql_case() -> str:
    """An SQL expression over an ``audit_events`` row: its event type, or NULL.

    Rows from the API server's audit log carry its ``request_uid``; watch-derived rows do not. A
    creation is counted once, from the watch (every cluster has it). Refusals by the registry's
    webhooks are counted from their AdmissionDenied Events (``admission_denial``), which name the
    policy's message; the same request's row from the API server's log is not counted again.
    """
    state_change = "kind = 'AgentVersion' AND operation = 'state_change'"
    move = "(change ->> 'from', change ->> 'to')"
    request_denied = "request_uid IS NOT NULL AND decision = 'denied'"
    # The API server words an admission refusal so; any other refusal is authentication or authorization.
    by_admission_policy = "strpos(coalesce(reason, ''), 'ValidatingAdmissionPolicy ') > 0"
    not_by_webhook = "strpos(coalesce(reason, ''), 'admission webhook ') = 0"
    return f"""CASE
        WHEN kind = 'AgentVersion' AND operation = 'create' AND request_uid IS NULL THEN 'agent.published'
        WHEN {state_change} AND {move} IN ({_pairs(_PROMOTIONS)}) THEN 'agent.promoted'
        WHEN {state_change} AND change ->> 'to' = '{State.deprecated.value}' THEN 'agent.deprecated'
        WHEN {state_change} AND change ->> 'to' = '{State.retired.value}' THEN 'agent.retired'
        WHEN {state_change} AND {move} IN ({_pairs(sorted(BACKWARD))}) THEN 'agent.rolled_back'
        WHEN kind = 'Promotion' AND operation = 'approval' THEN 'agent.approved'
        WHEN kind = 'AgentDeployment' AND operation = 'create' AND request_uid IS NULL THEN 'deployment.created'
        WHEN kind = 'AgentDeployment' AND operation = 'rollback' THEN 'deployment.rolled_back'
        WHEN operation = 'admission_denial' THEN 'policy.denied'
        WHEN {request_denied} AND {by_admission_policy} THEN 'policy.denied'
        WHEN {request_denied} AND {not_by_webhook} THEN 'access.denied'
    END"""


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# RFC 3339: a date, 'T' (or a space), a time with optional fraction, and Z or an offset.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_time(text: str, field: str, end: bool = False) -> datetime:
    """A query bound: a date (a UTC day; as an ``end``, through the end of that day) or an RFC 3339 time."""
    hint = f"{field} must be a date such as 2025-11-01 or an RFC 3339 time such as 2025-11-01T09:30:00Z"
    try:
        if _DATE.match(text):
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            return start + timedelta(days=1) if end else start
        if _RFC3339.match(text):
            return datetime.fromisoformat(text.upper().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise ValueError(f"{hint}, not {text!r} (no such day or time)") from None
    raise ValueError(f"{hint}, not {text!r}")
