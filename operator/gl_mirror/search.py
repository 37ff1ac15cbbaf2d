"""Search agent versions by words, by typos and by meaning, as one caller is allowed to see them.

Postgres finds the candidates the caller may see (row-level security, with the caller's scope
set for the transaction by ``read_as``) and scores them lexically (weighted full-text rank plus
trigram word similarity); the mirror adds cosine similarity of wordllama embeddings and ranks by
a blend. Pages are cut with a cursor on (score, uid), so they are stable while the index does not change.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any

import psycopg

from gl_mirror.search_index import Embedder

LEXICAL_WEIGHT = 0.5
SEMANTIC_FLOOR = 0.2  # below this cosine, meaning alone is not a match


@dataclass(frozen=True)
class Caller:
    """What one caller may read beyond certified public agents: every row (cluster-wide readers),
    or the rows of some tenants and of some namespaces."""

    tenants: tuple[str, ...] = ()
    all_tenants: bool = False
    namespaces: tuple[str, ...] = ()


def read_as(conn: psycopg.Connection[Any], caller: Caller) -> None:
    """For the rest of the current transaction, read as ``greenlang_reader`` within ``caller``'s scope.

    Row-level security applies the scope (migration 0005); it counts only because this session
    logs in as the application: a reader setting the same settings itself gains nothing.
    """
    conn.execute("SET LOCAL ROLE greenlang_reader")
    conn.execute("SELECT set_config('greenlang.all', %s, true), set_config('greenlang.tenants', %s, true), "
                 "set_config('greenlang.namespaces', %s, true)",
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
    return base64.urlsafe_b64encode(json.dumps([round(hit.score, 6), hit.uid]).encode()).decode()


def _after(cursor: str) -> tuple[float, str]:
    score, uid = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    return float(score), str(uid)


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


_QUERY = """
SELECT uid::text, agent, version, namespace, state, domain, display_name, embedding,
       ts_rank_cd(document, websearch_to_tsquery('english', %(q)s), 32) AS rank,
       word_similarity(%(q)s, search_text) AS trigram
FROM agent_search
WHERE (%(domain)s::text IS NULL OR domain = %(domain)s OR domain LIKE %(domain)s || '.%%')
  AND (%(type)s::text IS NULL OR type = %(type)s)
  AND (%(state)s::text IS NULL OR state = %(state)s)
  AND (%(namespace)s::text IS NULL OR namespace = %(namespace)s)
  AND (%(tag)s::text IS NULL OR %(tag)s = ANY (tags))
"""


def search(conn: psycopg.Connection[Any], query: str, caller: Caller, embedder: Embedder,
           filters: Filters = Filters(), limit: int = 20, cursor: str | None = None) -> Page:
    query_vector = embedder.embed([query])[0]
    with conn.transaction():
        read_as(conn, caller)
        rows = conn.execute(_QUERY, {"q": query, **filters.__dict__}).fetchall()
    hits = []
    for uid, agent, version, namespace, state, domain, display_name, embedding, rank, trigram in rows:
        semantic = _cosine(query_vector, embedding)
        lexical = min(1.0, float(rank) * 4) if rank else 0.0
        typo = float(trigram) if trigram and trigram >= 0.4 else 0.0
        lexical = max(lexical, typo)
        if lexical == 0 and semantic < SEMANTIC_FLOOR:
            continue
        why = []
        if rank:
            why.append(f"words match name, domain, tags or description (rank {float(rank):.3f})")
        if typo:
            why.append(f"close spelling (trigram similarity {float(trigram):.2f})")
        if semantic >= SEMANTIC_FLOOR:
            why.append(f"similar meaning (cosine {semantic:.2f})")
        score = LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * max(semantic, 0.0)
        hits.append(Hit(agent, version, namespace, state, domain, display_name, score, uid, why))
    hits.sort(key=lambda h: (-round(h.score, 6), h.uid))
    if cursor:
        last_score, last_uid = _after(cursor)
        hits = [h for h in hits if (-round(h.score, 6), h.uid) > (-last_score, last_uid)]
    page = hits[:limit]
    return Page(page, _cursor(page[-1]) if len(hits) > limit else None)
