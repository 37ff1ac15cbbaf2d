"""Accept newly published AgentVersions into the lifecycle, and keep their labels true."""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client

from gl_api import conditions, kinds, labels
from gl_kube import events, objects
from gl_operator import metrics, transitions

log = logging.getLogger(__name__)


def reconcile_version(api: client.ApiClient, namespace: str, name: str) -> None:
    objects.retry_on_conflict(lambda: _reconcile(api, namespace, name))


def _reconcile(api: client.ApiClient, namespace: str, name: str) -> None:
    version = objects.get(api, kinds.AGENT_VERSION, namespace, name)
    if version is None or version["metadata"].get("deletionTimestamp"):
        return
    status = version.get("status") or {}
    if not status.get("state"):
        version = _publish(api, version)
        if version is None:
            return
    _sync_labels(api, version)


def _publish(api: client.ApiClient, version: dict[str, Any]) -> dict[str, Any] | None:
    meta, spec = version["metadata"], version["spec"]
    status = version.get("status") or {}
    agent = objects.get(api, kinds.AGENT, meta["namespace"], spec["agent"])
    generation = meta.get("generation", 1)
    if agent is None:
        message = (f"Agent {spec['agent']} does not exist in namespace {meta['namespace']}; create it "
                   "and this version is accepted automatically")
        previous = conditions.get_condition(status.get("conditions"), transitions.ACCEPTED)
        if previous is None or previous.get("reason") != "AgentNotFound":
            objects.patch_status(api, kinds.AGENT_VERSION, version, {
                "observedGeneration": generation,
                "conditions": conditions.set_condition(status.get("conditions"), transitions.ACCEPTED, False,
                                                       "AgentNotFound", message, generation),
            }, guard=True)
            events.record(api, version, events.WARNING, "AgentNotFound", message)
        return None
    by = (meta.get("annotations") or {}).get(labels.CREATED_BY, "unknown")
    published = objects.patch_status(api, kinds.AGENT_VERSION, version,
                                  transitions.publish_status(status, generation, by, conditions.now()), guard=True)
    metrics.TRANSITIONS.labels(to="draft").inc()
    events.record(api, version, events.NORMAL, "Published",
                  f"{spec['agent']}@{spec['version']} accepted into the registry as draft")
    return published


def _sync_labels(api: client.ApiClient, version: dict[str, Any]) -> None:
    wanted = {labels.STATE: version["status"]["state"], labels.AGENT: version["spec"]["agent"]}
    current = version["metadata"].get("labels") or {}
    if any(current.get(key) != value for key, value in wanted.items()):
        objects.patch_labels(api, kinds.AGENT_VERSION, version, wanted)
