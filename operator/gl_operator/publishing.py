"""Accept newly published AgentVersions into the lifecycle, and keep their labels true.

A version's bits go on record (digest_memory) before it is accepted, so every accepted version's
number stays bound to its bits, also after the version is deleted.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client

from gl_api import conditions, kinds, labels
from gl_kube import events, objects
from gl_operator import digest_memory, metrics, transitions

log = logging.getLogger(__name__)


def reconcile_version(api: client.ApiClient, namespace: str, name: str) -> None:
    objects.retry_on_conflict(lambda: _reconcile(api, namespace, name))


def _reconcile(api: client.ApiClient, namespace: str, name: str) -> None:
    version = objects.get(api, kinds.AGENT_VERSION, namespace, name)
    if version is None or version["metadata"].get("deletionTimestamp"):
        return
    status = version.get("status") or {}
    earlier = digest_memory.remember(api, version)
    if not status.get("state"):
        version = _publish(api, version, earlier)
        if version is None:
            return
    elif earlier:
        log.warning("%s/%s is accepted but the record of its number says %s; it says %s", namespace, name,
                    earlier, digest_memory.fingerprint(version["spec"]))
    _sync_labels(api, version)


def _publish(api: client.ApiClient, version: dict[str, Any], earlier: str | None) -> dict[str, Any] | None:
    meta, spec = version["metadata"], version["spec"]
    if earlier:
        # Only when the API server's policy was bypassed (removed, or the record edited by hand).
        return _refuse(api, version, "DigestConflict",
                       f"{spec['agent']}@{spec['version']} was published before with other bits ({earlier}); "
                       "delete this object and publish a new version")
    agent = objects.get(api, kinds.AGENT, meta["namespace"], spec["agent"])
    if agent is None:
        return _refuse(api, version, "AgentNotFound",
                       f"Agent {spec['agent']} does not exist in namespace {meta['namespace']}; create it "
                       "and this version is accepted automatically")
    status = version.get("status") or {}
    generation = meta.get("generation", 1)
    by = (meta.get("annotations") or {}).get(labels.CREATED_BY, "unknown")
    published = objects.patch_status(api, kinds.AGENT_VERSION, version,
                                  transitions.publish_status(status, generation, by, conditions.now()), guard=True)
    metrics.TRANSITIONS.labels(to="draft").inc()
    events.record(api, version, events.NORMAL, "Published",
                  f"{spec['agent']}@{spec['version']} accepted into the registry as draft")
    return published


def _refuse(api: client.ApiClient, version: dict[str, Any], reason: str, message: str) -> None:
    """Accepted=False with the reason, and one Warning Event, the first time."""
    status, generation = version.get("status") or {}, version["metadata"].get("generation", 1)
    previous = conditions.get_condition(status.get("conditions"), transitions.ACCEPTED)
    if previous is None or previous.get("reason") != reason:
        objects.patch_status(api, kinds.AGENT_VERSION, version, {
            "observedGeneration": generation,
            "conditions": conditions.set_condition(status.get("conditions"), transitions.ACCEPTED, False, reason,
                                                   message, generation),
        }, guard=True)
        events.record(api, version, events.WARNING, reason, message)
    return None


def _wanted_labels(version: dict[str, Any]) -> dict[str, str]:
    return {labels.STATE: version["status"]["state"], labels.AGENT: version["spec"]["agent"]}


def labels_drifted(version: dict[str, Any]) -> bool:
    """An accepted version whose state or agent label does not say what its status and spec do."""
    if not (version.get("status") or {}).get("state"):
        return False
    current = version["metadata"].get("labels") or {}
    return any(current.get(key) != value for key, value in _wanted_labels(version).items())


def _sync_labels(api: client.ApiClient, version: dict[str, Any]) -> None:
    if labels_drifted(version):
        objects.patch_labels(api, kinds.AGENT_VERSION, version, _wanted_labels(version))
