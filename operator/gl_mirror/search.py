"""Search agent versions by words, by typos and by meaning, as one caller is allowed to see them.

An index query, not a scan: the mirror's in-memory index (``ranked_index.RankedIndex``) holds
every row's words, embedding and visibility columns. It applies the caller's scope and the filters
as a mask first, scores what is left (words and close spellings through an inverted index, meaning
by cosine), and cuts one page after the cursor. Then the chosen rows are read back from Postgres
as the caller (``read_as``: row-level security, the caller's scope set for the transaction): the
index narrows and ranks, the database decides what the caller may read, and any row it refuses
(the index a moment behind a change) is replaced by the next best.

Pages are cut with a cursor on (score, uid), so they are stable while the index does not change.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import psycopg

from gl_mirror import text_match
from gl_mirror.ranked_index import SEMANTIC_FLOOR, Caller, ranked_index
from gl_mirror.search_index import Embedder

__all__ = ["Caller", "Filters", "Hit", "Page", "read_as", "search"]


def read_as(conn: psycopg.Connection[Any], caller: Caller) -> None:
    """For the rest of the current transaction, read as ``greenlang_reader`` within ``caller``'s scope.

    Row-level security applies the scope (migration 0005); it counts only because this session
    logs in as the application: a reader setting the same settings itself gains nothing.
    """
    conn.execute("SELECT set_config('role', 'greenlang_reader', true), set_config('greenlang.all', %s, true), "
                 "set_config('greenlang.tenants', %s, true), set_config('greenlang.namespaces', %s, true)",
                 ("on" if caller.all_tenants else "off", ",".join(caller.tenants), ",".join(caller.namespaces)))


@dataclass(frozen=True)
class Filters:
    domain: str | None = None
    type: str | None = None
    state: str | None = None
    namespace: str | None = None
    tag: str | None = None


@dataclass
class Hit:
    agent: str
    version: str
    namespace: str
    state: str | None
    domain: str | None
    display_name: str | None
    score: float
    uid: str
    why: list[str] = field(default_factory=list)
    key: float | None = None  # the score as pages are ordered and cut (rounded to 6 places)

    @property
    def ref(self) -> str:
        return f"{self.agent}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "agent": self.agent, "version": self.version, "namespace": self.namespace,
                "state": self.state, "domain": self.domain, "displayName": self.display_name,
                "score": round(self.score, 4), "why": self.why}


@dataclass
class Page:
    hits: list[Hit]
    next_cursor: str | None


def _cursor(hit: Hit) -> str:
    return base64.urlsafe_b64encode(json.dumps([hit.key, hit.uid]).encode()).decode()


def _after(cursor: str) -> tuple[float, str]:
    score, uid = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    return float(score), str(uid)


# The chosen rows, as the caller may read them (row-level security), filters checked again.
_ROWS = """
SELECT s.uid::text, s.agent, s.version, s.namespace, s.state, s.domain, s.display_name
FROM agent_search AS s
WHERE s.uid = ANY(%(uids)s::uuid[])
  AND (%(domain)s::text IS NULL OR s.domain = %(domain)s OR s.domain LIKE %(domain)s || '.%%')
  AND (%(type)s::text IS NULL OR s.type = %(type)s)
  AND (%(state)s::text IS NULL OR s.state = %(state)s)
  AND (%(namespace)s::text IS NULL OR s.namespace = %(namespace)s)
  AND (%(tag)s::text IS NULL OR %(tag)s = ANY (s.tags))
"""


def search(conn: psycopg.Connection[Any], query: str, caller: Caller, embedder: Embedder,
           filters: Filters = Filters(), limit: int = 20, cursor: str | None = None) -> Page:
    query_vector = embedder.embed([query])[0]
    index = ranked_index(conn)  # as the mirror, before the transaction reads as the caller
    after = _after(cursor) if cursor else None
    wanted = limit + 1  # one more than a page tells whether there is a next one
    refused: set[str] = set()
    while True:
        ranked = index.rank(text_match.words(query), query_vector, caller, filters.__dict__, wanted, after,
                            frozenset(refused))
        with conn.transaction():
            read_as(conn, caller)
            rows = {row[0]: row for row in conn.execute(_ROWS, {"uids": [r.uid for r in ranked], **filters.__dict__})}
        refused_now = {r.uid for r in ranked} - rows.keys()
        if not refused_now:
            break
        refused |= refused_now
    hits = []
    for r in ranked:
        uid, agent, version, namespace, state, domain, display_name = rows[r.uid]
        why = []
        if r.exact > 0:
            why.append(f"words match name, domain, tags or description (score {r.exact:.2f})")
        if r.words > r.exact:
            why.append(f"close spelling (score {r.words:.2f})")
        if r.cosine >= SEMANTIC_FLOOR:
            why.append(f"similar meaning (cosine {r.cosine:.2f})")
        hits.append(Hit(agent, version, namespace, state, domain, display_name, r.score, uid, why, r.key))
    page = hits[:limit]
    return Page(page, _cursor(page[-1]) if len(hits) > limit else None)
