"""Agent summaries written at most once per short window per Agent, not once per version event.

A burst of publishes of one agent (a pipeline releasing, `python -m bench publish` at 10/s) sent
every version event to a GET and often a status write of the same Agent: about 3 reads and 1.3
writes per publish (docs/benchmarks.md, publish-cost), each write admitted, stored and mirrored.
An event now marks its Agent due; DELAY seconds later one summary is computed from the index as
it is then, covering every event in between. One summary per Agent runs at a time, so an older
one never lands after a newer one. A summary that fails is repaired by the resync pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gl_operator import index_copies

log = logging.getLogger(__name__)
DELAY = 0.2
Key = tuple[str, str]  # (namespace, agent)
Versions = Mapping[Any, Iterable[dict[str, Any]]]


class AgentSummaries:
    """Schedules ``write(namespace, agent, versions)`` on ``loop``'s executor, coalescing requests."""

    def __init__(self, loop: asyncio.AbstractEventLoop, write: Callable[[str, str, list[dict[str, Any]]], None],
                 delay: float = DELAY) -> None:
        self._loop, self._write, self._delay = loop, write, delay
        self._due: set[Key] = set()  # scheduled, not started
        self._running: set[Key] = set()
        self._again: set[Key] = set()  # asked for while running: one more after it
        self._index: Versions = {}

    def request(self, namespace: str, agent: str, index: Versions) -> None:
        """Ask for the Agent's summary from ``index`` (versions by (namespace, agent)); any thread."""
        self._loop.call_soon_threadsafe(self._schedule, (namespace, agent), index)

    def _schedule(self, key: Key, index: Versions) -> None:
        self._index = index
        if key in self._running:
            self._again.add(key)
        elif key not in self._due:
            self._due.add(key)
            self._loop.call_later(self._delay, self._start, key)

    def _start(self, key: Key) -> None:
        self._due.discard(key)
        self._running.add(key)
        versions = index_copies.bucket(self._index, key)  # on the loop: a whole bucket
        done = self._loop.run_in_executor(None, self._write, key[0], key[1], versions)
        done.add_done_callback(lambda future: self._finished(key, future))

    def _finished(self, key: Key, future: asyncio.Future[None]) -> None:
        self._running.discard(key)
        if not future.cancelled() and future.exception() is not None:
            log.error("summary of Agent %s/%s failed; the resync pass retries it", *key,
                      exc_info=future.exception())
        if key in self._again:
            self._again.discard(key)
            self._schedule(key, self._index)
