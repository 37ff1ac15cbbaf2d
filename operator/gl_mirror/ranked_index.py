"""The mirror's in-memory search index over ``agent_search``: words, meaning and who may see each row.

Search at 100,000 versions has to rank only what the caller may see and cut a page without
reading every match from Postgres. So the mirror follows the table into memory:

- each row's embedding, as one float32 matrix (cosine by one matrix-vector product; exact, so
  the recall of the semantic half is 1 by construction);
- an inverted index of the rows' words (``text_match.field_words``: each word with the weight of
  its best field), and a trigram index of the vocabulary, so that a misspelt query word is
  expanded to the close words that exist before any row is touched;
- the columns that decide visibility and filters (namespace, tenant, visibility, state, domain,
  type, tags), dictionary-coded, so that the caller's scope and filters become one boolean mask
  applied **before** ranking.

It follows the table through the writing transaction's id and tombstones (migration 0008; 0009
makes every update a new write). Slots are never reused: a row rewritten gets a new slot and
its old one is dead until the next full reload, which a sync does once dead slots outnumber
live ones (or after ``RELOAD_AFTER``, when tombstones may have been pruned).

The index narrows and ranks; it does not authorise. Search reads the chosen rows back from
Postgres as the caller, under row-level security, and drops any the policy refuses.
"""

from __future__ import annotations

import threading
import time
from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from gl_mirror import text_match

LEXICAL_WEIGHT = 0.5
SEMANTIC_FLOOR = 0.2  # below this cosine, meaning alone is not a match

# What the index reads of each row, and of each tombstone (only uid and written).
_CHANGES = """
WITH snapshot AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
SELECT snapshot.xmin::text, c.* FROM snapshot LEFT JOIN (
    SELECT uid::text, written::text, NULL::real[] AS embedding, NULL AS namespace, NULL AS tenant,
           NULL AS visibility, NULL AS state, NULL AS domain, NULL AS type, NULL::text[] AS tags, NULL AS agent,
           NULL AS display_name, NULL AS description, NULL AS capabilities
    FROM agent_search_removed WHERE written >= %(since)s::text::xid8
    UNION ALL
    SELECT uid::text, written::text, embedding, namespace, tenant, visibility, state, domain, type, tags, agent,
           display_name, description, capabilities
    FROM agent_search WHERE written >= %(since)s::text::xid8
) AS c ON true
"""
_CODED = ("namespace", "tenant", "visibility", "state", "domain", "type")


@dataclass(frozen=True)
class Caller:
    """What one caller may read beyond certified public agents: every row (cluster-wide readers),
    or the rows of some tenants and of some namespaces; as row-level security reads it
    (migrations 0005 and 0007)."""

    tenants: tuple[str, ...] = ()
    all_tenants: bool = False
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ranked:
    uid: str
    score: float
    key: float  # the score as pages are ordered and cut
    words: float  # lexical score, exact and close words
    exact: float  # the part of it from exact words
    cosine: float


class _Codes:
    """A column of small integers standing for strings (None is -1)."""

    def __init__(self) -> None:
        self.code: dict[str, int] = {}
        self.values = array("i")

    def append(self, value: str | None) -> None:
        if value is None:
            self.values.append(-1)
            return
        self.values.append(self.code.setdefault(value, len(self.code)))

    def column(self, used: int) -> np.ndarray:
        return np.frombuffer(self.values, dtype=np.int32, count=used) if used else np.zeros(0, np.int32)

    def codes(self, values: Any) -> list[int]:
        return [self.code[v] for v in values if v in self.code]


class _Postings:
    """Per word: the slots whose rows hold it, and its weight in each."""

    def __init__(self) -> None:
        self.slots = array("i")
        self.weights = array("d")


class RankedIndex:
    RELOAD_AFTER = 1800.0  # tombstones live an hour (migration 0008): reload before any could be missed

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since = 0  # read from this transaction id on, next time
        self._synced = 0.0
        self._stale = False
        self._reset(0)

    def _reset(self, width: int) -> None:
        self._slot: dict[str, int] = {}  # uid -> its live slot
        self._written: dict[str, int] = {}  # uid -> the transaction that wrote what the index holds of it
        self._uids: list[str] = []  # slot -> uid
        self._matrix = np.zeros((0, width), dtype=np.float32)
        self._norms = np.zeros(0, dtype=np.float32)  # 0 marks a dead slot
        self._columns = {name: _Codes() for name in _CODED}
        self._tags: dict[str, array] = {}
        self._postings: dict[str, _Postings] = {}
        self._trigrams: dict[str, set[str]] = {}  # trigram -> the vocabulary's words that have it

    def __len__(self) -> int:
        return len(self._slot)

    @property
    def dead(self) -> int:
        return len(self._uids) - len(self._slot)

    def sync(self, conn: psycopg.Connection[Any]) -> None:
        """Read what was written or removed since the last sync (everything, the first time).

        One statement, so the snapshot whose xmin becomes the next starting point is the one read.
        """
        with self._lock:
            reload = (self._stale or time.monotonic() - self._synced > self.RELOAD_AFTER
                      or (self.dead > 1000 and self.dead > len(self._slot)))
            since = 0 if reload else self._since
            if since == 0:
                self._reset(self._matrix.shape[1])
                # Until this load completes, the next sync starts over: a load cut short (Postgres
                # away) must not be followed from where the last complete one ended.
                self._since, self._synced, self._stale = 0, 0.0, False
            with conn.transaction():  # every row, whichever application login reads (migration 0005)
                conn.execute("SELECT set_config('greenlang.all', 'on', true)")
                if since == 0:  # a first load: a server-side cursor, a batch of rows held at a time
                    cursor = conn.cursor(name="ranked-index-sync")
                    cursor.itersize = 2000
                else:  # what changed since the last search: a few rows, one round trip
                    cursor = conn.cursor()
                with cursor:
                    cursor.execute(_CHANGES, {"since": since})
                    for xmin, uid, written, embedding, *fields in cursor:
                        if uid is not None:
                            self._apply(uid, int(written), embedding, fields)
            self._since, self._synced = int(xmin), time.monotonic()

    def apply(self, uid: str, written: int, row: dict[str, Any] | None) -> None:
        """One row as written (``None``: removed), by the transaction ``written``."""
        with self._lock:
            fields = None if row is None else [row.get(name) for name in (
                *_CODED, "tags", "agent", "display_name", "description", "capabilities")]
            self._apply(uid, written, None if row is None else row["embedding"], fields)

    def _apply(self, uid: str, written: int, embedding: list[float] | None, fields: list[Any] | None) -> None:
        # Rows and tombstones come in any order: what the later transaction wrote wins, and within one
        # transaction (a refresh deletes and inserts the same uid) the row, which the snapshot still holds.
        held = self._written.get(uid, -1)
        if written < held or (embedding is None and written == held):
            return
        self._written[uid] = written
        old = self._slot.pop(uid, None)
        if old is not None:
            self._norms[old] = 0.0
        if embedding is None or fields is None:
            return
        vector = np.asarray(embedding, dtype=np.float32)
        if self._matrix.shape[1] != vector.shape[0]:  # the first row (or a new model) sets the width
            if self._slot:
                self._stale = True  # rows of another model were held: read everything again next sync
            written_of = self._written
            self._reset(vector.shape[0])
            self._written = written_of
        slot = len(self._uids)
        if slot >= self._matrix.shape[0]:  # grow by half again, so appends stay amortised O(1)
            size = max(64, slot + slot // 2)
            self._matrix = np.concatenate([self._matrix, np.zeros((size - self._matrix.shape[0], vector.shape[0]),
                                                                  dtype=np.float32)])
            self._norms = np.concatenate([self._norms, np.zeros(size - self._norms.shape[0], dtype=np.float32)])
        self._uids.append(uid)
        self._slot[uid] = slot
        self._matrix[slot] = vector
        self._norms[slot] = float(np.linalg.norm(vector)) or np.float32(1e-30)
        coded, (tags, agent, display_name, description, capabilities) = fields[:len(_CODED)], fields[len(_CODED):]
        for name, value in zip(_CODED, coded):
            self._columns[name].append(value)
        for tag in tags or ():
            self._tags.setdefault(tag, array("i")).append(slot)
        domain = coded[_CODED.index("domain")]
        for word, weight in text_match.field_words(agent, display_name, domain, tags or [], description,
                                                   capabilities).items():
            self._post(word, slot, weight)

    def _post(self, word: str, slot: int, weight: float) -> None:
        postings = self._postings.get(word)
        if postings is None:
            postings = self._postings[word] = _Postings()
            for trigram in text_match.trigrams(word):
                self._trigrams.setdefault(trigram, set()).add(word)
        postings.slots.append(slot)
        postings.weights.append(weight)

    def close_words(self, word: str) -> dict[str, float]:
        """The vocabulary's words at least ``TYPO_FLOOR`` similar to ``word`` (itself, if held, at 1.0)."""
        grams = text_match.trigrams(word)
        shared: dict[str, int] = {}
        for gram in grams:
            for other in self._trigrams.get(gram, ()):
                shared[other] = shared.get(other, 0) + 1
        close = {}
        for other, count in shared.items():
            similarity = 1.0 if other == word else count / (len(grams) + len(text_match.trigrams(other)) - count)
            if similarity >= text_match.TYPO_FLOOR:
                close[other] = similarity
        return close

    def _visible(self, used: int, scope: Caller, filters: dict[str, Any]) -> np.ndarray:
        """Rows the scope may read (as migration 0007's policy) that pass the filters, as a mask."""
        column = {name: codes.column(used) for name, codes in self._columns.items()}
        visibility, state = self._columns["visibility"], self._columns["state"]
        mask = self._norms[:used] > 0
        if not scope.all_tenants:
            allowed = ((column["visibility"] == visibility.code.get("public", -2))
                       & (column["state"] == state.code.get("certified", -2)))
            tenants = self._columns["tenant"].codes(scope.tenants)
            if tenants:
                allowed |= (np.isin(column["tenant"], tenants)
                            & (column["visibility"] != visibility.code.get("private", -2)))
            namespaces = self._columns["namespace"].codes(scope.namespaces)
            if namespaces:
                allowed |= np.isin(column["namespace"], namespaces)
            mask &= allowed
        for name in ("type", "state", "namespace"):
            if filters.get(name) is not None:
                mask &= column[name] == self._columns[name].code.get(filters[name], -2)
        if filters.get("domain") is not None:
            prefix = filters["domain"]
            domains = self._columns["domain"].codes(d for d in self._columns["domain"].code
                                                    if d == prefix or d.startswith(prefix + "."))
            mask &= np.isin(column["domain"], domains)
        if filters.get("tag") is not None:
            tagged = np.zeros(used, dtype=bool)
            tagged[np.frombuffer(self._tags.get(filters["tag"], array("i")), dtype=np.int32)] = True
            mask &= tagged
        return mask

    def _lexical(self, used: int, query_words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Every row's lexical score and its exact-word part (``text_match.word_score``, vectorised)."""
        total, exact = np.zeros(used), np.zeros(used)
        for word in query_words:
            best = np.zeros(used)
            for other, similarity in self.close_words(word).items():
                postings = self._postings[other]
                slots = np.frombuffer(postings.slots, dtype=np.int32)
                weights = np.frombuffer(postings.weights, dtype=np.float64)
                best[slots] = np.maximum(best[slots], weights * similarity)  # a word's slots are distinct
                if other == word:
                    exact[slots] += weights
            total += best
        if query_words:
            total /= len(query_words)
            exact /= len(query_words)
        return total, exact

    def rank(self, query_words: list[str], query_vector: list[float], scope: Caller, filters: dict[str, Any],
             wanted: int, after: tuple[float, str] | None = None, skip: frozenset[str] = frozenset()) -> list[Ranked]:
        """The ``wanted`` best rows the scope may see that pass the filters, after the cursor ``after``
        (a page's last key and uid), best first, ordered by (key descending, uid)."""
        with self._lock:
            used = len(self._uids)
            if used == 0 or not self._slot:
                return []
            mask = self._visible(used, scope, filters)
            q = np.asarray(query_vector, dtype=np.float32)
            with np.errstate(divide="ignore", invalid="ignore"):
                cosine = (self._matrix[:used] @ q) / (self._norms[:used] * (float(np.linalg.norm(q)) or 1.0))
            lexical, exact = self._lexical(used, query_words)
            # Margins for float32 here; the floor and the cursor are applied exactly in _exact.
            mask &= (lexical > 0) | (cosine >= SEMANTIC_FLOOR - 1e-5)
            score = LEXICAL_WEIGHT * np.minimum(lexical, 1.0) + (1 - LEXICAL_WEIGHT) * np.maximum(cosine, 0)
            if after is not None:
                mask &= score <= after[0] + 1e-5
            chosen = np.flatnonzero(mask)
            scores = score[chosen]
            take = wanted + len(skip) + 16
            while True:
                if take >= len(chosen):
                    head = chosen
                else:  # the best ``take``, and any within float32's error of the last of them
                    edge = -np.partition(-scores, take - 1)[take - 1]
                    head = chosen[scores >= edge - 1e-5]
                ranked = self._exact(head, query_vector, lexical, exact, after, skip)
                if len(ranked) >= wanted or len(head) == len(chosen):
                    return ranked[:wanted]
                take *= 4

    def _exact(self, slots: np.ndarray, query_vector: list[float], lexical: np.ndarray,
               exact: np.ndarray, after: tuple[float, str] | None, skip: frozenset[str]) -> list[Ranked]:
        """Scores of ``slots`` in double precision (as a full scan computes them), past the cursor, sorted."""
        q = np.asarray(query_vector, dtype=np.float64)
        vectors = self._matrix[slots].astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(q)
        with np.errstate(divide="ignore", invalid="ignore"):
            cosines = np.where(norms > 0, (vectors @ q) / norms, 0.0)
        ranked = []
        for slot, cosine in zip(slots.tolist(), cosines.tolist()):
            words = float(lexical[slot])
            score = LEXICAL_WEIGHT * min(words, 1.0) + (1 - LEXICAL_WEIGHT) * max(cosine, 0.0)
            key, uid = round(score, 6), self._uids[slot]
            if uid in skip or (words <= 0 and cosine < SEMANTIC_FLOOR):
                continue
            if after is not None and not (key < after[0] or (key == after[0] and uid > after[1])):
                continue
            ranked.append(Ranked(uid, score, key, words, float(exact[slot]), cosine))
        ranked.sort(key=lambda r: (-r.key, r.uid))
        return ranked


_indexes: dict[tuple[Any, ...], RankedIndex] = {}
_indexes_lock = threading.Lock()


def ranked_index(conn: psycopg.Connection[Any]) -> RankedIndex:
    """The process's index of the database ``conn`` is connected to, current as of now."""
    key = (conn.info.host, conn.info.port, conn.info.dbname)
    with _indexes_lock:
        index = _indexes.setdefault(key, RankedIndex())
    index.sync(conn)
    return index
