"""Words of a search row and of a query, and how close two spellings are.

Pure functions, shared by the mirror's in-memory search index and by anything that must rank
exactly as it does (the benchmark's full-scan reference). Closeness is pg_trgm's similarity
(shared trigrams of the padded words over all of theirs), so a word counts as a close spelling
here exactly when it would in Postgres.
"""

from __future__ import annotations

import re

# Where a word appears, as Postgres weighs its full-text ranks by default (A, B, C).
NAME, TAGS, BODY = 1.0, 0.4, 0.2
TYPO_FLOOR = 0.4  # trigram similarity from which a different spelling is a close one

# Postgres' English stop words that occur in queries; they match everything and mean nothing.
STOP_WORDS = frozenset("""
a about an and are as at be by for from has have how i in into is it its of on or that the their
this to was what when where which who will with
""".split())

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lowercase words of ``text`` without stop words, in order (``-`` and ``.`` separate words)."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def trigrams(word: str) -> frozenset[str]:
    padded = f"  {word} "
    return frozenset(padded[i:i + 3] for i in range(len(padded) - 2))


def similarity(a: str, b: str) -> float:
    """pg_trgm's ``similarity`` of two words: 1.0 for the same word."""
    if a == b:
        return 1.0
    ta, tb = trigrams(a), trigrams(b)
    shared = len(ta & tb)
    return shared / (len(ta) + len(tb) - shared)


def field_words(agent: str, display_name: str | None, domain: str | None, tags: list[str],
                description: str | None, capabilities: str | None) -> dict[str, float]:
    """Each word of a row with the weight of the best field it appears in."""
    weighted: dict[str, float] = {}
    for weight, texts in ((BODY, (description, capabilities)), (TAGS, (domain, *tags)), (NAME, (agent, display_name))):
        for text in texts:
            for word in words(text or ""):
                weighted[word] = weight  # heavier fields come last and win
    return weighted


def word_score(query_words: list[str], row: dict[str, float]) -> tuple[float, float]:
    """A row's lexical score for a query, in [0, 1], and the part of it from exact words.

    Each query word counts for the best of the row's words it is close to (similarity times the
    field's weight); the score is their mean. The reference the index's vectorised scoring is
    checked against.
    """
    if not query_words:
        return 0.0, 0.0
    total = exact = 0.0
    for q in query_words:
        best = max((similarity(q, w) * weight for w, weight in row.items() if similarity(q, w) >= TYPO_FLOOR),
                   default=0.0)
        total += best
        exact += row.get(q, 0.0)
    return total / len(query_words), exact / len(query_words)
