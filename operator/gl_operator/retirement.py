"""Retire deprecated versions once their sunset has passed; the date lives in status, so restarts lose nothing."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from gl_api import conditions, kinds, labels
from gl_api.lifecycle import State
from gl_kube import events, objects
from gl_operator import metrics, transitions
from gl_operator.config import OperatorConfig


def due(version: dict[str, Any], now: Any) -> bool:
    status = version.get("status") or {}
    sunset = (status.get("deprecation") or {}).get("sunsetAt")
    return status.get("state") == State.deprecated.value and sunset is not None \
        and conditions.parse_timestamp(sunset) <= now


def retire_if_due(api: client.ApiClient, config: OperatorConfig, namespace: str, name: str) -> None:
    def attempt() -> None:
        version = objects.get(api, kinds.AGENT_VERSION, namespace, name)
        now = conditions.now()
        if version is None or not due(version, now):
            return
        sunset = version["status"]["deprecation"]["sunsetAt"]
        change = transitions.Transition(to=State.retired, by=config.service_account,
                                        reason=f"sunset {sunset} reached")
        updated = objects.patch_status(api, kinds.AGENT_VERSION, version, transitions.transition_status(
            version["status"], change, version["metadata"].get("generation", 1), now), guard=True)
        objects.patch_labels(api, kinds.AGENT_VERSION, updated, {labels.STATE: State.retired.value})
        metrics.TRANSITIONS.labels(to=State.retired.value).inc()
        events.record(api, updated, events.NORMAL, "Retired",
                      f"{version['spec']['agent']}@{version['spec']['version']} retired: sunset {sunset} reached")

    objects.retry_on_conflict(attempt)
