"""Reconcile one AgentDeployment into running workloads: resolve, measure, plan, apply, record.

Called from kopf's handlers (create, update, resume, a timer every ``deployments.reconcileSeconds``
and changes of the Deployments it owns). Lookups come from kopf indexes (AgentVersions by agent,
TenantPolicy environments by namespace, owned Deployments by AgentDeployment): a round costs one
GET of the AgentDeployment, the Prometheus queries, the server-side applies that changed and
at most one status write. Decisions are posted as Events: Resolved, RolloutStarted,
StepAdvanced, Promoted, RolloutAborted, SLOBreach, RolledBack, QuotaExceeded.

A Canary also gets an HTTPRoute weighting ``<glad>-stable`` and ``<glad>-canary`` when the
cluster serves Gateway API HTTPRoutes; whether it does is asked of the discovery API at the first
round and then at most every ``deployments.gatewayCheckSeconds`` (never per round).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from gl_api import conditions, kinds, labels, slo
from gl_api.models import StrategyType
from gl_kube import events, objects
from gl_kube.prometheus import Prometheus, PrometheusError
from gl_operator import deployment_resolution, index_copies, rollout, slo_analysis, workloads
from gl_operator.config import OperatorConfig
from gl_operator.deployment_resolution import Outcome

log = logging.getLogger(__name__)
FIELD_MANAGER = labels.OPERATOR_NAME
REAPPLY_SECONDS = 300  # re-apply unchanged objects this often, repairing hand edits and deletions
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
# What this process applied, by (kind, namespace, name, owner uid): digest and time. Worker
# threads reconcile different AgentDeployments at once, so every access holds _applied_lock.
_applied: dict[tuple[str, str, str, str], tuple[str, float]] = {}
_applied_lock = threading.Lock()
_usage_written: dict[tuple[str, str, str], float] = {}
_measured: dict[tuple[str, str, str | None], float] = {}  # last measurement attempt, by deployment and version
_absent: set[tuple[str, str, str]] = set()
ROUTE_API_VERSION = f"{workloads.GATEWAY_GROUP}/{workloads.GATEWAY_VERSION}"


@dataclass
class _GatewayApi:
    """Whether the cluster serves HTTPRoutes, as last seen, and when that was asked."""

    served: bool = False
    checked: float = float("-inf")


_gateway = _GatewayApi()
_gateway_lock = threading.Lock()


@dataclass(frozen=True)
class Lookups:
    """What the kopf indexes know: AgentVersion views by (namespace, agent), TenantPolicy environments
    by namespace, owned Deployment observations by (namespace, AgentDeployment). ``copy`` takes a
    bucket out of an index; handlers in worker threads pass one that copies on the event loop
    (index_copies)."""

    versions: Mapping[Any, Iterable[dict[str, Any]]]
    tenants: Mapping[Any, Iterable[dict[str, Any]]]
    workloads: Mapping[Any, Iterable[dict[str, Any]]]
    copy: Callable[[Mapping[Any, Iterable[dict[str, Any]]], Any], list[dict[str, Any]]] = index_copies.bucket

    def agent_versions(self, namespace: str, agent: str) -> dict[str, dict[str, Any]]:
        return {v["spec"]["version"]: v for v in self.copy(self.versions, (namespace, agent))}

    def tenant(self, namespace: str) -> list[dict[str, Any]]:
        return self.copy(self.tenants, namespace)

    def owned(self, namespace: str, name: str, uid: str) -> dict[str, rollout.Observed]:
        return {o["name"]: rollout.Observed(**{k: v for k, v in o.items() if k != "owner"})
                for o in self.copy(self.workloads, (namespace, name)) if o.get("owner") == uid}


# --- index views (what the kopf indexes keep) -----------------------------------------------------

def version_view(namespace: str, name: str, spec: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """An AgentVersion as its readers need it, shaped as the object (``agent_status.summarize`` reads both)."""
    return {"metadata": {"namespace": namespace, "name": name}, "spec": dict(spec),
            "status": {"state": status.get("state")}}


def _state(view: Mapping[str, Any] | None) -> str | None:
    return ((view or {}).get("status") or {}).get("state")


def tenant_views(name: str, spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {env["namespace"]: {"metadata": {"name": name}, "spec": {"environments": [dict(env)]}}
            for env in spec.get("environments") or [] if env.get("namespace")}


def _quota_message(status: Mapping[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True" \
                and "exceeded quota" in (condition.get("message") or ""):
            return condition["message"]
    return None


def observe(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an owned Deployment the rollout reads."""
    meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    owner = next((o.get("uid") for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    history = ((meta.get("annotations") or {}).get(labels.STABLE_HISTORY) or "").split(",")
    return {"name": meta["name"], "owner": owner, "version": (meta.get("labels") or {}).get(labels.VERSION),
            "replicas": spec.get("replicas"), "ready": status.get("readyReplicas") or 0,
            "updated": status.get("updatedReplicas") or 0, "total": status.get("replicas") or 0,
            "current": (status.get("observedGeneration") or 0) >= (meta.get("generation") or 0),
            "quota_message": _quota_message(status), "history": tuple(v for v in history if v)}


# --- applying ------------------------------------------------------------------------------------

def artifact_store_environment() -> dict[str, str]:
    return {key: os.environ[key] for key in workloads.ARTIFACT_STORE_KEYS if os.environ.get(key)}


def _resource(api: client.ApiClient, obj: Mapping[str, Any]) -> Any:
    return dynamic.DynamicClient(api).resources.get(api_version=obj["apiVersion"], kind=obj["kind"])


def apply(api: client.ApiClient, obj: dict[str, Any], force_fresh: bool = False) -> None:
    """Server-side apply as ``greenlang-registry-operator``, skipped when unchanged since the last
    apply a moment ago."""
    meta = obj["metadata"]
    key = (obj["kind"], meta["namespace"], meta["name"], meta["ownerReferences"][0]["uid"])
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
    with _applied_lock:
        seen = _applied.get(key)
    if not force_fresh and seen and seen[0] == digest and time.monotonic() - seen[1] < REAPPLY_SECONDS:
        return
    _resource(api, obj).server_side_apply(body=obj, namespace=meta["namespace"], field_manager=FIELD_MANAGER,
                                          force_conflicts=True)
    with _applied_lock:
        _applied[key] = (digest, time.monotonic())
        _absent.discard(key[:3])


def _forget(matches) -> None:  # type: ignore[no-untyped-def]
    """Drop what ``matches`` selects from the record of applied objects."""
    with _applied_lock:
        for key in [k for k in _applied if matches(k)]:
            del _applied[key]


def _was_applied(kind: str, namespace: str, name: str) -> bool:
    with _applied_lock:
        return any(k[:3] == (kind, namespace, name) for k in _applied)


def delete(api: client.ApiClient, api_version: str, kind: str, namespace: str, name: str) -> bool:
    try:
        _resource(api, {"apiVersion": api_version, "kind": kind}).delete(name=name, namespace=namespace)
    except ApiException as error:
        if error.status != 404:
            raise
        return False
    finally:
        _forget(lambda k: k[:3] == (kind, namespace, name))
    return True


# --- Gateway API ---------------------------------------------------------------------------------

def gateway_routes_served(api: client.ApiClient, config: OperatorConfig) -> bool:
    """Whether ``httproutes.gateway.networking.k8s.io/v1`` is served: one discovery GET, repeated at
    most every ``deployments.gatewayCheckSeconds`` (so CRDs installed or removed later are noticed)."""
    with _gateway_lock:
        if time.monotonic() - _gateway.checked < config.deployments.gateway_check_seconds:
            return _gateway.served
        served = _gateway.served
        try:
            found = client.CustomObjectsApi(api).get_api_resources(workloads.GATEWAY_GROUP,
                                                                   workloads.GATEWAY_VERSION)
            served = any(r.name == "httproutes" for r in (found.resources or []) if r is not None)
        except ApiException as error:
            if error.status == 404:
                served = False
            else:
                log.warning("cannot tell whether Gateway API HTTPRoutes are served (%s %s); assuming %s",
                            error.status, error.reason, "yes" if served else "no")
        except urllib3.exceptions.HTTPError as error:
            log.warning("cannot tell whether Gateway API HTTPRoutes are served (%s); assuming %s", error,
                        "yes" if served else "no")
        _record_gateway(served)
        return served


def _record_gateway(served: bool) -> None:
    if served != _gateway.served:
        log.info("Gateway API HTTPRoutes are %s: Canary traffic is split %s", "served" if served else "not served",
                 "by HTTPRoute weights (and the replica ratio)" if served else "by the replica ratio only")
        # Routes remembered as applied may have gone with their CRD: apply them afresh next time.
        _forget(lambda k: k[0] == "HTTPRoute")
    _gateway.served, _gateway.checked = served, time.monotonic()


def _routes_wanted(glad: Mapping[str, Any], plan: rollout.Plan, gateway: bool) -> bool:
    return gateway and bool(plan.deployments) and plan.status.get("stableVersion") is not None and \
        rollout.strategy(glad["spec"]).get("type") == StrategyType.canary.value


def _apply_route(api: client.ApiClient, obj: dict[str, Any]) -> None:
    """Apply an HTTPRoute; a failure leaves traffic to the replica ratio and never stops the rollout."""
    meta = obj["metadata"]
    try:
        apply(api, obj)
    except (ResourceNotFoundError, ApiException) as error:
        if isinstance(error, ResourceNotFoundError) or error.status == 404:
            with _gateway_lock:
                _record_gateway(False)  # the CRD went since the last check
            return
        log.warning("HTTPRoute %s/%s not applied (%s %s): traffic follows the replica ratio", meta["namespace"],
                    meta["name"], error.status, error.reason)


def _delete_route(api: client.ApiClient, namespace: str, name: str) -> None:
    try:
        _delete_if_applied(api, ROUTE_API_VERSION, "HTTPRoute", namespace, name)
    except ResourceNotFoundError:
        pass
    except ApiException as error:
        log.warning("HTTPRoute %s/%s not deleted (%s %s)", namespace, name, error.status, error.reason)


# --- one round -----------------------------------------------------------------------------------

def _prometheus(config: OperatorConfig) -> Prometheus | None:
    url = config.deployments.prometheus_url
    return Prometheus(url, config.deployments.prometheus_timeout_seconds) if url else None


def _measure(config: OperatorConfig, glad: dict[str, Any], version: str | None, state: str | None,
             now: Any) -> slo_analysis.Result | None:
    """A fresh measurement when the last is older than the reconcile period (each one counts once), else None."""
    prometheus = _prometheus(config)
    status = glad.get("status") or {}
    last = status.get("slo") or {}
    if prometheus is not None and last.get("version") == version and last.get("measuredAt"):
        age = (now - conditions.parse_timestamp(last["measuredAt"])).total_seconds()
        if age < config.deployments.reconcile_seconds * 0.8:
            return None
    # Also in memory, for the attempts that record nothing (Prometheus unreachable): without this, every
    # owned-Deployment event would spend a worker thread on a query timing out.
    key = (glad["metadata"]["namespace"], glad["metadata"]["name"], version)
    if time.monotonic() - _measured.get(key, float("-inf")) < config.deployments.reconcile_seconds * 0.8:
        return None
    _measured[key] = time.monotonic()
    settings = rollout.analysis(glad["spec"])
    return slo_analysis.analyse(
        prometheus, namespace=glad["metadata"]["namespace"], deployment=glad["metadata"]["name"], version=version,
        objectives=slo.objectives(glad["spec"].get("slo"), state), window_seconds=int(settings["windowSeconds"]),
        min_requests=int(settings["minRequests"]), now=now)


def _desired(glad: dict[str, Any], plan: rollout.Plan, versions: Mapping[str, dict[str, Any]],
             config: OperatorConfig, gateway: bool = False) -> tuple[list[dict[str, Any]], str | None]:
    """Every object to apply, and a reason nothing can run (no image) if so."""
    environment = artifact_store_environment()
    result = [workloads.service_account(glad), workloads.artifact_secret(glad, environment)]
    per_version = rollout.per_version(glad["spec"])
    problem = None
    serve_port = workloads.DEFAULT_PORT
    for want in plan.deployments:
        version = versions.get(want.version)
        if version is None:
            problem = f"AgentVersion {want.version} is not in the registry any more; keeping what runs"
            continue
        if workloads.image(version["spec"], config.deployments.runtime_image) is None:
            problem = (f"{want.version} has no spec.image and the operator has no runtime image "
                       "(--runtime-image, $GL_RUNTIME_IMAGE)")
            continue
        serve_port = workloads.port(version["spec"])
        result.append(workloads.deployment(glad, version, want.name, want.replicas, per_version=per_version,
                                           runtime_image=config.deployments.runtime_image,
                                           history=list(want.history),
                                           placement=config.deployments.placement.pod_fields()))
    if plan.deployments:
        result.append(workloads.service(glad, plan.service_version))
        if plan.preview_version:
            result.append(workloads.preview_service(glad, plan.preview_version))
        if plan.autoscaler_target:
            scaler = workloads.autoscaler(glad, plan.autoscaler_target)
            if scaler:
                result.append(scaler)
        result.append(workloads.disruption_budget(glad))
        result.append(workloads.network_policy(glad, serve_port, environment.get("GL_S3_ENDPOINT")))
    if _routes_wanted(glad, plan, gateway):
        # The Services first: the route never names a backend that does not exist yet.
        result.extend(workloads.split_services(glad, plan.status["stableVersion"], plan.status.get("canaryVersion")))
        result.append(workloads.http_route(glad, rollout.canary_traffic_weight(glad["spec"], plan.status),
                                           config.deployments.gateway))
    return result, problem


def reconcile(api: client.ApiClient, config: OperatorConfig, namespace: str, name: str, lookups: Lookups) -> None:
    with _locks[(namespace, name)]:
        objects.retry_on_conflict(lambda: _reconcile(api, config, namespace, name, lookups))


def _reconcile(api: client.ApiClient, config: OperatorConfig, namespace: str, name: str, lookups: Lookups) -> None:
    glad = objects.get(api, kinds.AGENT_DEPLOYMENT, namespace, name)
    if glad is None or glad["metadata"].get("deletionTimestamp"):
        return
    now = conditions.now()
    spec, meta = glad["spec"], glad["metadata"]
    previous = dict(glad.get("status") or {})
    generation = meta.get("generation")
    agent_namespace, agent = spec["agent"].split("/", 1)
    versions = lookups.agent_versions(agent_namespace, agent)
    tenant = deployment_resolution.environment(lookups.tenant(namespace), namespace)
    resolved = deployment_resolution.resolve(glad, {v: _state(view) for v, view in versions.items()}, tenant)
    observed = lookups.owned(namespace, name, meta["uid"])

    analysed = rollout.analysed_version(previous)
    measurement = _measure(config, glad, analysed, _state(versions.get(analysed or "")), now)
    verdicts = {analysed: measurement.verdict} if measurement and analysed else {}
    target = resolved.version if resolved.outcome is Outcome.resolved else None
    plan = rollout.plan(glad, target, resolved.rolled_back, observed, verdicts,
                        analysis_enabled=config.deployments.prometheus_url is not None, now=now,
                        held_back=resolved.held_back is not None)

    gateway = gateway_routes_served(api, config)
    desired, problem = _desired(glad, plan, versions, config, gateway)
    status = dict(plan.status)
    status["resolvedVersion"] = resolved.version
    status["handledRetry"] = resolved.handled_retry
    conds = status["conditions"]
    if resolved.outcome is not Outcome.resolved or problem:
        reason, message = (resolved.reason, resolved.message) if resolved.outcome is not Outcome.resolved \
            else ("NoImage" if "image" in problem else "VersionMissing", problem)  # type: ignore[operator]
        failed = resolved.outcome is Outcome.failed or (problem is not None and "image" in problem)
        if failed:
            status["phase"] = "Failed"
        elif status.get("stableVersion") is None:
            status["phase"] = "Pending"
        conds = conditions.set_condition(conds, rollout.PROGRESSING, False, reason, message, generation, now)
        if status.get("stableVersion") is None or not observed:
            conds = conditions.set_condition(conds, rollout.AVAILABLE, False, reason, message, generation, now)
    if measurement is not None:
        state_, reason, message = measurement.condition
        conds = conditions.set_condition(conds, slo_analysis.CONDITION, state_, reason, message, generation, now)
        if measurement.status.get("slo"):
            status["slo"] = {**{k: None for k in ("requests", "errorRate", "availability", slo.P50, slo.P95,
                                                    slo.P99)}, **measurement.status["slo"]}
        if measurement.status.get("errorBudget"):
            status["errorBudget"] = measurement.status["errorBudget"]
    elif conditions.get_condition(conds, slo_analysis.CONDITION) is None:
        conds = conditions.set_condition(conds, slo_analysis.CONDITION, "Unknown", "NotMeasured",
                                         "not measured yet", generation, now)
    status["conditions"] = conds

    wanted_events = list(plan.events)
    if resolved.version and resolved.version != previous.get("resolvedVersion"):
        wanted_events.insert(0, (events.NORMAL, "Resolved", f"{deployment_resolution.selector(spec)} selects {resolved.message}"))
    was = conditions.get_condition(previous.get("conditions"), rollout.AVAILABLE) or {}
    now_available = conditions.get_condition(conds, rollout.AVAILABLE) or {}
    if now_available.get("reason") == "QuotaExceeded" and was.get("reason") != "QuotaExceeded":
        wanted_events.append((events.WARNING, "QuotaExceeded", now_available["message"]))
    was_phase = previous.get("phase")
    if status.get("phase") == "Failed" and was_phase != "Failed":
        wanted_events.append((events.WARNING, resolved.reason if resolved.outcome is Outcome.failed else "Failed",
                              resolved.message if resolved.outcome is Outcome.failed else str(problem)))

    # The decision is recorded before it is carried out: a conflict or a crash after this write
    # leaves a status the next round actuates again (applies are idempotent), never a promotion or
    # a rollback done to the workloads and missing from the status (and from the audit trail).
    if _changed(previous, status):
        objects.patch_status(api, kinds.AGENT_DEPLOYMENT, glad, status, guard=True)
    for type_, reason, message in wanted_events:
        events.record(api, glad, type_, reason, message)
    for obj in desired:
        if obj["kind"] == "HTTPRoute":
            _apply_route(api, obj)
            continue
        apply(api, obj, force_fresh=obj["kind"] == "Deployment" and obj["metadata"]["name"] not in observed)
    for stale in set(observed) - plan.names:
        delete(api, "apps/v1", "Deployment", namespace, stale)
    if not plan.preview_version:
        _delete_if_applied(api, "v1", "Service", namespace, workloads.preview_name(name))
    if not spec.get("autoscaling"):
        _delete_if_applied(api, "autoscaling/v2", "HorizontalPodAutoscaler", namespace, name)
    if not any(o["kind"] == "HTTPRoute" for o in desired):
        if _gateway.served:
            _delete_route(api, namespace, name)
        for split in (workloads.stable_service_name(name), workloads.canary_service_name(name)):
            _delete_if_applied(api, "v1", "Service", namespace, split)


def _changed(previous: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    return any(previous.get(key) != value for key, value in status.items())


def _delete_if_applied(api: client.ApiClient, api_version: str, kind: str, namespace: str, name: str) -> None:
    """Delete an optional object no longer wanted: once per process, then whenever this process applied it."""
    key = (kind, namespace, name)
    with _applied_lock:
        known_absent = key in _absent
    if known_absent and not _was_applied(kind, namespace, name):
        return
    delete(api, api_version, kind, namespace, name)
    with _applied_lock:
        _absent.add(key)


# --- usage write-back ------------------------------------------------------------------------------

def write_usage(api: client.ApiClient, config: OperatorConfig, glad: Mapping[str, Any],
                lookups: Lookups) -> None:
    """Measured requests, error rate and p95 of each version this deployment runs, into the
    AgentVersion's status.usage (what promotion checks read), at most every ``usageSeconds``."""
    prometheus = _prometheus(config)
    if prometheus is None:
        return
    status = glad.get("status") or {}
    agent_namespace, agent = glad["spec"]["agent"].split("/", 1)
    versions = lookups.agent_versions(agent_namespace, agent)
    for version in {status.get("stableVersion"), status.get("canaryVersion")} - {None}:
        key = (agent_namespace, agent, str(version))
        if time.monotonic() - _usage_written.get(key, -1e9) < config.deployments.usage_seconds:
            continue
        _usage_written[key] = time.monotonic()
        view = versions.get(str(version))
        if view is None:
            continue
        try:
            usage = slo_analysis.usage(prometheus, glad["spec"]["agent"], str(version),
                                       config.deployments.usage_window, conditions.now())
        except PrometheusError as error:
            log.warning("usage of %s@%s not measured: %s", agent, version, error)
            continue
        if usage is None:
            continue
        current = objects.get(api, kinds.AGENT_VERSION, agent_namespace, view["metadata"]["name"])
        if current is not None and (current.get("status") or {}).get("usage") != usage:
            objects.patch_status(api, kinds.AGENT_VERSION, current, {"usage": usage}, missing_ok=True)
