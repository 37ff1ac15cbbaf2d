"""Audit rows from the API server's own audit log (its webhook backend posts `audit.k8s.io/v1` EventLists).

The API server authenticated the request, so its record says who acted (and whom they
impersonated), from where, what was asked and what was answered, including refusals with their
messages. That is what the watch-derived rows cannot know: above all, who deleted an object.

One row per request, when it completed (stage ``ResponseComplete``, or ``Panic``), for the
registry's groups only. ``request_uid`` holds the API server's ``auditID``: a batch the API
server sends again (it retries on any error) adds no row twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from gl_api import GROUP, kinds
from gl_mirror import query_api

SOURCE = "kube-apiserver"
STAGES = ("ResponseComplete", "Panic")
GROUPS = (GROUP, query_api.GROUP)
KINDS = {**{k.plural: k.kind for k in kinds.ALL}, **{name: kind for name, (kind, _) in query_api.RESOURCES.items()}}
# One ingest at a time: a retried batch then finds what its first attempt stored (not audit_append's lock).
_INGEST_LOCK = 7412003


@dataclass(frozen=True)
class RequestRecord:
    audit_id: str
    actor: str
    kind: str
    namespace: str
    name: str | None
    uid: str | None
    operation: str  # the request's verb: get, list, watch, create, update, patch, delete, deletecollection
    change: dict[str, Any]
    decision: str  # allowed, denied or failed
    reason: str | None  # the API server's message when it did not succeed
    occurred_at: datetime | None  # when the API server received the request


def records(body: Any) -> list[RequestRecord]:
    """The rows an EventList holds; ValueError naming the field when it is not one."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object: an audit.k8s.io/v1 EventList")
    if body.get("apiVersion") != "audit.k8s.io/v1" or body.get("kind") != "EventList":
        raise ValueError(f"apiVersion/kind must be audit.k8s.io/v1 EventList, not {body.get('apiVersion')} "
                         f"{body.get('kind')}: start kube-apiserver with --audit-webhook-version=audit.k8s.io/v1")
    items = body.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError("items must be a list of audit events")
    found = [record(_storable(event), f"items[{index}]") for index, event in enumerate(items)]
    return [r for r in found if r is not None]


NUL_STANDIN = "\ufffd"


def _storable(value: Any) -> Any:
    """``value`` with every NUL character replaced by U+FFFD: Postgres text cannot hold NUL, and a
    client that puts one in an annotation must not make its batch, with other users' requests, fail."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_STANDIN)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def record(event: Any, where: str = "event") -> RequestRecord | None:
    """One event's row, or None for a stage or group the registry does not record."""
    if not isinstance(event, dict):
        raise ValueError(f"{where} must be an audit event object")
    for field in ("auditID", "stage", "verb", "user"):
        if not event.get(field):
            raise ValueError(f"{where}.{field} is missing: every audit.k8s.io/v1 Event has it")
    ref = event.get("objectRef") or {}
    if event["stage"] not in STAGES or ref.get("apiGroup") not in GROUPS:
        return None
    user = _user(event["user"], f"{where}.user")
    impersonated = _user(event["impersonatedUser"], f"{where}.impersonatedUser") \
        if event.get("impersonatedUser") else None
    status = event.get("responseStatus") or {}
    code = status.get("code")
    annotations = event.get("annotations") or {}
    change: dict[str, Any] = {
        "source": SOURCE, "verb": event["verb"], "requestURI": event.get("requestURI"),
        "apiGroup": ref.get("apiGroup"), "apiVersion": ref.get("apiVersion"), "resource": ref.get("resource"),
        "user": user, "sourceIPs": event.get("sourceIPs") or [], "userAgent": event.get("userAgent"),
        "responseCode": code, "stage": event["stage"],
    }
    if ref.get("subresource"):
        change["subresource"] = ref["subresource"]
    if impersonated:
        change["impersonatedUser"] = impersonated
        change["impersonator"] = user["username"]
    authorization = {key.removeprefix("authorization.k8s.io/"): value for key, value in annotations.items()
                     if key.startswith("authorization.k8s.io/")}
    if authorization:
        change["authorization"] = authorization
    if event.get("requestObject") is not None:
        change["request"] = event["requestObject"]
    decision = _decision(code, annotations, status.get("message") or "")
    return RequestRecord(
        audit_id=event["auditID"], actor=(impersonated or user)["username"],
        kind=KINDS.get(ref.get("resource") or "", ref.get("resource") or ""), namespace=ref.get("namespace") or "",
        name=ref.get("name") or None, uid=ref.get("uid") or _deleted_uid(event.get("responseObject")),
        operation=event["verb"], change=change, decision=decision,
        reason=None if decision == "allowed" else status.get("message") or status.get("reason") or None,
        occurred_at=_time(event.get("requestReceivedTimestamp"), f"{where}.requestReceivedTimestamp"))


def _user(info: Any, where: str) -> dict[str, Any]:
    if not isinstance(info, dict) or not info.get("username"):
        raise ValueError(f"{where}.username is missing")
    return {"username": info["username"], "groups": info.get("groups") or []}


def _decision(code: int | None, annotations: dict[str, str], message: str) -> str:
    """Refused by authentication, authorization or admission: denied. Any other failure: failed."""
    if code is not None and code < 400:
        return "allowed"
    if code in (401, 403) or annotations.get("authorization.k8s.io/decision") == "forbid":
        return "denied"
    # Admission refusals come as 400 or 422 too (a webhook chooses its code; a ValidatingAdmissionPolicy answers 422).
    if any(key.startswith("validation.policy.admission.k8s.io/validation_failure") for key in annotations) \
            or "denied the request" in message or "denied request" in message:
        return "denied"
    return "failed"


def _deleted_uid(response: Any) -> str | None:
    """A delete answers with the deleted object, or a Status naming it."""
    if not isinstance(response, dict):
        return None
    return (response.get("metadata") or {}).get("uid") or (response.get("details") or {}).get("uid")


def _time(value: Any, where: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"{where} is not an RFC 3339 time: {value!r}") from error


def store(conn: psycopg.Connection[Any], found: list[RequestRecord]) -> tuple[int, int]:
    """Append the rows not stored before, all or none; returns (stored, already stored).

    ``audit_append`` chains each row in arrival order; the request's own time goes beside it.
    """
    if not found:
        return 0, 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_INGEST_LOCK,))
        seen = {row[0] for row in cur.execute("SELECT request_uid FROM audit_events WHERE request_uid = ANY(%s)",
                                              ([r.audit_id for r in found],))}
        fresh = []
        for r in found:
            if r.audit_id not in seen:  # also an event repeated within the batch
                seen.add(r.audit_id)
                fresh.append(r)
        cur.executemany("SELECT audit_append(%s, %s, NULL, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [(r.occurred_at, r.actor, r.kind, r.namespace, r.name, r.uid, r.operation, Jsonb(r.change),
                          r.audit_id, r.decision, r.reason) for r in fresh])
    return len(fresh), len(found) - len(fresh)
