"""The runtime end to end on the real node: agent containers serve real requests, Prometheus
measures them, and the operator promotes or rolls back on what it measured.

The sample agent is the CBAM calculator of ``examples/agents``; 2.4.0 has a genuine defect (every
hot-rolled flat steel good, CN 7208, from a country without its own steel value fails with a 500).
"""

from __future__ import annotations

import importlib
import json
import signal
import sys
import time

import psycopg
import pytest
from kubernetes import client

from e2e import registry as reg
from e2e import wait
from e2e.mirror_process import local_postgres, start_with_query_api
from e2e.runtime_stack import CAPABILITY, CBAM, CBAM_DEFECTIVE, Load
from e2e.test_agent_deployments import conditions, deploy, glad_status, wait_status
from gl_devenv import node

pytestmark = pytest.mark.usefixtures("runtime_operator")


@pytest.fixture(scope="module")
def audit_db(runtime_stack, cluster, tmp_path_factory):
    """The Postgres mirror over the session's cluster: where rollbacks land in the audit trail, and
    what `gl agent metrics` asks (its query API asks Prometheus on the caller's behalf)."""
    with local_postgres() as postgres:
        mirror = start_with_query_api(cluster, postgres.dsn(), tmp_path_factory.mktemp("mirror") / "log",
                                      (f"--prometheus-url={runtime_stack.prometheus_url}",))
        try:
            yield postgres
        finally:
            mirror.stop()


def audit_rows(postgres, namespace: str, operation: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(postgres.dsn()) as conn:
        return conn.execute("SELECT actor, decision, reason FROM audit_events WHERE namespace = %s AND name = 'cbam' "
                            "AND kind = 'AgentDeployment' AND operation = %s ORDER BY id",
                            (namespace, operation)).fetchall()

# Steel from Brazil is what 2.4.0 gets wrong; cement and aluminium it computes like 2.3.1.
STEEL = {"cnCode": "72081000", "quantityTonnes": 12.5, "countryOfOrigin": "BR"}
TRAFFIC = [STEEL, {"cnCode": "25232900", "quantityTonnes": 40, "countryOfOrigin": "TR"},
           {"cnCode": "76011000", "quantityTonnes": 3, "countryOfOrigin": "CN"}]
# Short windows so a rollout takes seconds; a breach needs 5 requests in 10 s.
ANALYSIS = {"windowSeconds": 10, "minRequests": 5, "failureLimit": 1}
SLO = {"errorRate": 0.005, "p95LatencyMs": 500}


def in_process(project, body: dict) -> dict:
    """The same calculation called in this process: what the deployed agent must answer."""
    sys.path.insert(0, str(project))
    try:
        module = importlib.import_module("cbam_calculator.agent")
        return module.CAPABILITIES[CAPABILITY](dict(body))
    finally:
        sys.path.remove(str(project))
        for name in [n for n in sys.modules if n.startswith("cbam_calculator")]:
            del sys.modules[name]


def published(stack, api, team: str, project, state: str, version: str | None = None) -> str:
    name = stack.publish(project, team, version)
    reg.wait_state(api, team, name, "draft")
    reg.record_state(api, team, name, state)
    reg.wait_state(api, team, name, state)
    return name


def agent_pods(api, namespace: str) -> list[client.V1Pod]:
    return [p for p in client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector="registry.greenlang.ai/deployment=cbam").items if not p.metadata.deletion_timestamp]


def versions_running(api, namespace: str) -> set[str]:
    return {p.metadata.labels["registry.greenlang.ai/version"] for p in agent_pods(api, namespace)}


def warnings(api, namespace: str, reason: str) -> list[str]:
    return [m for t, r, m in reg.events(api, namespace, "cbam") if (t, r) == ("Warning", reason)]


def normal(api, namespace: str, reason: str) -> list[str]:
    return [m for t, r, m in reg.events(api, namespace, "cbam") if (t, r) == ("Normal", reason)]


def available_on(api, namespace: str, version: str, timeout: float = 120) -> dict:
    return wait_status(api, namespace, f"{version} Available",
                       lambda s: s.get("phase") == "Available" and s.get("stableVersion") == version
                       and not s.get("canaryVersion"), timeout=timeout)


def running_231(stack, cluster, api, tenant, strategy: dict, replicas: int = 2) -> tuple[str, str]:
    """2.3.1 published, experimental and Available in the tenant's dev namespace: (team, dev)."""
    team, dev = tenant["team"], tenant["dev"]
    published(stack, api, team, CBAM, "experimental")
    deploy(cluster, dev, team, versionRange=">=2.3.0 <3.0.0", replicas=replicas, strategy=strategy, slo=SLO)
    available_on(api, dev, "2.3.1")
    return team, dev


def test_a_deployed_agent_runs_in_real_pods_and_answers_through_its_service(runtime_stack, cluster, api, tenant,
                                                                           audit_db):
    team, dev = tenant["team"], tenant["dev"]
    published(runtime_stack, api, team, CBAM, "experimental")
    deploy(cluster, dev, team, version="2.3.1", replicas=2)
    status = available_on(api, dev, "2.3.1")
    assert status["replicas"]["ready"] == 2

    pods = agent_pods(api, dev)
    assert len(pods) == 2
    for pod in pods:
        assert pod.spec.node_name == node.NODE_NAME  # a real kubelet ran it, not kwok
        (container,) = pod.status.container_statuses
        assert container.ready and container.state.running is not None
        assert pod.spec.containers[0].image == runtime_stack.runtime_image
        assert pod.spec.containers[0].security_context.read_only_root_filesystem is True
    logs = client.CoreV1Api(api).read_namespaced_pod_log(pods[0].metadata.name, dev)
    assert '"msg": "artifact verified"' in logs  # the digest was checked before the agent loaded
    # Both pods scraped once (their series start at zero), so increase() sees every request below.
    promql = f'greenlang_registry_agent_requests_total{{namespace="{dev}",agentdeployment="cbam",version="2.3.1"}}'
    wait.until(lambda: len({s["metric"]["pod"] for s in runtime_stack.query(promql)}) == 2, timeout=30,
               what="Prometheus to scrape both pods")

    answer = runtime_stack.gl("agent", "invoke", "cbam", CAPABILITY, "-n", dev, "-d", json.dumps(STEEL))
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert result == in_process(CBAM, STEEL)
    assert result["totalEmissions"] > 0 and result["unit"] == "tCO2e"

    refused = runtime_stack.gl("agent", "invoke", "cbam", CAPABILITY, "-n", dev, "-d",
                               json.dumps({**STEEL, "cnCode": "7208"}))
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["details"][0]["path"] == "/cnCode" and "answered 400" in refused.stderr

    wait.until(lambda: sum(float(s["value"][1]) for s in runtime_stack.query(promql)) >= 2, timeout=30,
               what="Prometheus to have scraped both answers")

    # The user has no Prometheus address: the registry asks Prometheus for them, for what they may see.
    def measured() -> dict:
        listed = runtime_stack.gl("agent", "metrics", f"{reg.AGENT}@2.3.1", "--window", "1h", "-n", team, "-o", "json")
        assert listed.returncode == 0, listed.stderr
        return json.loads(listed.stdout)["items"][0]
    figures = wait.until(lambda: (m := measured())["requests"] >= 2 and m, timeout=60, what="2 requests measured")
    assert figures["source"] == "prometheus" and figures["window"] == "1h"
    assert (figures["errors"], figures["errorRate"]) == (0, 0.0)  # a 400 is the caller's error, not the agent's
    assert figures["p50LatencyMs"] > 0
    # Someone of no tenant gets nothing, and no PromQL of their own reaches Prometheus.
    path = f"/apis/search.registry.greenlang.ai/v1alpha1/namespaces/{team}/usagesummaries?window=1h"
    stranger = cluster.kubectl("get", "--raw", path, "--as=mallory", check=False)
    assert stranger.returncode != 0 and "forbidden" in stranger.stderr.lower()
    injected = cluster.kubectl("get", "--raw", path.replace("window=1h", "window=1h%5D)%20or%20up%5B1h"), check=False)
    assert injected.returncode != 0 and "give a number and a unit" in injected.stderr

    # What the promotion checks read: usage measured from the pods, written back to the version.
    usage = wait.until(lambda: (reg.status(api, team, "agentversions", f"{reg.AGENT}-2.3.1").get("usage") or {})
                       .get("requests", 0) >= 2 and reg.status(api, team, "agentversions", f"{reg.AGENT}-2.3.1")["usage"],
                       timeout=30, what="status.usage of 2.3.1")
    assert (usage["errorRate"], usage["window"]) == (0.0, "1h")


def test_a_canary_of_the_defective_version_is_rolled_back_on_its_measured_error_rate(runtime_stack, cluster, api,
                                                                                    tenant, audit_db):
    strategy = {"type": "Canary", "steps": [{"weight": 50, "pauseSeconds": 20}, {"weight": 100}], "analysis": ANALYSIS}
    team, dev = running_231(runtime_stack, cluster, api, tenant, strategy, replicas=2)

    with Load(api, dev, "cbam", TRAFFIC, rate=15) as load:
        published(runtime_stack, api, team, CBAM_DEFECTIVE, "experimental")
        wait_status(api, dev, "the canary of 2.4.0", lambda s: s.get("canaryVersion") == "2.4.0", timeout=60)
        message = wait.until(lambda: warnings(api, dev, "RolledBack"), timeout=150, what="a RolledBack Event")[0]
    assert "2.4.0" in message and "2.3.1" in message and "error rate" in message
    assert load.by_status().get(500, 0) > 0  # the defect is real: the canary's pods failed requests

    status = wait_status(api, dev, "back on 2.3.1", lambda s: s.get("phase") == "Degraded"
                         and s.get("stableVersion") == "2.3.1" and not s.get("canaryVersion"), timeout=60)
    assert status["rolledBackVersions"] == ["2.4.0"]
    assert status["lastBreach"]["version"] == "2.4.0" and "error rate" in status["lastBreach"]["message"]
    available = conditions(status)["Available"]
    assert (available["status"], available["reason"]) == ("True", "RolledBack") and "2.4.0" in available["message"]
    assert any("2.4.0" in m and "error rate" in m for m in warnings(api, dev, "SLOBreach"))
    slo_status = runtime_stack.gl("slo", "status", "--agent", reg.AGENT, "-n", dev, "-o", "json")
    assert slo_status.returncode == 0, slo_status.stderr
    (shown,) = json.loads(slo_status.stdout)["items"]
    assert shown["deployment"] == f"{dev}/cbam" and shown["version"] == "2.3.1" and shown["phase"] == "Degraded"
    assert "2.4.0" in shown["lastBreach"] and "error rate" in shown["lastBreach"]

    # The audit trail keeps the decision, its author and the measured figures.
    (actor, decision, reason), = wait.until(lambda: audit_rows(audit_db, dev, "rollback"), timeout=60,
                                            what="the rollback's audit row")
    assert (actor, decision, reason) == ("greenlang-registry-operator", "rolled_back", message)
    wait.until(lambda: versions_running(api, dev) == {"2.3.1"}, timeout=60, what="only 2.3.1 pods")

    # No flapping: the range still selects 2.4.0, but a rolled-back version is not tried again.
    time.sleep(12)  # a dozen reconciles
    assert not glad_status(api, dev).get("canaryVersion")
    assert len([m for m in normal(api, dev, "RolloutStarted") if "2.4.0" in m]) == 1


def test_a_version_that_breaches_after_its_rollout_goes_back_to_the_last_good_one(runtime_stack, cluster, api,
                                                                                 tenant):
    """2.4.0 passes its analysis while no steel is imported, then steel arrives: rolled back from steady state."""
    strategy = {"type": "RollingUpdate", "analysis": ANALYSIS}
    team, dev = running_231(runtime_stack, cluster, api, tenant, strategy, replicas=2)

    with Load(api, dev, "cbam", TRAFFIC[1:], rate=12) as load:
        published(runtime_stack, api, team, CBAM_DEFECTIVE, "experimental")
        available_on(api, dev, "2.4.0", timeout=150)
        assert "2.4.0" in wait.until(lambda: normal(api, dev, "Promoted"), what="a Promoted Event")[0]
        assert set(load.by_status()) <= {200, 0}, load.by_status()
        load.bodies = TRAFFIC  # steel arrives: 2.4.0 fails a third of the requests
        message = wait.until(lambda: warnings(api, dev, "RolledBack"), timeout=120, what="a RolledBack Event")[0]
    assert f"from {reg.AGENT}@2.4.0 to {reg.AGENT}@2.3.1" in message and "error rate" in message
    status = wait_status(api, dev, "back on 2.3.1", lambda s: s.get("phase") == "Degraded"
                         and s.get("stableVersion") == "2.3.1", timeout=90)
    assert status["rolledBackVersions"] == ["2.4.0"]
    wait.until(lambda: versions_running(api, dev) == {"2.3.1"}, timeout=60, what="only 2.3.1 pods")


def test_a_canary_of_a_good_version_is_promoted_to_all_traffic(runtime_stack, cluster, api, tenant):
    strategy = {"type": "Canary", "steps": [{"weight": 50, "pauseSeconds": 12}, {"weight": 100}], "analysis": ANALYSIS}
    team, dev = running_231(runtime_stack, cluster, api, tenant, strategy, replicas=2)

    with Load(api, dev, "cbam", TRAFFIC, rate=15) as load:
        published(runtime_stack, api, team, CBAM, "experimental", version="2.3.2")
        status = available_on(api, dev, "2.3.2", timeout=150)
    assert conditions(status)["SLOCompliant"]["status"] == "True"
    assert "2.3.2" in wait.until(lambda: normal(api, dev, "Promoted"), what="a Promoted Event")[0]
    assert not warnings(api, dev, "RolledBack")
    wait.until(lambda: versions_running(api, dev) == {"2.3.2"}, timeout=60, what="only 2.3.2 pods")
    assert set(load.by_status()) <= {200, 0}, load.by_status()  # 0: a connection to a pod being replaced


def test_blue_green_tries_the_new_version_on_its_preview_and_never_switches_to_a_breaching_one(
        runtime_stack, cluster, api, tenant):
    core = client.CoreV1Api(api)
    strategy = {"type": "BlueGreen", "analysis": ANALYSIS, "rollbackWindowSeconds": 60}
    team, dev = running_231(runtime_stack, cluster, api, tenant, strategy, replicas=1)

    with Load(api, dev, "cbam-preview", TRAFFIC, rate=10), Load(api, dev, "cbam", TRAFFIC, rate=5) as live:
        published(runtime_stack, api, team, CBAM_DEFECTIVE, "experimental")
        wait.until(lambda: warnings(api, dev, "RolledBack"), timeout=150, what="a RolledBack Event")
        assert core.read_namespaced_service("cbam", dev).spec.selector["registry.greenlang.ai/version"] == "2.3.1"
    assert set(live.by_status()) == {200}, live.by_status()  # users of the live Service never saw 2.4.0
    wait.until(lambda: versions_running(api, dev) == {"2.3.1"}, timeout=60, what="the preview pods to go")

    # A good version passes on its preview, then the Service switches and the old one is kept.
    with Load(api, dev, "cbam-preview", TRAFFIC, rate=10):
        published(runtime_stack, api, team, CBAM, "experimental", version="2.3.2")
        available_on(api, dev, "2.3.2", timeout=150)
    # The switch is recorded in the status first, then carried out in the same round.
    wait.until(lambda: core.read_namespaced_service("cbam", dev).spec.selector["registry.greenlang.ai/version"]
               == "2.3.2", timeout=10, what="the Service to select 2.3.2")
    assert "2.3.1" in versions_running(api, dev)  # kept for the rollback window


def test_a_rollout_resumes_where_it_was_after_a_pod_is_deleted_and_the_operator_restarts(
        runtime_stack, cluster, api, tenant, runtime_operator):
    strategy = {"type": "Canary", "steps": [{"weight": 50, "pauseSeconds": 25}, {"weight": 100}], "analysis": ANALYSIS}
    team, dev = running_231(runtime_stack, cluster, api, tenant, strategy, replicas=2)

    with Load(api, dev, "cbam", TRAFFIC, rate=12):
        published(runtime_stack, api, team, CBAM, "experimental", version="2.3.2")
        before = wait_status(api, dev, "step 0 with its canary ready",
                             lambda s: s.get("canaryVersion") == "2.3.2" and s.get("currentStep") == 0
                             and (s.get("replicas") or {}).get("canary") == 1
                             and "2.3.2" in versions_running(api, dev), timeout=90)
        runtime_operator.stop(signal.SIGKILL)
        canary_pod = next(p for p in agent_pods(api, dev) if p.metadata.labels["registry.greenlang.ai/version"] == "2.3.2")
        client.CoreV1Api(api).delete_namespaced_pod(canary_pod.metadata.name, dev)
        runtime_operator.start()
        time.sleep(3)  # three rounds of the new leader (reconcileSeconds 1), still inside the 25 s pause
        after = glad_status(api, dev)
        assert (after["currentStep"], after["stepStartedAt"]) == (0, before["stepStartedAt"])
        wait.until(lambda: any(p.metadata.name != canary_pod.metadata.name and p.status.phase == "Running"
                               for p in agent_pods(api, dev)
                               if p.metadata.labels["registry.greenlang.ai/version"] == "2.3.2"),
                   timeout=60, what="a new canary pod")
        available_on(api, dev, "2.3.2", timeout=150)
    started = [m for m in normal(api, dev, "RolloutStarted") if "2.3.2" in m]
    assert len(started) == 1, started  # resumed, not restarted
