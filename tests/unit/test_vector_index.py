"""The mirror's in-memory vector index follows agent_search's rows and tombstones in any order.

Rows and tombstones read in one sync carry the transaction that wrote them (migration 0008); a
refresh deletes and inserts the same uid in one transaction, and a later delete must win over an
older row, whatever order the sync returns them in.
"""

from __future__ import annotations

import itertools

import numpy as np

from gl_mirror.search_index import VectorIndex


def test_nearest_is_exact_cosine_best_first():
    index = VectorIndex()
    rng = np.random.default_rng(7)
    vectors = {f"uid-{n}": rng.standard_normal(16).astype(np.float32) for n in range(200)}
    for n, (uid, vector) in enumerate(vectors.items()):
        index.apply(uid, vector.tolist(), n)
    query = rng.standard_normal(16)
    expected = sorted(vectors, key=lambda u: -float(vectors[u] @ query) / float(np.linalg.norm(vectors[u])))
    found = index.nearest(query.tolist(), 10)
    assert [uid for uid, _ in found] == expected[:10]
    assert all(a[1] >= b[1] for a, b in zip(found, found[1:]))
    assert len(index.nearest(query.tolist(), 1000)) == 200


def test_a_refresh_in_one_transaction_keeps_the_row_in_either_order():
    for changes in itertools.permutations([("a", None, 5), ("a", [1.0, 0.0], 5)]):
        index = VectorIndex()
        for uid, embedding, written in changes:
            index.apply(uid, embedding, written)
        assert [uid for uid, _ in index.nearest([1.0, 0.0], 5)] == ["a"], changes


def test_the_later_transaction_wins_in_either_order():
    for changes in itertools.permutations([("a", [1.0, 0.0], 5), ("a", None, 9)]):
        index = VectorIndex()
        for uid, embedding, written in changes:
            index.apply(uid, embedding, written)
        assert index.nearest([1.0, 0.0], 5) == [] and len(index) == 0, changes


def test_removed_rows_free_their_slot_for_new_ones():
    index = VectorIndex()
    index.apply("a", [1.0, 0.0], 1)
    index.apply("b", [0.0, 1.0], 2)
    index.apply("a", None, 3)
    index.apply("c", [1.0, 1.0], 4)
    assert len(index) == 2
    assert [uid for uid, _ in index.nearest([1.0, 0.0], 5)] == ["c", "b"]
    assert set(index.vectors(["a", "b", "c"])) == {"b", "c"}
