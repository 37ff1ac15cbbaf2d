"""Copies of kopf index buckets for handlers that run in worker threads, made on the event loop.

kopf changes its indexes on the event loop while our sync handlers run in its thread pool. A
copy taken in a thread can meet a change half-way: "dictionary changed size during iteration"
(seen in ``agent_version_event``, 2026-11-27), or a copy that silently misses an entry when a
removal and an insertion meet. A copy made on the loop sees the bucket between two changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def bucket(index: Mapping[Any, Iterable[T]], key: Any) -> list[T]:
    """The values under ``key`` (none when the key is absent), copied where the caller runs."""
    try:
        return list(index[key]) if key in index else []
    except KeyError:  # removed between the two lookups
        return []


class IndexCopier:
    """Copies index buckets on ``loop``, the thread that changes them, whichever thread asks."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __call__(self, index: Mapping[Any, Iterable[T]], key: Any) -> list[T]:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:  # a worker thread runs no loop
            on_loop = False
        if on_loop:
            return bucket(index, key)

        async def copy() -> list[T]:
            return bucket(index, key)
        return asyncio.run_coroutine_threadsafe(copy(), self._loop).result()
