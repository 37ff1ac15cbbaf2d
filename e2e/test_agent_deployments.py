"""AgentDeployments reconciled into real workloads by the operator process, on the real API server.

The local cluster's node is kwok's (pods become Ready without running containers): these tests
cover the mechanics (resolution, owned objects, each strategy's steps, restarts). Without a
Prometheus URL the operator's analysis is off, so steps advance on time alone.
"""

from __future__ import annotations

import json
import signal
import time

from kubernetes import client

from e2e import registry as reg
from e2e import wait
from e2e.test_lifecycle import to_certified
from gl_api import GROUP, VERSION

MANAGER = "greenlang-registry-operator"


def version_in(cluster, api, team: str, version: str, state: str, **status) -> str:
    """Publish ``version`` and record it in ``state`` through the status subresource (the promotion
    path itself is covered by test_lifecycle; one test below certifies through a real Promotion)."""
    name = reg.publish_version(cluster, team, version)
    reg.wait_state(api, team, name, "draft")
    if state != "draft":
        reg.record_state(api, team, name, state, **status)
        reg.wait_state(api, team, name, state)
    return name


def deploy(cluster, namespace: str, team: str, name: str = "cbam", **spec) -> dict:
    obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentDeployment", "metadata": {"name": name},
           "spec": {"agent": f"{team}/{reg.AGENT}", "replicas": 2, **spec}}
    result = reg.apply(cluster, namespace, obj)
    assert result.returncode == 0, result.stderr
    return obj


def glad_status(api, namespace: str, name: str = "cbam") -> dict:
    return reg.status(api, namespace, "agentdeployments", name)


def wait_status(api, namespace: str, what: str, check, name: str = "cbam", timeout: float = 90) -> dict:
    """The AgentDeployment's status once ``check`` holds; on a timeout, the status and its Events say why."""
    try:
        return wait.until(lambda: (s := glad_status(api, namespace, name)) and check(s) and s, timeout=timeout,
                          what=what)
    except AssertionError as error:
        raise AssertionError(f"{error}\nstatus: {json.dumps(glad_status(api, namespace, name), indent=1)}\n"
                             f"events: {reg.events(api, namespace, name)}\n"
                             f"deployments: {workload_summary(api, namespace)}") from None


def workload_summary(api, namespace: str) -> dict[str, dict]:
    """What the Deployments and their pods say, for a failure message."""
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace).items
    return {name: {"generation": d.metadata.generation, "observed": d.status.observed_generation,
                   "replicas": d.spec.replicas, "ready": d.status.ready_replicas, "updated": d.status.updated_replicas,
                   "pods": sorted((p.metadata.name, p.status.phase, p.spec.node_name or "-") for p in pods
                                  if p.metadata.name.startswith(name + "-"))}
            for name, d in deployments(api, namespace).items()}


def upgrade_to_240(cluster, api, tenant, strategy: dict, **spec) -> str:
    """2.3.1 and 2.4.0 experimental, 2.3.1 deployed and Available in dev, then 2.4.0 asked for: dev's namespace."""
    for version in ("2.3.1", "2.4.0"):
        version_in(cluster, api, tenant["team"], version, "experimental")
    dev = tenant["dev"]
    deploy(cluster, dev, tenant["team"], version="2.3.1", strategy=strategy, **spec)
    wait_status(api, dev, "2.3.1 Available", lambda s: s.get("phase") == "Available")
    deploy(cluster, dev, tenant["team"], version="2.4.0", strategy=strategy, **spec)
    return dev


def conditions(status: dict) -> dict:
    return {c["type"]: c for c in status.get("conditions") or []}


def deployments(api, namespace: str) -> dict[str, client.V1Deployment]:
    return {d.metadata.name: d for d in client.AppsV1Api(api).list_namespaced_deployment(namespace).items}


def test_resolves_and_applies_every_owned_object_with_labels_and_owner(cluster, api, tenant):
    version_in(cluster, api, tenant["team"], "2.3.1", "certified")
    prod = tenant["production"]
    deploy(cluster, prod, tenant["team"], channel="certified")
    status = wait_status(api, prod, "phase Available", lambda s: s.get("phase") == "Available")
    assert (status["resolvedVersion"], status["stableVersion"]) == ("2.3.1", "2.3.1")
    assert status["replicas"] == {"desired": 2, "ready": 2, "stable": 2, "canary": 0}
    assert (conditions(status)["Available"]["status"], conditions(status)["Progressing"]["reason"]) == \
        ("True", "RolloutComplete")
    assert conditions(status)["SLOCompliant"]["reason"] == "AnalysisDisabled"
    uid = reg.get(api, prod, "agentdeployments", "cbam")["metadata"]["uid"]

    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    owned = [apps.read_namespaced_deployment("cbam", prod), core.read_namespaced_service("cbam", prod),
             core.read_namespaced_service_account("cbam", prod),
             core.read_namespaced_secret("cbam-artifact-store", prod),
             client.PolicyV1Api(api).read_namespaced_pod_disruption_budget("cbam", prod),
             client.NetworkingV1Api(api).read_namespaced_network_policy("cbam", prod)]
    for obj in owned:
        meta = obj.metadata
        (owner,) = meta.owner_references
        assert (owner.kind, owner.name, owner.uid, owner.controller) == ("AgentDeployment", "cbam", uid, True)
        assert meta.labels["app.kubernetes.io/instance"] == "cbam"
        assert meta.labels["app.kubernetes.io/managed-by"] == "greenlang-registry"
        assert meta.labels["registry.greenlang.ai/deployment"] == "cbam"
        assert meta.labels["registry.greenlang.ai/agent"] == reg.AGENT
        assert any(f.manager == MANAGER and f.operation == "Apply" for f in meta.managed_fields)
    assert owned[2].automount_service_account_token is False
    deployment = owned[0]
    assert deployment.metadata.labels["registry.greenlang.ai/version"] == "2.3.1"
    assert deployment.spec.template.spec.containers[0].image == reg.example("AgentVersion")["spec"]["image"]

    pods = core.list_namespaced_pod(prod, label_selector="registry.greenlang.ai/deployment=cbam").items
    assert len(pods) == 2
    for pod in pods:
        assert pod.metadata.labels["app.kubernetes.io/version"] == "2.3.1"
        assert pod.spec.node_name == "kwok-node-0"
        assert pod.spec.security_context.run_as_non_root is True
        assert pod.spec.containers[0].security_context.capabilities.drop == ["ALL"]
        assert any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
    assert "2.3.1" in reg.wait_event(api, prod, "cbam", "Normal", "Resolved")
    reg.wait_event(api, prod, "cbam", "Normal", "RolloutStarted")


def test_rolling_update_moves_to_the_new_version(cluster, api, tenant):
    dev = upgrade_to_240(cluster, api, tenant, {"type": "RollingUpdate", "analysis": {"windowSeconds": 5}})
    wait_status(api, dev, "a rollout of 2.4.0", lambda s: s.get("canaryVersion") == "2.4.0")
    status = wait_status(api, dev, "2.4.0 stable", lambda s: s.get("stableVersion") == "2.4.0"
                         and s.get("phase") == "Available")
    assert "canaryVersion" not in status
    # The promotion is recorded in the status first, then applied to the Deployment in the same round.
    only = wait.until(lambda: (found := list(deployments(api, dev).values())) and len(found) == 1
                      and (found[0].metadata.annotations or {}).get("registry.greenlang.ai/stable-history")
                      and found[0], timeout=10, what="the Deployment to record 2.3.1 in its stable history")
    assert only.metadata.name == "cbam"
    assert only.spec.template.metadata.labels["registry.greenlang.ai/version"] == "2.4.0"
    assert only.metadata.annotations["registry.greenlang.ai/stable-history"] == "2.3.1"
    assert reg.wait_event(api, dev, "cbam", "Normal", "Promoted") == \
        f"{reg.AGENT}@2.4.0 is stable (was 2.3.1)"
    reasons = [r for _, r, _ in reg.events(api, dev, "cbam")]
    assert reasons.count("Promoted") == 1


def test_blue_green_switches_the_service_and_drops_the_previous_after_the_window(cluster, api, tenant):
    for version in ("2.3.1", "2.4.0"):
        version_in(cluster, api, tenant["team"], version, "experimental")
    dev = tenant["dev"]
    strategy = {"type": "BlueGreen", "rollbackWindowSeconds": 20, "analysis": {"windowSeconds": 5}}
    deploy(cluster, dev, tenant["team"], version="2.3.1", strategy=strategy)
    wait_status(api, dev, "2.3.1 Available", lambda s: s.get("phase") == "Available")
    core = client.CoreV1Api(api)
    assert core.read_namespaced_service("cbam", dev).spec.selector["registry.greenlang.ai/version"] == "2.3.1"
    deploy(cluster, dev, tenant["team"], version="2.4.0", strategy=strategy)
    wait.until(lambda: {"cbam-2-3-1", "cbam-2-4-0"} <= set(deployments(api, dev)), what="both colours")
    preview = wait.until(lambda: reg.exists(lambda: core.read_namespaced_service("cbam-preview", dev)),
                         what="the preview Service")
    assert preview
    assert core.read_namespaced_service("cbam", dev).spec.selector["registry.greenlang.ai/version"] == "2.3.1"
    wait_status(api, dev, "the switch", lambda s: s.get("stableVersion") == "2.4.0")
    # The switch is recorded in the status first, then carried out in the same round.
    wait.until(lambda: core.read_namespaced_service("cbam", dev).spec.selector["registry.greenlang.ai/version"]
               == "2.4.0", timeout=10, what="the Service to select 2.4.0")
    assert "cbam-2-3-1" in deployments(api, dev)  # kept for the rollback window
    wait.until(lambda: set(deployments(api, dev)) == {"cbam-2-4-0"}, timeout=60,
               what="the previous colour to go after the rollback window")
    wait.until(lambda: not reg.exists(lambda: core.read_namespaced_service("cbam-preview", dev)),
               what="the preview Service to go")


def test_canary_steps_then_promotes_and_deletes_the_old_deployment(cluster, api, tenant):
    strategy = {"type": "Canary", "steps": [{"weight": 25, "pauseSeconds": 4}, {"weight": 100, "pauseSeconds": 2}]}
    dev = upgrade_to_240(cluster, api, tenant, strategy, replicas=4)
    first = wait_status(api, dev, "canary step 1 ready", lambda s: s.get("currentStep") == 0
                        and (s.get("replicas") or {}).get("canary") == 1)
    assert first["replicas"]["stable"] == 3
    found = deployments(api, dev)
    assert (found["cbam-2-3-1"].spec.replicas, found["cbam-2-4-0"].spec.replicas) == (3, 1)
    assert client.CoreV1Api(api).read_namespaced_service("cbam", dev).spec.selector == \
        {"registry.greenlang.ai/deployment": "cbam"}
    wait_status(api, dev, "2.4.0 promoted", lambda s: s.get("stableVersion") == "2.4.0"
                and s.get("phase") == "Available", timeout=60)
    wait.until(lambda: set(deployments(api, dev)) == {"cbam-2-4-0"}, what="the old Deployment to go")
    assert deployments(api, dev)["cbam-2-4-0"].spec.replicas == 4
    reasons = [r for _, r, _ in reg.events(api, dev, "cbam")]
    assert reasons.count("StepAdvanced") == 1 and reasons.count("Promoted") == 1


def test_channel_moves_to_a_newly_certified_version(cluster, api, tenant):
    reg.grant_users(cluster, tenant["team"])
    to_certified(cluster, api, tenant["team"], "2.3.1")
    prod = tenant["production"]
    deploy(cluster, prod, tenant["team"], channel="certified", strategy={"type": "RollingUpdate",
                                                                       "analysis": {"windowSeconds": 5}})
    wait_status(api, prod, "2.3.1 Available", lambda s: s.get("stableVersion") == "2.3.1"
                and s.get("phase") == "Available")
    to_certified(cluster, api, tenant["team"], "2.4.0")
    status = wait_status(api, prod, "2.4.0 stable", lambda s: s.get("stableVersion") == "2.4.0", timeout=60)
    assert status["resolvedVersion"] == "2.4.0"


def test_range_skips_versions_in_a_state_the_environment_does_not_admit(cluster, api, tenant):
    version_in(cluster, api, tenant["team"], "2.3.1", "certified")
    version_in(cluster, api, tenant["team"], "2.4.0", "experimental")
    prod, dev = tenant["production"], tenant["dev"]
    deploy(cluster, prod, tenant["team"], versionRange=">=2.0.0 <3.0.0")
    deploy(cluster, dev, tenant["team"], versionRange=">=2.0.0 <3.0.0")
    assert wait_status(api, prod, "resolved", lambda s: s.get("stableVersion"))["resolvedVersion"] == "2.3.1"
    assert wait_status(api, dev, "resolved", lambda s: s.get("stableVersion"))["resolvedVersion"] == "2.4.0"


def test_exact_version_not_admitted_fails_with_the_reason(cluster, api, tenant):
    version_in(cluster, api, tenant["team"], "2.4.0", "experimental")
    prod = tenant["production"]
    deploy(cluster, prod, tenant["team"], version="2.4.0")
    status = wait_status(api, prod, "Failed", lambda s: s.get("phase") == "Failed")
    progressing = conditions(status)["Progressing"]
    assert (progressing["status"], progressing["reason"]) == ("False", "VersionNotAllowed")
    assert "is experimental; tenant" in progressing["message"] and "allows only certified" in progressing["message"]
    assert deployments(api, prod) == {}


def test_deprecated_runs_with_a_warning(cluster, api, tenant):
    version_in(cluster, api, tenant["team"], "2.2.0", "deprecated",
               deprecation={"replacement": "2.3.1", "sunsetAt": "2099-01-01T00:00:00Z"})
    prod = tenant["production"]
    deploy(cluster, prod, tenant["team"], version="2.2.0")
    wait_status(api, prod, "Available", lambda s: s.get("phase") == "Available")
    assert "deprecated" in reg.wait_event(api, prod, "cbam", "Warning", "DeprecatedVersion")


def test_retired_is_refused(cluster, api, tenant):
    version_in(cluster, api, tenant["team"], "1.0.0", "retired")
    prod = tenant["production"]
    deploy(cluster, prod, tenant["team"], version="1.0.0")
    status = wait_status(api, prod, "Failed", lambda s: s.get("phase") == "Failed")
    assert conditions(status)["Available"]["reason"] == "VersionRetired"
    assert "retired" in reg.wait_event(api, prod, "cbam", "Warning", "VersionRetired")
    assert deployments(api, prod) == {}


def test_operator_restart_mid_rollout_resumes_from_status(cluster, api, tenant, operator):
    strategy = {"type": "Canary", "steps": [{"weight": 50, "pauseSeconds": 15}, {"weight": 100, "pauseSeconds": 1}]}
    dev = upgrade_to_240(cluster, api, tenant, strategy)
    before = wait_status(api, dev, "the canary step", lambda s: s.get("currentStep") == 0
                         and (s.get("replicas") or {}).get("canary") == 1)
    operator.stop(signal.SIGKILL)
    operator.start()
    time.sleep(3)  # three rounds of the new leader (reconcileSeconds 1), still inside the 15 s pause
    after = glad_status(api, dev)
    assert (after["canaryVersion"], after["currentStep"], after["stepStartedAt"]) == \
        ("2.4.0", 0, before["stepStartedAt"])
    wait_status(api, dev, "2.4.0 promoted", lambda s: s.get("stableVersion") == "2.4.0", timeout=60)
    reasons = [r for _, r, _ in reg.events(api, dev, "cbam")]
    assert reasons.count("RolloutStarted") == 2  # 2.3.1, then 2.4.0 once: the restart did not start over


def test_quota_refusing_pods_is_reported(cluster, api, tenant):
    version_in(cluster, api, tenant["team"], "2.3.1", "experimental")
    dev = tenant["dev"]
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "tight", "namespace": dev},
             "spec": {"hard": {"requests.cpu": "100m"}}}
    assert reg.apply(cluster, dev, quota).returncode == 0
    wait.until(lambda: "requests.cpu" in cluster.kubectl("get", "resourcequota", "tight", "-n", dev, "-o",
                                                         "jsonpath={.status.used}").stdout,
               timeout=60, what="the quota to be counted")
    deploy(cluster, dev, tenant["team"], version="2.3.1", replicas=3)  # 3 x 50m requested > 100m
    status = wait_status(api, dev, "QuotaExceeded", lambda s: conditions(s).get("Available", {}).get("reason")
                         == "QuotaExceeded")
    assert conditions(status)["Available"]["status"] == "False"
    assert "exceeded quota" in conditions(status)["Available"]["message"]
    assert "exceeded quota" in reg.wait_event(api, dev, "cbam", "Warning", "QuotaExceeded")
