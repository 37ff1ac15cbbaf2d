"""Warn AgentDeployments that still run a deprecated version: a Warning Event and a condition."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from gl_api import conditions, kinds, naming
from gl_api.lifecycle import State
from gl_kube import events, objects

CONDITION = "VersionDeprecated"


def used_version(deployment: dict[str, Any]) -> str | None:
    """The version serving: the stable one (what runs, a rollback included), else the one selected."""
    status = deployment.get("status") or {}
    return status.get("stableVersion") or status.get("resolvedVersion") or deployment["spec"].get("version")


def reconcile_deployment(api: client.ApiClient, namespace: str, name: str) -> None:
    def attempt() -> None:
        deployment = objects.get(api, kinds.AGENT_DEPLOYMENT, namespace, name)
        if deployment is None:
            return
        version_text = used_version(deployment)
        agent_namespace, agent = deployment["spec"]["agent"].split("/", 1)
        version = (objects.get(api, kinds.AGENT_VERSION, agent_namespace, naming.object_name(agent, version_text))
                   if version_text else None)
        status = deployment.get("status") or {}
        generation = deployment["metadata"].get("generation", 1)
        state = (version or {}).get("status", {}).get("state")
        if state in (State.deprecated.value, State.retired.value):
            deprecation = version["status"].get("deprecation") or {}  # type: ignore[index]
            message = (f"{agent}@{version_text} is {state}; replacement {deprecation.get('replacement') or 'none'}, "
                       f"sunset {deprecation.get('sunsetAt') or 'passed'}. Move this deployment to the replacement.")
            wanted = conditions.set_condition(status.get("conditions"), CONDITION, True, state.capitalize(),
                                              message, generation)
        else:
            message = f"{agent}@{version_text} is {state or 'unknown'}" if version_text else "no version resolved yet"
            wanted = conditions.set_condition(status.get("conditions"), CONDITION, False, "Supported", message,
                                              generation)
        if wanted == status.get("conditions"):
            return
        updated = objects.patch_status(api, kinds.AGENT_DEPLOYMENT, deployment, {"conditions": wanted}, guard=True,
                                       missing_ok=True)
        if updated is None:
            return
        was = conditions.get_condition(status.get("conditions"), CONDITION)
        if conditions.is_true(wanted, CONDITION) and (was is None or was.get("status") != "True"):
            events.record(api, updated, events.WARNING, "DeprecatedVersion", message)

    objects.retry_on_conflict(attempt)


def deployments_using(api: client.ApiClient, version: dict[str, Any]) -> list[dict[str, Any]]:
    agent_ref = f"{version['metadata']['namespace']}/{version['spec']['agent']}"
    return [d for d in objects.list_objects(api, kinds.AGENT_DEPLOYMENT)
            if d["spec"]["agent"] == agent_ref and used_version(d) == version["spec"]["version"]]
