"""Index buckets copied for worker threads while the event loop keeps changing them (kopf's own Store)."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kopf._core.engines.indexing import Store

from gl_operator.index_copies import IndexCopier, bucket

SIZE = 50


@contextmanager
def churning_index() -> Iterator[tuple[asyncio.AbstractEventLoop, dict[str, Store[int]]]]:
    """A bucket that the loop keeps changing as kopf does, one event per callback: object n + SIZE
    comes, then object n goes. Between two callbacks it holds the run n..n+SIZE-1 or n..n+SIZE."""
    store: Store[int] = Store()
    for n in range(SIZE):
        store._replace(n, n)
    loop = asyncio.new_event_loop()
    stop = threading.Event()

    def arrive(n: int) -> None:
        store._replace(n + SIZE, n + SIZE)
        loop.call_soon(leave, n)

    def leave(n: int) -> None:
        store._discard(n)
        if not stop.is_set():
            loop.call_soon(arrive, n + 1)

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    loop.call_soon(arrive, 0)
    thread.start()
    try:
        yield loop, {"key": store}
    finally:
        stop.set()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Threads hand over the GIL every 10 µs instead of 5 ms, so a copy meets changes often."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


def torn_copies(copy: Callable[[Any, Any], list[int]], index: dict[str, Store[int]], seconds: float) -> int:
    """How many copies made from this thread held something the bucket never held at once."""
    torn, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            values = sorted(copy(index, "key"))
        except RuntimeError:  # "dictionary changed size during iteration"
            torn += 1
            continue
        whole = len(values) in (SIZE, SIZE + 1) and values == list(range(values[0], values[0] + len(values)))
        torn += not whole
    return torn


def test_copies_made_on_the_loop_always_see_a_whole_bucket(frequent_thread_switches):
    with churning_index() as (loop, index):
        assert torn_copies(IndexCopier(loop), index, seconds=1.0) == 0


def test_copies_made_in_the_thread_itself_can_be_torn(frequent_thread_switches):
    """Why the copier exists: the same churn tears plain copies (the race the operator met)."""
    with churning_index() as (loop, index):
        assert torn_copies(bucket, index, seconds=1.0) > 0


def test_a_copy_asked_for_on_the_loop_itself_is_made_there_at_once():
    loop = asyncio.new_event_loop()
    store: Store[int] = Store()
    store._replace("a", 1)
    copier = IndexCopier(loop)

    async def ask() -> list[int]:
        return copier({"key": store}, "key")
    try:
        assert loop.run_until_complete(ask()) == [1]
    finally:
        loop.close()


def test_an_absent_key_is_an_empty_bucket():
    assert bucket({}, ("ns", "agent")) == []
