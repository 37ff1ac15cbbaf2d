"""Audit records derived from what the mirror observes, and the verification of the chain.

Each create, update, delete, state change, approval, admission denial and automatic rollback
becomes one row of
``audit_events`` (written through ``audit_append`` in the same transaction as the object, so a
replayed event, which changes no object, adds no audit row either). Rows are chained in arrival
order; the time the object records for the event, if any, is kept as ``occurred_at``.

A watch does not say who deleted an object. With the API server's audit log (``request_log``),
its record of the DELETE request is the delete row; without it, the watch-derived delete row
names no deleter and keeps the last modifier apart, in ``change.lastModifiedBy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from kubernetes import client
from psycopg.types.json import Jsonb

from gl_api import labels
from gl_api.labels import LAST_MODIFIED_BY
from gl_kube.events import ACTOR_ANNOTATION, ROLLED_BACK
from gl_kube.events import ADMISSION_DENIED as DENIAL_REASON
from gl_mirror import anchor
from gl_mirror.anchor import Anchor

UNKNOWN = "unknown"
DELETER_UNKNOWN = "unknown (a watch does not say who deleted)"
VANISHED_ACTOR = "unknown (deleted while the mirror was not watching)"
# kopf's own bookkeeping, not a user's change.
_IGNORED_ANNOTATIONS = ("registry.greenlang.ai/last-handled-configuration", "kopf.zalando.org/")


@dataclass(frozen=True)
class AuditRecord:
    operation: str
    actor: str
    change: dict[str, Any] | None = None
    decision: str | None = None
    reason: str | None = None
    request_uid: str | None = None
    at: datetime | None = None  # when it happened, as the object records it (stored as occurred_at)


def _annotations(obj: dict[str, Any] | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def _user_visible(obj: dict[str, Any] | None) -> dict[str, Any]:
    """What a user changes: spec, labels and annotations other than controllers' bookkeeping."""
    obj = obj or {}
    annotations = {k: v for k, v in _annotations(obj).items()
                   if not k.startswith(_IGNORED_ANNOTATIONS) and k != LAST_MODIFIED_BY}
    return {"spec": obj.get("spec"), "labels": (obj.get("metadata") or {}).get("labels") or {},
            "annotations": annotations}


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {key: {"before": before.get(key), "after": after.get(key)}
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)}


def records(kind: str, event_type: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
            deletes_logged: bool = False) -> list[AuditRecord]:
    """``deletes_logged``: the API server's audit log records each DELETE with its user (``request_log``)."""
    if kind == "Event":
        return (_denial(after) + _rollback(after)) if event_type == "ADDED" else []
    if event_type == "DELETED":
        return [] if deletes_logged else [_delete(DELETER_UNKNOWN, before or after)]
    if event_type == "VANISHED":
        return [_delete(VANISHED_ACTOR, before or after)]
    if before is None:
        # First sight, maybe after the fact (a relist): what the object itself records still counts.
        created = [AuditRecord("create", _annotations(after).get(labels.CREATED_BY, UNKNOWN),
                               {"after": _user_visible(after)["spec"]})]
        approvals = [AuditRecord("approval", a["user"], {"approval": a}, decision="approved")
                     for a in ((after or {}).get("spec") or {}).get("approvals") or []]
        return created + approvals + [_state_change(entry) for entry in
                                      ((after or {}).get("status") or {}).get("stateHistory") or []]
    result = []
    changed = _diff(_user_visible(before), _user_visible(after))
    spec_before, spec_after = (before.get("spec") or {}), ((after or {}).get("spec") or {})
    previous_approvals = spec_before.get("approvals") or []
    added = [a for a in spec_after.get("approvals") or [] if a not in previous_approvals]
    for approval in added:
        result.append(AuditRecord("approval", approval["user"], {"approval": approval}, decision="approved"))
    if added and set(changed) == {"spec"} and _diff(
            {k: v for k, v in spec_before.items() if k != "approvals"},
            {k: v for k, v in spec_after.items() if k != "approvals"}) == {}:
        changed = {}  # the spec change was only the approval, already recorded
    if changed:
        result.append(AuditRecord("update", _annotations(after).get(LAST_MODIFIED_BY, UNKNOWN), changed))
    seen = len((before.get("status") or {}).get("stateHistory") or [])
    for entry in (((after or {}).get("status") or {}).get("stateHistory") or [])[seen:]:
        result.append(_state_change(entry))
    return result


def _delete(actor: str, obj: dict[str, Any] | None) -> AuditRecord:
    """The last modifier is not the deleter: kept beside the row, never as its actor."""
    last = _annotations(obj).get(LAST_MODIFIED_BY)
    return AuditRecord("delete", actor, {"lastModifiedBy": last} if last else None)


def _state_change(entry: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        "state_change", entry.get("by") or UNKNOWN,
        {"from": entry.get("from"), "to": entry.get("to"), "promotion": entry.get("promotion"),
         "fastTrack": "[fast track" in (entry.get("reason") or "")},
        decision=entry.get("to"), reason=entry.get("reason"),
        at=datetime.fromisoformat(entry["at"].replace("Z", "+00:00")) if entry.get("at") else None)


def _audited(event: dict[str, Any], reason: str) -> bool:
    """An Event of the registry's own components: the API server admits the label from no one else."""
    return event.get("reason") == reason and labels.AUDIT in ((event.get("metadata") or {}).get("labels") or {})


def _denial(event: dict[str, Any] | None) -> list[AuditRecord]:
    if not event or not _audited(event, DENIAL_REASON):
        return []
    return [AuditRecord("admission_denial", _annotations(event).get(ACTOR_ANNOTATION, UNKNOWN),
                        {"object": event.get("involvedObject")}, decision="denied", reason=event.get("message"))]


def _rollback(event: dict[str, Any] | None) -> list[AuditRecord]:
    """An automatic rollback, decided by the operator on measured SLOs; the message carries the figures."""
    if not event or not _audited(event, ROLLED_BACK):
        return []
    actor = event.get("reportingComponent") or (event.get("source") or {}).get("component") or UNKNOWN
    return [AuditRecord("rollback", actor, {"object": event.get("involvedObject")}, decision="rolled_back",
                        reason=event.get("message"))]


def subject(kind: str, obj: dict[str, Any]) -> tuple[str, str, str, str | None]:
    """(kind, namespace, name, uid) the record is about; an Event is about its involved object."""
    if kind == "Event":
        involved = obj.get("involvedObject") or {}
        return involved.get("kind", ""), involved.get("namespace") or "", involved.get("name", ""), involved.get("uid")
    meta = obj["metadata"]
    return kind, meta.get("namespace") or "", meta["name"], meta.get("uid")


def append(cur: psycopg.Cursor[Any], kind: str, obj: dict[str, Any], record: AuditRecord) -> None:
    """Append in arrival order; the database stamps the row's time, the event's own goes beside it."""
    subject_kind, namespace, name, uid = subject(kind, obj)
    cur.execute("SELECT audit_append(%s, %s, NULL, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (record.at, record.actor, subject_kind, namespace, name, uid,
                 record.operation, Jsonb(record.change) if record.change is not None else None,
                 record.request_uid, record.decision, record.reason))


def verify(conn: psycopg.Connection[Any], head_anchor: Anchor | None, unanchored: str | None) -> dict[str, Any]:
    """What `gl audit verify` reports: every problem in id order, the first bad row, the head and its anchor.

    ``head_anchor`` must have been read before, so that the rows it names are in the snapshot read
    here. Without one, ``unanchored`` is reported as a problem (None: a copy checked offline, whose
    head is compared with nothing).
    """
    anchor_id, anchor_hash = (head_anchor.last_id, head_anchor.hash) if head_anchor else (None, None)
    # One statement, one snapshot.
    rows, head_id, head_hash, head_at, expired_through, found = conn.execute("""
        SELECT (SELECT count(*) FROM audit_events), h.id, h.hash, h.at, (SELECT max(last_id) FROM audit_anchors),
               (SELECT json_agg(json_build_array(v.id, v.problem) ORDER BY v.id NULLS FIRST)
                FROM audit_verify(%s, %s) v)
        FROM audit_head() h""", (anchor_id, anchor_hash)).fetchone()
    conn.rollback()
    problems = [{"id": row_id, "problem": problem} for row_id, problem in found or []]
    if head_anchor is None and unanchored and head_id > 0:
        problems.insert(0, {"id": None, "problem": unanchored})
    bad_rows = [p["id"] for p in problems if p["id"] is not None]
    return {"rows": rows, "intact": not problems, "firstBadRow": min(bad_rows) if bad_rows else None,
            "problems": problems, "head": {"id": head_id, "hash": head_hash,
                                           "at": head_at.isoformat() if head_at else None},
            "anchor": head_anchor.to_json() if head_anchor else None, "expiredThrough": expired_through}


def verify_anchored(dsn: str, api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """Read the anchor, then verify the table against it; a missing or damaged anchor is a problem."""
    where = anchor.location(namespace)
    try:
        head_anchor = anchor.read(api, namespace)
        unanchored = f"the chain head is not anchored ({where} not found): removed newest rows could not be detected"
    except anchor.MalformedAnchor as error:
        head_anchor, unanchored = None, f"{error}: removed newest rows could not be detected"
    with psycopg.connect(dsn) as conn:
        report = verify(conn, head_anchor, unanchored)
    return {**report, "anchoredIn": where}
