"""Keep ``agent_search`` current: one row per AgentVersion, with its Agent's text and an embedding;
and follow it into memory as a vector index for the semantic half of search.

Embeddings come from wordllama, whose weights ship inside its wheel; its loader expects the
tokenizer file (also shipped) under ``<cache>/tokenizers``, so we point it there and never
download anything.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

WORDLLAMA_TOKENIZER = "l2_supercat_tokenizer_config.json"


class Embedder:
    """Text to 256-dimensional unit vectors with wordllama, loaded from the installed wheel only."""

    def __init__(self, cache_dir: Path | None = None):
        import wordllama
        from wordllama import WordLlama

        cache = cache_dir or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / \
            "greenlang-registry" / "wordllama"
        tokenizers = cache / "tokenizers"
        tokenizers.mkdir(parents=True, exist_ok=True)
        shipped = Path(wordllama.__file__).parent / "tokenizers" / WORDLLAMA_TOKENIZER
        target = tokenizers / WORDLLAMA_TOKENIZER
        if not target.exists():
            target.symlink_to(shipped)
        self._model = WordLlama.load(cache_dir=cache, disable_download=True)

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._model.embed(texts, norm=True)]


@functools.lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    return Embedder()


def _text(agent: dict[str, Any] | None, version: dict[str, Any]) -> dict[str, Any]:
    spec = (agent or {}).get("spec") or {}
    capabilities = version["spec"].get("capabilities") or []
    return {
        "display_name": spec.get("displayName") or "",
        "description": spec.get("description") or "",
        "domain": spec.get("domain") or "",
        "type": spec.get("type"),
        "tags": spec.get("tags") or [],
        # Without its Agent (not mirrored yet, or deleted) a version's visibility is unknown: the
        # narrowest, so that a private agent's versions are never shown tenant-wide meanwhile.
        "visibility": spec.get("visibility") or ("tenant" if agent else "private"),
        "capability_names": " ".join(c["name"] for c in capabilities),
        "capability_text": " ".join(c.get("description") or "" for c in capabilities),
    }


def semantic_text(fields: dict[str, Any], agent_name: str) -> str:
    return ". ".join(filter(None, [fields["display_name"], agent_name.replace("-", " "), fields["description"],
                                   fields["domain"].replace(".", " "), " ".join(fields["tags"]),
                                   fields["capability_names"].replace("-", " "), fields["capability_text"]]))


INSERT = """
INSERT INTO agent_search (uid, namespace, agent, version, state, domain, type, tags, visibility, tenant,
                          display_name, description, capabilities, search_text, document, embedding)
VALUES (%(uid)s, %(namespace)s, %(agent)s, %(version)s, %(state)s, %(domain)s, %(type)s, %(tags)s, %(visibility)s,
        tenant_of_namespace(%(namespace)s), %(display_name)s, %(description)s, %(capabilities)s, %(search_text)s,
        setweight(to_tsvector('english', %(name_text)s), 'A')
        || setweight(to_tsvector('english', %(tag_text)s), 'B')
        || setweight(to_tsvector('english', %(body_text)s), 'C'),
        %(embedding)s)
"""


def refresh(cur: psycopg.Cursor[Any], namespace: str, agent_name: str, embedder: Embedder) -> None:
    """Rebuild the rows of one agent's versions from the mirrored objects."""
    row = cur.execute("SELECT body FROM registry_objects WHERE kind = 'Agent' AND namespace = %s AND name = %s "
                      "AND NOT deleted", (namespace, agent_name)).fetchone()
    agent = row[0] if row else None
    versions = [r[0] for r in cur.execute(
        "SELECT body FROM registry_objects WHERE kind = 'AgentVersion' AND namespace = %s AND NOT deleted "
        "AND body -> 'spec' ->> 'agent' = %s", (namespace, agent_name))]
    cur.execute("DELETE FROM agent_search WHERE namespace = %s AND agent = %s", (namespace, agent_name))
    if not versions:
        return
    per_version = [_text(agent, v) for v in versions]
    embeddings = embedder.embed([semantic_text(f, agent_name) for f in per_version])
    for version, f, embedding in zip(versions, per_version, embeddings):
        cur.execute(INSERT, insert_parameters(version["metadata"]["uid"], namespace, agent_name,
                                               version["spec"]["version"], (version.get("status") or {}).get("state"),
                                               f, embedding))


def insert_parameters(uid: str, namespace: str, agent_name: str, version: str, state: str | None,
                      f: dict[str, Any], embedding: list[float]) -> dict[str, Any]:
    """The parameters of ``INSERT`` for one version (also how `python -m bench search` seeds rows)."""
    return {
        "uid": uid, "namespace": namespace, "agent": agent_name, "version": version, "state": state,
        "domain": f["domain"], "type": f["type"], "tags": f["tags"], "visibility": f["visibility"],
        "display_name": f["display_name"], "description": f["description"],
        "capabilities": f"{f['capability_names']} {f['capability_text']}".strip(),
        "search_text": " ".join([agent_name, f["display_name"], f["domain"], " ".join(f["tags"]),
                                 f["capability_names"], f["description"]]),
        "name_text": f"{agent_name.replace('-', ' ')} {f['display_name']}",
        "tag_text": f"{f['domain'].replace('.', ' ')} {' '.join(f['tags'])} "
                    f"{f['capability_names'].replace('-', ' ')}",
        "body_text": f"{f['description']} {f['capability_text']}",
        "embedding": embedding,
    }


def retenant(cur: psycopg.Cursor[Any]) -> None:
    """TenantPolicies changed: re-derive every row's tenant."""
    cur.execute("UPDATE agent_search SET tenant = tenant_of_namespace(namespace) "
                "WHERE tenant IS DISTINCT FROM tenant_of_namespace(namespace)")


class VectorIndex:
    """Every ``agent_search`` row's embedding in memory, as one float32 matrix, for nearest-neighbour search.

    It holds no tenant data beyond uids and vectors; who may see a row is decided by Postgres
    (row-level security) when search asks for the rows these candidates name. Exact (a scan of
    the matrix: at 100,000 rows one matrix-vector product), so its recall is 1 by construction.
    It follows the table through ``written`` and tombstones (migration 0008); ``sync`` before use.
    """

    # Tombstones live an hour (migration 0008): a follower that has not read for half of that reloads.
    RELOAD_AFTER = 1800.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset(0)
        self._since = 0  # read from this transaction id on, next time
        self._synced = 0.0

    def __len__(self) -> int:
        return len(self._slot)

    def _reset(self, width: int) -> None:
        self._slot: dict[str, int] = {}  # uid -> row of the matrix
        self._written: dict[str, int] = {}  # uid -> the transaction that wrote what its row holds
        self._uids: list[str | None] = []
        self._free: list[int] = []
        self._matrix = np.zeros((0, width), dtype=np.float32)  # as stored (real[]), not renormalised
        self._norms = np.zeros(0, dtype=np.float32)  # 0 marks a free row

    def sync(self, conn: psycopg.Connection[Any]) -> None:
        """Read what was written or removed since the last sync (everything, the first time).

        One statement, so the snapshot whose xmin becomes the next starting point is the one read.
        """
        with self._lock:
            since = 0 if time.monotonic() - self._synced > self.RELOAD_AFTER else self._since
            if since == 0:
                self._reset(self._matrix.shape[1])
            with conn.transaction():  # every row, whichever application login reads (migration 0005)
                conn.execute("SELECT set_config('greenlang.all', 'on', true)")
                rows = conn.execute("""
                WITH snapshot AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
                SELECT snapshot.xmin::text, c.uid::text, c.embedding, c.written::text FROM snapshot LEFT JOIN (
                    SELECT uid, NULL::real[] AS embedding, written FROM agent_search_removed
                    WHERE written >= %(since)s::text::xid8
                    UNION ALL
                    SELECT uid, embedding, written FROM agent_search WHERE written >= %(since)s::text::xid8
                ) AS c ON true
                """, {"since": since}).fetchall()
            for _, uid, embedding, written in rows:
                if uid is not None:
                    self.apply(uid, embedding, int(written))
            self._since, self._synced = int(rows[0][0]), time.monotonic()

    def apply(self, uid: str, embedding: list[float] | None, written: int) -> None:
        # Rows and tombstones come in any order: what the later transaction wrote wins, and within one
        # transaction (a refresh deletes and inserts the same uid) the row, which the snapshot still holds.
        held = self._written.get(uid, -1)
        if written < held or (embedding is None and written == held):
            return
        self._written[uid] = written
        slot = self._slot.get(uid)
        if embedding is None:  # removed
            if slot is not None:
                del self._slot[uid]
                self._uids[slot] = None
                self._norms[slot] = 0.0
                self._free.append(slot)
            return
        vector = np.asarray(embedding, dtype=np.float32)
        if self._matrix.shape[1] != vector.shape[0]:  # the first row (or a new model) sets the width
            self._reset(vector.shape[0])
            self._written[uid], slot = written, None
        if slot is None:
            slot = self._free.pop() if self._free else len(self._uids)
            if slot == len(self._uids):
                self._uids.append(None)
            if slot >= self._matrix.shape[0]:  # grow by half again, so appends stay amortised O(1)
                size = max(64, slot + slot // 2)
                self._matrix = np.concatenate([self._matrix, np.zeros((size - self._matrix.shape[0],
                                                                       vector.shape[0]), dtype=np.float32)])
                self._norms = np.concatenate([self._norms, np.zeros(size - self._norms.shape[0], dtype=np.float32)])
            self._slot[uid] = slot
            self._uids[slot] = uid
        self._matrix[slot] = vector
        self._norms[slot] = float(np.linalg.norm(vector)) or np.float32(1e-30)

    def nearest(self, query: list[float], count: int) -> list[tuple[str, float]]:
        """The ``count`` rows most similar to ``query`` (cosine, best first), visible or not."""
        with self._lock:
            count = min(count, len(self._slot))
            if count <= 0:
                return []
            q = np.asarray(query, dtype=np.float32)
            used = len(self._uids)
            with np.errstate(divide="ignore", invalid="ignore"):
                scores = (self._matrix[:used] @ q) / (self._norms[:used] * (float(np.linalg.norm(q)) or 1.0))
            scores[self._norms[:used] == 0] = -np.inf  # free rows
            top = np.argpartition(-scores, count - 1)[:count] if count < used else np.arange(used)
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(self._uids[i], float(scores[i])) for i in top if self._uids[i] is not None]

    def vectors(self, uids: list[str]) -> dict[str, np.ndarray]:
        """The embeddings held for ``uids``, as stored (those not held yet are left out)."""
        with self._lock:
            return {u: self._matrix[self._slot[u]].copy() for u in uids if u in self._slot}


_indexes: dict[tuple[Any, ...], VectorIndex] = {}
_indexes_lock = threading.Lock()


def vector_index(conn: psycopg.Connection[Any]) -> VectorIndex:
    """The process's vector index of the database ``conn`` is connected to, current as of now."""
    key = (conn.info.host, conn.info.port, conn.info.dbname)
    with _indexes_lock:
        index = _indexes.setdefault(key, VectorIndex())
    index.sync(conn)
    return index
