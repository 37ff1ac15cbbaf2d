"""The mirror's in-memory search index: the same pages as scoring every row, the caller's scope as
row-level security draws it, and rows and tombstones followed in any order.

The reference scores each row on its own (``text_match.word_score`` and a double-precision
cosine), filters and sorts everything: what search would be without an index.
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from gl_mirror import text_match
from gl_mirror.ranked_index import LEXICAL_WEIGHT, SEMANTIC_FLOOR, Caller, RankedIndex

WORDS = ["carbon", "border", "adjustment", "steel", "vat", "invoice", "payroll", "withholding", "supplier",
         "emissions", "onboarding", "benefits"]


def _row(rng: random.Random, n: int, vector: list[float]) -> dict:
    picked = rng.sample(WORDS, 4)
    return {"embedding": vector, "namespace": f"ns-{n % 4}", "tenant": f"tenant-{n % 4}" if n % 7 else None,
            "visibility": rng.choice(["public", "tenant", "private"]), "state": rng.choice(["certified", "draft"]),
            "domain": rng.choice(["finance.tax", "finance.payroll", "sustainability.cbam"]),
            "type": rng.choice(["calculator", "assistant"]), "tags": [rng.choice(["tax", "carbon"])],
            "agent": f"{picked[0]}-{picked[1]}-{n}", "display_name": f"{picked[0]} {picked[1]}".title(),
            "description": f"Computes {picked[2]} for {picked[3]}.", "capabilities": f"{picked[2]}-report"}


def _visible(row: dict, caller: Caller) -> bool:  # migration 0007's policy, row by row
    return ((row["visibility"] == "public" and row["state"] == "certified") or caller.all_tenants
            or (row["visibility"] != "private" and row["tenant"] in caller.tenants)
            or row["namespace"] in caller.namespaces)


def _passes(row: dict, filters: dict) -> bool:
    domain = filters.get("domain")
    return ((domain is None or row["domain"] == domain or row["domain"].startswith(domain + "."))
            and all(filters.get(k) is None or row[k] == filters[k] for k in ("type", "state", "namespace"))
            and (filters.get("tag") is None or filters["tag"] in row["tags"]))


def _reference(rows: dict[str, dict], query: str, vector: list[float], caller: Caller, filters: dict):
    query_words = text_match.words(query)
    scored = []
    for uid, row in rows.items():
        if not (_visible(row, caller) and _passes(row, filters)):
            continue
        words, _ = text_match.word_score(query_words, text_match.field_words(
            row["agent"], row["display_name"], row["domain"], row["tags"], row["description"], row["capabilities"]))
        dot = sum(x * y for x, y in zip(vector, row["embedding"]))
        norm = math.sqrt(sum(x * x for x in vector)) * math.sqrt(sum(y * y for y in row["embedding"]))
        cosine = dot / norm if norm else 0.0
        if words <= 0 and cosine < SEMANTIC_FLOOR:
            continue
        score = LEXICAL_WEIGHT * min(words, 1.0) + (1 - LEXICAL_WEIGHT) * max(cosine, 0.0)
        scored.append((round(score, 6), uid))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [uid for _, uid in scored]


@pytest.fixture(scope="module")
def catalogue():
    rng, vectors = random.Random(5), np.random.default_rng(5)
    rows = {f"uid-{n:04d}": _row(rng, n, [float(x) for x in vectors.standard_normal(8).astype(np.float32)])
            for n in range(600)}
    index = RankedIndex()
    for written, (uid, row) in enumerate(rows.items()):
        index.apply(uid, written, row)
    return index, rows, vectors


CALLERS = [Caller(all_tenants=True), Caller(("tenant-1",)), Caller(("tenant-2", "tenant-3"), namespaces=("ns-0",)),
           Caller()]
FILTERS = [{}, {"domain": "finance"}, {"state": "draft", "tag": "carbon"}, {"namespace": "ns-1", "type": "assistant"}]
QUERIES = ["carbon border", "payrol witholding", "steel", "the", "onboardng benefits for staff"]


@pytest.mark.parametrize("caller", CALLERS, ids=repr)
def test_pages_are_those_of_scoring_every_row(catalogue, caller):
    index, rows, vectors = catalogue
    for query, filters in itertools.product(QUERIES, FILTERS):
        vector = [float(x) for x in vectors.standard_normal(8)]
        expected = _reference(rows, query, vector, caller, filters)
        paged, after = [], None
        while True:  # pages of 7, each after the last one's (key, uid)
            page = index.rank(text_match.words(query), vector, caller, filters, 7, after)
            paged += [r.uid for r in page]
            if len(page) < 7:
                break
            after = (page[-1].key, page[-1].uid)
        assert paged == expected, (query, filters)


def test_close_spellings_and_exact_words_are_told_apart(catalogue):
    index, rows, _ = catalogue
    (best,) = index.rank(["payrol"], [0.0] * 8, Caller(all_tenants=True), {}, 1)
    assert best.exact == 0 and best.words > 0  # "payroll", spelt otherwise
    assert "payroll" in index.close_words("payrol") and "payrol" not in index.close_words("payrol")
    (best,) = index.rank(["payroll"], [0.0] * 8, Caller(all_tenants=True), {}, 1)
    assert best.exact == best.words == 1.0 and "payroll" in rows[best.uid]["agent"]


def test_skipped_rows_are_replaced_by_the_next_best(catalogue):
    index, _, vectors = catalogue
    vector = [float(x) for x in vectors.standard_normal(8)]
    first = index.rank(["carbon"], vector, Caller(all_tenants=True), {}, 5)
    again = index.rank(["carbon"], vector, Caller(all_tenants=True), {}, 5, skip=frozenset({first[0].uid}))
    assert [r.uid for r in again] == [r.uid for r in index.rank(["carbon"], vector, Caller(all_tenants=True), {},
                                                                  6)][1:]


def _only(embedding: list[float], **fields) -> dict:
    return {"embedding": embedding, "namespace": "ns", "tenant": "t", "visibility": "public", "state": "certified",
            "domain": "d", "type": "calculator", "tags": [], "agent": "a", "display_name": None,
            "description": None, "capabilities": None, **fields}


def _found(index: RankedIndex, caller: Caller = Caller(all_tenants=True)) -> list[str]:
    return [r.uid for r in index.rank([], [1.0, 0.0], caller, {}, 10)]


def test_a_refresh_in_one_transaction_keeps_the_row_in_either_order():
    for changes in itertools.permutations([("a", 5, None), ("a", 5, _only([1.0, 0.0]))]):
        index = RankedIndex()
        for uid, written, row in changes:
            index.apply(uid, written, row)
        assert _found(index) == ["a"], changes


def test_the_later_transaction_wins_in_either_order():
    for changes in itertools.permutations([("a", 5, _only([1.0, 0.0])), ("a", 9, None)]):
        index = RankedIndex()
        for uid, written, row in changes:
            index.apply(uid, written, row)
        assert _found(index) == [] and len(index) == 0, changes


def test_a_rewritten_row_is_ranked_by_what_it_holds_now():
    index = RankedIndex()
    index.apply("a", 1, _only([1.0, 0.0], agent="steel-importer", tenant="t1", visibility="tenant", state="draft"))
    index.apply("a", 2, _only([1.0, 0.0], agent="payroll-helper", tenant="t2", visibility="tenant", state="draft"))
    everyone = Caller(all_tenants=True)
    assert [r.uid for r in index.rank(["steel"], [0.0, 1.0], everyone, {}, 5)] == []
    assert [r.uid for r in index.rank(["payroll"], [0.0, 1.0], everyone, {}, 5)] == ["a"]
    assert _found(index, Caller(("t1",))) == [] and _found(index, Caller(("t2",))) == ["a"]
    assert len(index) == 1 and index.dead == 1


def test_private_rows_are_for_their_namespace_not_their_tenant():
    index = RankedIndex()
    index.apply("p", 1, _only([1.0, 0.0], visibility="private", namespace="team-ns", tenant="t"))
    assert _found(index, Caller(("t",))) == []
    assert _found(index, Caller(namespaces=("team-ns",))) == ["p"]
    assert _found(index, Caller()) == []  # private is never public, certified or not
