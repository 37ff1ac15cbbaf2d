"""kopf handlers: thin wiring from watch events to the reconcile functions.

Every handler is idempotent and level-based (it re-reads the object), so kopf may run it
again after a crash or a retry without harm.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

import kopf
from kubernetes.client.rest import ApiException

from gl_api import GROUP, VERSION, conditions, kinds, labels
from gl_api.lifecycle import State
from gl_kube import events, objects
from gl_operator import (agent_deployments, agent_status, agent_summaries, deprecation_notices, essence,
                         index_copies, metrics, orphans, policy_publication, promotions, publishing, resync,
                         tenant_provisioning)
from gl_operator.config import OperatorConfig

log = logging.getLogger(__name__)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf's bookkeeping goes into our own annotation domain, never into our status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = essence.WithoutOperatorLabels(
        prefix=GROUP, key="last-handled-configuration")
    # The operator posts its own Events for decisions; log lines are not Events.
    settings.posting.enabled = False
    # Only TenantPolicies carry it: their deletion waits until no AgentDeployment runs in them.
    settings.persistence.finalizer = f"{GROUP}/tenant-protection"
    # Re-establish watches regularly so a silently dropped connection costs minutes, not hours.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.execution.max_workers = 8
    # No kopf worker_limit: a handler's retry sleeps in its worker's slot, so objects retrying
    # (e.g. 130 versions left in a deleted namespace) took every slot and the operator never
    # finished indexing; AgentDeployment rollouts waited forever (CI, 2026-11-28). Its memory
    # gain (docs/benchmarks.md, memory) needs a bound that retries cannot exhaust.


@kopf.on.startup()
async def start_loop_helpers(memo: kopf.Memo, **_: Any) -> None:
    loop = asyncio.get_running_loop()
    memo.copy_bucket = index_copies.IndexCopier(loop)
    memo.agent_summaries = agent_summaries.AgentSummaries(loop, functools.partial(_summarize_agent, memo.api))


def _summarize_agent(api: Any, namespace: str, agent: str, versions: list[dict[str, Any]]) -> None:
    with metrics.RECONCILE.labels(kind="Agent").time(), orphans.tolerated("Agent", namespace, agent):
        agent_status.reconcile_agent(api, namespace, agent, versions)


@kopf.on.startup()
async def start_resync(memo: kopf.Memo, **_: Any) -> None:
    memo.resync_task = asyncio.create_task(resync.run_forever(memo.api, memo.config))


@kopf.on.startup()
def publish_promotion_policy(memo: kopf.Memo, **_: Any) -> None:
    # Never blocks the operator: without it, dry runs say they judge with the registry's defaults.
    try:
        policy_publication.publish(memo.api, memo.config.promotion)
    except ApiException as error:
        log.error("could not publish the promotion policy for dry runs: %s", objects.explain(error))


@kopf.on.cleanup()
async def stop_resync(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "resync_task", None)
    if task:
        task.cancel()


@kopf.on.resume(GROUP, VERSION, "agentversions")
@kopf.on.create(GROUP, VERSION, "agentversions")
@kopf.on.update(GROUP, VERSION, "agentversions")
@orphans.in_namespace("AgentVersion")
def agent_version_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    with metrics.RECONCILE.labels(kind="AgentVersion").time():
        publishing.reconcile_version(memo.api, namespace, name)


# What dependants of a version look at; other changes (conditions, labels, kopf's annotations)
# need no Agent summary or Promotion re-check. The resync loop covers anything missed here.
_seen: dict[str, tuple[str, ...]] = {}


def _fingerprint(body: kopf.Body) -> tuple[str, ...]:
    status = body.get("status") or {}
    return tuple(json.dumps(status.get(key), sort_keys=True)
                 for key in ("state", "evaluation", "securityScan", "usage", "deprecation"))


@kopf.on.event(GROUP, VERSION, "agentversions")
@orphans.in_namespace("AgentVersion")
def agent_version_event(body: kopf.Body, namespace: str, memo: kopf.Memo, type: str,
                        agent_versions_by_agent: kopf.Index[Any, Any], open_promotions: kopf.Index[Any, Any],
                        **_: Any) -> None:
    """Versions come and go and results arrive in status: refresh what depends on them.

    From the indexes, never a LIST: a burst of publishes of one agent would otherwise list all
    its versions once per event (quadratic; docs/benchmarks.md, publish). The Agent's summary is
    asked for, and written once for all the events of a short window (agent_summaries).
    """
    spec, status = body.get("spec") or {}, body.get("status") or {}
    if not spec.get("agent"):
        return
    uid = body.get("metadata", {}).get("uid", "")
    if type == "DELETED":
        _seen.pop(uid, None)
    else:
        fingerprint = _fingerprint(body)
        if _seen.get(uid) == fingerprint:
            return
        _seen[uid] = fingerprint
    memo.agent_summaries.request(namespace, spec["agent"], agent_versions_by_agent)
    for promotion in memo.copy_bucket(open_promotions, (namespace, f"{spec['agent']}@{spec['version']}")):
        promotions.reconcile_promotion(memo.api, memo.config, namespace, promotion)
    if status.get("state") in (State.deprecated.value, State.retired.value):
        for deployment in deprecation_notices.deployments_using(memo.api, dict(body)):
            meta = deployment["metadata"]
            deprecation_notices.reconcile_deployment(memo.api, meta["namespace"], meta["name"])


@kopf.on.resume(GROUP, VERSION, "promotions")
@kopf.on.create(GROUP, VERSION, "promotions")
@kopf.on.update(GROUP, VERSION, "promotions")
@orphans.in_namespace("Promotion")
def promotion_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    with metrics.RECONCILE.labels(kind="Promotion").time():
        promotions.reconcile_promotion(memo.api, memo.config, namespace, name)


@kopf.on.resume(GROUP, VERSION, "agents")
@kopf.on.create(GROUP, VERSION, "agents")
@orphans.in_namespace("Agent")
def agent_created(namespace: str, name: str, memo: kopf.Memo, agent_versions_by_agent: kopf.Index[Any, Any],
                  **_: Any) -> None:
    """Versions published before their Agent existed are accepted once it does (from the index: no LIST)."""
    with metrics.RECONCILE.labels(kind="Agent").time():
        versions = memo.copy_bucket(agent_versions_by_agent, (namespace, name))
        for version in versions:
            if not version["status"]["state"]:
                publishing.reconcile_version(memo.api, namespace, version["metadata"]["name"])
        # Versions accepted just now are counted when their own events come (agent_version_event).
        agent_status.reconcile_agent(memo.api, namespace, name, versions)


@kopf.on.resume(GROUP, VERSION, "agentdeployments")
@kopf.on.create(GROUP, VERSION, "agentdeployments")
@kopf.on.update(GROUP, VERSION, "agentdeployments")
@orphans.in_namespace("AgentDeployment")
def agent_deployment_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    with metrics.RECONCILE.labels(kind="AgentDeployment").time():
        deprecation_notices.reconcile_deployment(memo.api, namespace, name)


@kopf.on.resume(GROUP, VERSION, "tenantpolicies")
@kopf.on.create(GROUP, VERSION, "tenantpolicies")
@kopf.on.update(GROUP, VERSION, "tenantpolicies")
def tenant_changed(name: str, memo: kopf.Memo, **_: Any) -> None:
    with metrics.RECONCILE.labels(kind="TenantPolicy").time():
        tenant_provisioning.reconcile_tenant(memo.api, name)


@kopf.on.delete(GROUP, VERSION, "tenantpolicies")
def tenant_deleted(name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    blocker = tenant_provisioning.deletion_blockers(memo.api, name)
    if blocker:
        tenant = dict(body)
        status = tenant.get("status") or {}
        objects.patch_status(memo.api, kinds.TENANT_POLICY, tenant, {"conditions": conditions.set_condition(
            status.get("conditions"), "Ready", False, "DeletionBlocked", blocker, tenant["metadata"].get("generation"))})
        events.record(memo.api, tenant, events.WARNING, "DeletionBlocked", blocker)
        raise kopf.TemporaryError(blocker, delay=5)


# --- AgentDeployments: workloads, rollouts, SLO analysis (agent_deployments.py) -------------------
# Indexes answer the hot-path lookups from memory: an AgentDeployment's round never lists.

@kopf.index(GROUP, VERSION, "agentversions")
def agent_versions_by_agent(namespace: str, name: str, spec: kopf.Spec, status: kopf.Status,
                            **_: Any) -> dict[Any, Any]:
    if not spec.get("agent") or not spec.get("version"):
        return {}
    return {(namespace, spec["agent"]): agent_deployments.version_view(namespace, name, spec, status)}


@kopf.index(GROUP, VERSION, "promotions")
def open_promotions(namespace: str, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any) -> dict[Any, Any]:
    """Promotions still to decide, by the version they promote: a version's news may decide them."""
    if status.get("phase") in promotions.TERMINAL or not spec.get("agentVersion"):
        return {}
    return {(namespace, spec["agentVersion"]): name}


@kopf.index(GROUP, VERSION, "tenantpolicies")
def tenant_environments(name: str, spec: kopf.Spec, **_: Any) -> dict[Any, Any]:
    return agent_deployments.tenant_views(name, spec)


@kopf.index("apps", "v1", "deployments", labels={labels.DEPLOYMENT: kopf.PRESENT})
def agent_workloads(namespace: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    return {(namespace, body["metadata"]["labels"][labels.DEPLOYMENT]): agent_deployments.observe(body)}


def _lookups(memo: kopf.Memo, kwargs: dict[str, Any]) -> agent_deployments.Lookups:
    return agent_deployments.Lookups(kwargs["agent_versions_by_agent"], kwargs["tenant_environments"],
                                     kwargs["agent_workloads"], memo.copy_bucket)


@kopf.on.resume(GROUP, VERSION, "agentdeployments")
@kopf.on.create(GROUP, VERSION, "agentdeployments")
@kopf.on.update(GROUP, VERSION, "agentdeployments")
@orphans.in_namespace("AgentDeployment")
def agent_deployment_rollout(namespace: str, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    with metrics.RECONCILE.labels(kind="AgentDeployment").time():
        agent_deployments.reconcile(memo.api, memo.config, namespace, name, _lookups(memo, kwargs))


@kopf.on.event("apps", "v1", "deployments", labels={labels.DEPLOYMENT: kopf.PRESENT})
@orphans.in_namespace("Deployment")
def agent_workload_changed(namespace: str, body: kopf.Body, memo: kopf.Memo, type: str, **kwargs: Any) -> None:
    """Replicas became ready (or a quota refused them): the rollout may move on now, not at the next tick."""
    owners = [o for o in body["metadata"].get("ownerReferences") or []
              if o.get("kind") == kinds.AGENT_DEPLOYMENT.kind and o.get("controller")]
    if not owners or type == "DELETED":
        return
    agent_deployments.reconcile(memo.api, memo.config, namespace, owners[0]["name"], _lookups(memo, kwargs))


def register_deployment_timer(config: OperatorConfig) -> None:
    """The periodic round of every AgentDeployment (steps end and analyses run on time, not on events),
    registered once the operator's settings are known."""

    @kopf.timer(GROUP, VERSION, "agentdeployments", interval=config.deployments.reconcile_seconds,
                initial_delay=config.deployments.reconcile_seconds, sharp=False, id="agent_deployment_round")
    @orphans.in_namespace("AgentDeployment")
    def agent_deployment_round(namespace: str, name: str, body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
        with metrics.RECONCILE.labels(kind="AgentDeployment").time():
            lookups = _lookups(memo, kwargs)
            agent_deployments.reconcile(memo.api, memo.config, namespace, name, lookups)
            agent_deployments.write_usage(memo.api, memo.config, dict(body), lookups)
