"""Search agent versions by words, by typos and by meaning, as one caller is allowed to see them.

A query, not a scan: Postgres finds the rows that match the words through its full-text and
trigram indexes and scores them lexically (weighted full-text rank, trigram word similarity);
the mirror's in-memory vector index (``search_index.VectorIndex``) gives the rows nearest in
meaning (wordllama embeddings) and the cosine of every candidate. Then, reading as the caller
(row-level security, the caller's scope set for the transaction by ``read_as``), Postgres keeps
the candidates the caller may see and the filters allow, blends the two scores over them alone
and returns only the top ``limit`` rows after the cursor: what the caller may not see is never ranked.

The result is the one a full scan would give: if the semantic candidates did not reach deep
enough to rule out a row nobody looked at (its cosine bounds its score), the vector index is asked
for more. Pages are cut with a cursor on (score, uid), so they are stable while the index does not change.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from gl_mirror.search_index import Embedder, vector_index

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
    key: float | None = None  # the score as pages are ordered and cut (rounded in Postgres)

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


# The caller's filters, on agent_search as ``s``.
_FILTERS = """
      (%(domain)s::text IS NULL OR s.domain = %(domain)s OR s.domain LIKE %(domain)s || '.%%')
  AND (%(type)s::text IS NULL OR s.type = %(type)s)
  AND (%(state)s::text IS NULL OR s.state = %(state)s)
  AND (%(namespace)s::text IS NULL OR s.namespace = %(namespace)s)
  AND (%(tag)s::text IS NULL OR %(tag)s = ANY (s.tags))
"""

TYPO_FLOOR = 0.4  # trigram word similarity from which a close spelling counts

# Rows whose words match, through agent_search_document (@@) and agent_search_trigrams (<%).
_LEXICAL = """
SELECT s.uid::text, ts_rank_cd(s.document, query, 32) AS rank, word_similarity(%(q)s, s.search_text) AS trigram
FROM agent_search AS s, websearch_to_tsquery('english', %(q)s) AS query
WHERE (s.document @@ query OR %(q)s <%% s.search_text) AND""" + _FILTERS

# The candidates, scored as before (a blend of lexical and semantic), cut to one page in Postgres.
_TOP = """
SELECT s.uid::text, s.agent, s.version, s.namespace, s.state, s.domain, s.display_name,
       c.rank, c.trigram, c.cosine, c.score, round(c.score::numeric, 6)::float8 AS key
FROM (SELECT u.*, %(w)s * greatest(least(1.0, u.rank * 4), CASE WHEN u.trigram >= %(typo)s THEN u.trigram ELSE 0 END)
                  + (1 - %(w)s) * greatest(u.cosine, 0) AS score
      FROM unnest(%(uids)s::uuid[], %(ranks)s::float8[], %(trigrams)s::float8[], %(cosines)s::float8[])
           AS u(uid, rank, trigram, cosine)) AS c
JOIN agent_search AS s ON s.uid = c.uid
WHERE (c.rank > 0 OR c.trigram >= %(typo)s OR c.cosine >= %(floor)s)
  AND (%(after)s::float8 IS NULL OR round(c.score::numeric, 6)::float8 < %(after)s
       OR (round(c.score::numeric, 6)::float8 = %(after)s AND s.uid > %(after_uid)s::uuid))
  AND""" + _FILTERS + """
ORDER BY key DESC, s.uid
LIMIT %(n)s
"""


def _cosines(query: list[float], vectors: dict[str, Any]) -> dict[str, float]:
    """Cosine similarity of each embedding with the query, in double precision."""
    if not vectors:
        return {}
    q = np.asarray(query, dtype=np.float64)
    matrix = np.asarray(list(vectors.values()), dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(q)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(norms > 0, (matrix @ q) / norms, 0.0)
    return dict(zip(vectors, (float(v) for v in values)))


def search(conn: psycopg.Connection[Any], query: str, caller: Caller, embedder: Embedder,
           filters: Filters = Filters(), limit: int = 20, cursor: str | None = None) -> Page:
    query_vector = embedder.embed([query])[0]
    index = vector_index(conn)  # as the mirror, before the transaction reads as the caller
    after, after_uid = _after(cursor) if cursor else (None, None)
    wanted = limit + 1  # one more than a page tells whether there is a next one
    # The candidates that match the words are found as the mirror, through the indexes: as a reader,
    # row-level security would keep the planner from them (@@ and <% are not leakproof, so they may
    # not run before the policy). Nothing of them reaches the caller but through the query below,
    # which reads as the caller. The planner's estimate of trigram matches is poor: indexes, always.
    with conn.transaction():
        conn.execute("SELECT set_config('pg_trgm.word_similarity_threshold', %s, true), "
                     "set_config('enable_seqscan', 'off', true), set_config('greenlang.all', 'on', true)",
                     (str(TYPO_FLOOR),))
        lexical = {uid: (float(rank or 0), float(trigram or 0)) for uid, rank, trigram in
                   conn.execute(_LEXICAL, {"q": query, **filters.__dict__})}
        held = index.vectors(list(lexical))
        unheld = [u for u in lexical if u not in held]  # written since the index was read
        if unheld:
            held.update(conn.execute("SELECT uid::text, embedding FROM agent_search WHERE uid = ANY(%s::uuid[])",
                                     (unheld,)).fetchall())
    exact = _cosines(query_vector, held)
    with conn.transaction():
        read_as(conn, caller)
        depth = max(4 * wanted, 64)
        while True:
            nearest = index.nearest(query_vector, depth)
            semantic = {u: c for u, c in nearest if u not in lexical and c >= SEMANTIC_FLOOR}
            semantic = _cosines(query_vector, index.vectors(list(semantic)))
            candidates = [*lexical, *semantic]
            rows = conn.execute(_TOP, {
                "uids": candidates, "ranks": [lexical.get(u, (0.0, 0.0))[0] for u in candidates],
                "trigrams": [lexical.get(u, (0.0, 0.0))[1] for u in candidates],
                "cosines": [exact.get(u, semantic.get(u, 0.0)) for u in candidates],
                "w": LEXICAL_WEIGHT, "typo": TYPO_FLOOR, "floor": SEMANTIC_FLOOR, "after": after,
                "after_uid": after_uid, "n": wanted, **filters.__dict__}).fetchall()
            # A row the vector index did not return is no closer than the last it did: done when even
            # that could not make the page (or mean anything), or when there is nothing further.
            bound = nearest[-1][1] if nearest else -1.0
            if (len(nearest) < depth or bound < SEMANTIC_FLOOR
                    or (len(rows) == wanted and rows[-1][10] > (1 - LEXICAL_WEIGHT) * bound)):
                break
            depth *= 4
    hits = []
    for uid, agent, version, namespace, state, domain, display_name, rank, trigram, cosine, score, key in rows:
        why = []
        if rank:
            why.append(f"words match name, domain, tags or description (rank {rank:.3f})")
        if trigram >= TYPO_FLOOR:
            why.append(f"close spelling (trigram similarity {trigram:.2f})")
        if cosine >= SEMANTIC_FLOOR:
            why.append(f"similar meaning (cosine {cosine:.2f})")
        hits.append(Hit(agent, version, namespace, state, domain, display_name, score, uid, why, key))
    page = hits[:limit]
    return Page(page, _cursor(page[-1]) if len(hits) > limit else None)
