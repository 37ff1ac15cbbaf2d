"""Agent summaries coalesced per Agent on a real event loop: fewer writes, never an older one last."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from gl_operator.agent_summaries import AgentSummaries

KEY = ("team-a", "gl-cbam")


def view(version: str) -> dict[str, Any]:
    return {"spec": {"version": version}}


class Writes:
    """What the summaries wrote, in order, each taking ``seconds`` (an API round trip)."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.made: list[tuple[str, str, list[str]]] = []
        self.concurrent = 0
        self.most_concurrent = 0
        self._lock = threading.Lock()

    def __call__(self, namespace: str, agent: str, versions: list[dict[str, Any]]) -> None:
        with self._lock:
            self.concurrent += 1
            self.most_concurrent = max(self.most_concurrent, self.concurrent)
        time.sleep(self.seconds)
        with self._lock:
            self.concurrent -= 1
            self.made.append((namespace, agent, sorted(v["spec"]["version"] for v in versions)))


async def publish_burst(summaries: AgentSummaries, index: dict, count: int, every: float) -> None:
    """Versions arrive in the index and each asks for the summary, as kopf's event handler does."""
    index[KEY] = []
    for n in range(count):
        index[KEY] = [*index[KEY], view(f"1.0.{n}")]
        await asyncio.to_thread(summaries.request, *KEY, index)  # from a worker thread, as kopf's handlers
        await asyncio.sleep(every)


def test_a_burst_of_versions_is_summarised_a_few_times_and_last_with_all_of_them():
    writes = Writes(seconds=0.05)

    async def scenario() -> None:
        summaries = AgentSummaries(asyncio.get_running_loop(), writes, delay=0.1)
        index: dict = {}
        await publish_burst(summaries, index, count=50, every=0.01)  # 50 events in about 0.5 s
        await asyncio.sleep(2)  # every write done

    asyncio.run(scenario())
    assert 1 < len(writes.made) <= 10  # at most one a window, not one per event
    assert writes.made[-1][2] == sorted(f"1.0.{n}" for n in range(50))
    assert writes.most_concurrent == 1  # one at a time: an older summary never lands last


def test_an_event_during_a_slow_write_gets_a_summary_after_it():
    writes = Writes(seconds=0.5)

    async def scenario() -> None:
        summaries = AgentSummaries(asyncio.get_running_loop(), writes, delay=0.05)
        index: dict = {KEY: [view("1.0.0")]}
        summaries.request(*KEY, index)
        await asyncio.sleep(0.2)  # the first write is under way
        index[KEY] = [view("1.0.0"), view("1.0.1")]
        summaries.request(*KEY, index)
        await asyncio.sleep(2)  # every write done

    asyncio.run(scenario())
    assert [versions for _, _, versions in writes.made] == [["1.0.0"], ["1.0.0", "1.0.1"]]


def test_agents_are_summarised_independently_and_a_failure_does_not_stop_the_next():
    made: list[str] = []

    def write(namespace: str, agent: str, versions: list[dict[str, Any]]) -> None:
        made.append(agent)
        if agent == "broken":
            raise RuntimeError("the API server said no")

    async def scenario() -> None:
        summaries = AgentSummaries(asyncio.get_running_loop(), write, delay=0.05)
        index = {("team-a", "broken"): [view("1.0.0")], ("team-a", "fine"): [view("2.0.0")]}
        summaries.request("team-a", "broken", index)
        summaries.request("team-a", "fine", index)
        await asyncio.sleep(0.5)
        summaries.request("team-a", "broken", index)
        await asyncio.sleep(0.5)

    asyncio.run(scenario())
    assert sorted(made) == ["broken", "broken", "fine"]
