"""Writes to the mirror's tables: idempotent, so replaying any event (or a whole relist) is harmless.

Current rows move only forward in resourceVersion; history rows are keyed by
(uid, resourceVersion, event type), so a replay inserts nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from gl_mirror import audit, search_index


@dataclass(frozen=True)
class Change:
    """One watch event (ADDED, MODIFIED, DELETED) for one object."""

    kind: str
    event_type: str
    obj: dict[str, Any]

    @property
    def resource_version(self) -> int:
        return int(self.obj["metadata"]["resourceVersion"])


@dataclass(frozen=True)
class Relist:
    """A full list of one kind: everything not in it was deleted while we were not watching."""

    kind: str
    items: list[dict[str, Any]]
    resource_version: int


@dataclass
class Batch:
    changes: list[Change | Relist] = field(default_factory=list)
    bookmarks: dict[str, int] = field(default_factory=dict)


def _row(kind: str, obj: dict[str, Any]) -> tuple[Any, ...]:
    meta = obj["metadata"]
    return (meta["uid"], kind, meta.get("namespace") or "", meta["name"], int(meta["resourceVersion"]), Jsonb(obj))


_UPSERT = """
INSERT INTO registry_objects AS o (uid, kind, namespace, name, resource_version, body, deleted, deleted_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)
ON CONFLICT (uid) DO UPDATE SET resource_version = EXCLUDED.resource_version, body = EXCLUDED.body,
    deleted = EXCLUDED.deleted, deleted_at = EXCLUDED.deleted_at, updated_at = now()
WHERE o.resource_version < EXCLUDED.resource_version
   OR (o.resource_version = EXCLUDED.resource_version AND EXCLUDED.deleted AND NOT o.deleted)
RETURNING o.uid
"""
_HISTORY = """
INSERT INTO registry_object_history (uid, resource_version, event_type, kind, namespace, name, body)
VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
_BOOKMARK = """
INSERT INTO watch_bookmarks (kind, resource_version) VALUES (%s, %s)
ON CONFLICT (kind) DO UPDATE SET resource_version = EXCLUDED.resource_version, updated_at = now()
"""


def _previous(cur: psycopg.Cursor[Any], uid: str) -> dict[str, Any] | None:
    row = cur.execute("SELECT body FROM registry_objects WHERE uid = %s AND NOT deleted FOR UPDATE", (uid,)).fetchone()
    return row[0] if row else None


# The search rows a batch must rebuild: per (namespace, agent), the uids of the versions that
# changed, or None when the Agent itself changed and every version's row carries its text.
Touched = dict[tuple[str, str], "set[str] | None"]


def _touch(touched: Touched, kind: str, obj: dict[str, Any]) -> None:
    namespace = obj["metadata"].get("namespace") or ""
    if kind == "Agent":
        touched[(namespace, obj["metadata"]["name"])] = None
    elif kind == "AgentVersion":
        key = (namespace, (obj.get("spec") or {}).get("agent", ""))
        if key not in touched:
            touched[key] = set()
        versions = touched[key]
        if versions is not None:
            versions.add(obj["metadata"]["uid"])


def _upsert(cur: psycopg.Cursor[Any], kind: str, obj: dict[str, Any], event_type: str, deleted: bool,
            touched: Touched | None = None, deletes_logged: bool = False) -> None:
    """Write the object; when it really moved forward, write its history and audit records too."""
    uid, kind, namespace, name, rv, body = _row(kind, obj)
    before = _previous(cur, uid)
    applied = cur.execute(_UPSERT, (uid, kind, namespace, name, rv, body, deleted, deleted)).fetchone() is not None
    cur.execute(_HISTORY, (uid, rv, event_type, kind, namespace, name, body))
    if applied and touched is not None:
        _touch(touched, kind, before or obj)
    if applied:
        audit_type = "MODIFIED" if event_type == "RELISTED" and before is not None else \
            "ADDED" if event_type == "RELISTED" else event_type
        for record in audit.records(kind, audit_type, before, obj, deletes_logged):
            audit.append(cur, kind, obj, record)


def _apply_change(cur: psycopg.Cursor[Any], change: Change, touched: Touched,
                  deletes_logged: bool) -> None:
    _upsert(cur, change.kind, change.obj, change.event_type, change.event_type == "DELETED", touched,
            deletes_logged)


def _apply_relist(cur: psycopg.Cursor[Any], relist: Relist, touched: Touched) -> None:
    listed = []
    for obj in relist.items:
        listed.append(obj["metadata"]["uid"])
        _upsert(cur, relist.kind, obj, "RELISTED", False, touched)
    # Rows the list no longer has were deleted while the watch was away: mark them, keep them.
    gone = cur.execute("""
        UPDATE registry_objects SET deleted = true, deleted_at = now(), updated_at = now()
        WHERE kind = %s AND NOT deleted AND NOT (uid = ANY(%s::uuid[]))
        RETURNING uid, kind, namespace, name, body""", (relist.kind, listed)).fetchall()
    for uid, kind, namespace, name, body in gone:
        _touch(touched, kind, body)
        cur.execute(_HISTORY, (uid, relist.resource_version, "VANISHED", kind, namespace, name, None))
        for record in audit.records(kind, "VANISHED", body, body):
            audit.append(cur, kind, body, record)


def write(conn: psycopg.Connection[Any], batch: Batch, embedder: search_index.Embedder | None = None,
          deletes_logged: bool = False) -> None:
    """Write a batch atomically: its changes, the search rows and bookmarks they justify, or nothing.

    ``deletes_logged``: the API server's audit log records who deleted (see ``audit.records``).
    """
    touched: Touched = {}
    with conn.transaction(), conn.cursor() as cur:
        for item in batch.changes:
            if isinstance(item, Relist):
                _apply_relist(cur, item, touched)
            else:
                _apply_change(cur, item, touched, deletes_logged)
        for (namespace, agent), versions in sorted(touched.items()):
            search_index.refresh(cur, namespace, agent, embedder or search_index.default_embedder(), versions)
        if any(item.kind == "TenantPolicy" for item in batch.changes):
            search_index.retenant(cur)
        for kind, resource_version in batch.bookmarks.items():
            cur.execute(_BOOKMARK, (kind, resource_version))


def bookmarks(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {kind: rv for kind, rv in conn.execute("SELECT kind, resource_version FROM watch_bookmarks")}


def live_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {kind: n for kind, n in conn.execute(
        "SELECT kind, count(*) FROM registry_objects WHERE NOT deleted GROUP BY kind")}
