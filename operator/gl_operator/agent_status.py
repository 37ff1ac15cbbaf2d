"""An Agent's status summarises its versions: latest, certified, and how many in each state."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from gl_api import conditions, kinds, semver
from gl_api.lifecycle import State
from gl_kube import objects


def summarize(versions: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {state.value: 0 for state in State}
    published: list[semver.Version] = []
    certified: list[semver.Version] = []
    for version in versions:
        if version["metadata"].get("deletionTimestamp"):
            continue
        state = (version.get("status") or {}).get("state")
        if not state:
            continue
        counts[state] += 1
        parsed = semver.Version.parse(version["spec"]["version"])
        if state != State.retired.value:
            published.append(parsed)
        if state == State.certified.value:
            certified.append(parsed)
    return {
        "latestVersion": str(max(published)) if published else None,
        "certifiedVersion": str(max(certified)) if certified else None,
        "versionCounts": counts,
    }


def reconcile_agent(api: client.ApiClient, namespace: str, name: str,
                    versions: list[dict[str, Any]] | None = None) -> None:
    """Summarise the Agent's ``versions`` (from a watch-backed index; listed when not given) into its status."""
    agent = objects.get(api, kinds.AGENT, namespace, name)
    if agent is None or agent["metadata"].get("deletionTimestamp"):
        return
    if versions is None:
        versions = objects.list_objects(api, kinds.AGENT_VERSION, namespace, field_selector=f"spec.agent={name}")
    write_summary(api, agent, summarize(versions))


def _wanted(agent: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    status = agent.get("status") or {}
    generation = agent["metadata"].get("generation", 1)
    total = sum(summary["versionCounts"].values())
    message = (f"{total} versions; latest {summary['latestVersion']}, certified "
               f"{summary['certifiedVersion'] or 'none'}") if total else "no versions published yet"
    return {**summary, "observedGeneration": generation,
            "conditions": conditions.set_condition(status.get("conditions"), "Ready", True, "Reconciled",
                                                   message, generation)}


def is_current(agent: dict[str, Any], versions: list[dict[str, Any]]) -> bool:
    """Whether ``agent``'s status already says what ``versions`` add up to."""
    status = agent.get("status") or {}
    return all(status.get(key) == value for key, value in _wanted(agent, summarize(versions)).items())


def write_summary(api: client.ApiClient, agent: dict[str, Any], summary: dict[str, Any]) -> None:
    """Record ``summary`` on ``agent`` as read; an Agent deleted since then is left alone."""
    status = agent.get("status") or {}
    wanted = _wanted(agent, summary)
    if all(status.get(key) == value for key, value in wanted.items()):
        return
    objects.patch_status(api, kinds.AGENT, agent, wanted, missing_ok=True)
