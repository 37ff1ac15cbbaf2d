"""Canary traffic by Gateway API HTTPRoute weights, on the real API server (kwok node).

The session's cluster starts without the Gateway API: the first test checks that a Canary then
runs on the replica ratio alone, with no route attempted. The module then installs the standard
channel's CRDs (from the Go module cache, ``gl_devenv.build.gateway_api_crds``) and removes them
at its end, so the other modules see the cluster as it was; the shared operator notices both
within ``deployments.gatewayCheckSeconds`` (1 s in ``TEST_CONFIG``). Without Prometheus steps
advance on time alone, so rollbacks are not covered here (they need a failed measurement).
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from e2e import registry as reg
from e2e import wait
from e2e.operator_process import TEST_CONFIG
from e2e.test_agent_deployments import MANAGER, deploy, upgrade_to_240, version_in, wait_status, workload_summary
from gl_devenv import build

GROUP, VERSION = "gateway.networking.k8s.io", "v1"
STEPS = [{"weight": 25, "pauseSeconds": 5}, {"weight": 50, "pauseSeconds": 5}, {"weight": 100, "pauseSeconds": 5}]


def gateway_served(cluster) -> bool:
    result = cluster.kubectl("api-resources", f"--api-group={GROUP}", "-o", "name", check=False)
    return result.returncode == 0 and f"httproutes.{GROUP}" in result.stdout.split()


def read(get):
    """``get()``, or None on 404."""
    try:
        return get()
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def route(api, namespace: str, name: str = "cbam") -> dict | None:
    return read(lambda: reg.custom(api).get_namespaced_custom_object(GROUP, VERSION, namespace, "httproutes", name))


def weights(obj: dict) -> tuple[int, int]:
    (rule,) = obj["spec"]["rules"]
    by_name = {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}
    return by_name["cbam-stable"], by_name["cbam-canary"]


def selected_version(api, namespace: str, name: str) -> str | None:
    found = read(lambda: client.CoreV1Api(api).read_namespaced_service(name, namespace))
    return found.spec.selector.get("registry.greenlang.ai/version") if found else None


def operator_log_since(operator, offset: int) -> str:
    with operator.log.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


@pytest.fixture(scope="module")
def gateway_crds(cluster):
    """The Gateway API's standard CRDs for the rest of the module, removed again at its end (unless the
    cluster had them before)."""
    already = gateway_served(cluster)
    files = build.gateway_api_crds()
    args = [arg for path in files for arg in ("-f", str(path))]
    if not already:
        applied = cluster.kubectl("apply", "--server-side", *args, check=False)
        assert applied.returncode == 0, applied.stderr
        established = cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *args, check=False)
        assert established.returncode == 0, established.stderr
    yield files
    if not already:
        cluster.kubectl("delete", "--ignore-not-found", "--wait=true", "--timeout=120s", *args, check=False)


def test_without_the_gateway_api_a_canary_runs_on_the_replica_ratio_alone(cluster, api, tenant, operator):
    assert not gateway_served(cluster), "needs a cluster without the Gateway API, as the local control plane is"
    offset = operator.log.stat().st_size if operator.log.exists() else 0
    strategy = {"type": "Canary", "steps": [{"weight": 50, "pauseSeconds": 2}, {"weight": 100, "pauseSeconds": 1}]}
    dev = upgrade_to_240(cluster, api, tenant, strategy)
    wait_status(api, dev, "2.4.0 promoted", lambda s: s.get("stableVersion") == "2.4.0"
                and s.get("phase") == "Available", timeout=60)
    assert not gateway_served(cluster)
    services = {s.metadata.name for s in client.CoreV1Api(api).list_namespaced_service(dev).items}
    assert services == {"cbam"}
    log = operator_log_since(operator, offset)
    assert "Traceback" not in log
    assert "HTTPRoute" not in log


def test_canary_weights_follow_the_steps_then_return_to_stable(cluster, api, tenant, operator, gateway_crds):
    for version in ("2.3.1", "2.4.0"):
        version_in(cluster, api, tenant["team"], version, "experimental")
    dev = tenant["dev"]
    offset = operator.log.stat().st_size
    strategy = {"type": "Canary", "steps": STEPS}
    deploy(cluster, dev, tenant["team"], version="2.3.1", replicas=4, strategy=strategy)
    wait_status(api, dev, "2.3.1 Available", lambda s: s.get("phase") == "Available")
    first = wait.until(lambda: route(api, dev), what="the HTTPRoute")
    assert weights(first) == (100, 0)
    (parent,) = first["spec"]["parentRefs"]  # as configured, with the API's defaults (group, kind)
    assert parent == {"group": GROUP, "kind": "Gateway", **TEST_CONFIG["deployments"]["gateway"][0]}
    assert (selected_version(api, dev, "cbam-stable"), selected_version(api, dev, "cbam-canary")) == \
        ("2.3.1", "2.3.1")

    uid = reg.get(api, dev, "agentdeployments", "cbam")["metadata"]["uid"]
    core = client.CoreV1Api(api)
    for meta in [first["metadata"], *(core.read_namespaced_service(n, dev).to_dict()["metadata"]
                                      for n in ("cbam-stable", "cbam-canary"))]:
        owners = meta.get("ownerReferences") or meta.get("owner_references")
        (owner,) = owners
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == \
            ("AgentDeployment", "cbam", uid, True)
        assert meta["labels"]["registry.greenlang.ai/deployment"] == "cbam"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "greenlang-registry"
        fields = meta.get("managedFields") or meta.get("managed_fields")
        assert any(f["manager"] == MANAGER and f["operation"] == "Apply" for f in fields)
    # The plain Service still selects every pod: the replica ratio keeps working for its clients.
    assert core.read_namespaced_service("cbam", dev).spec.selector == {"registry.greenlang.ai/deployment": "cbam"}

    deploy(cluster, dev, tenant["team"], version="2.4.0", replicas=4, strategy=strategy)
    seen: list[tuple[int, int]] = []
    selectors: dict[tuple[int, int], tuple[str | None, str | None]] = {}

    def promoted() -> bool:
        current = route(api, dev)
        if current is not None:
            pair = weights(current)
            if not seen or seen[-1] != pair:
                seen.append(pair)
                selectors[pair] = (selected_version(api, dev, "cbam-stable"),
                                   selected_version(api, dev, "cbam-canary"))
        status = reg.status(api, dev, "agentdeployments", "cbam")
        return status.get("stableVersion") == "2.4.0" and status.get("phase") == "Available" \
            and bool(seen) and seen[-1] == (100, 0)

    try:
        wait.until(promoted, timeout=90, interval=0.2, what="2.4.0 promoted with weights back to (100, 0)")
    except AssertionError as error:
        raise AssertionError(f"{error}; weights seen {seen}\nstatus: {json.dumps(reg.status(api, dev, 'agentdeployments', 'cbam'))}"
                             f"\ndeployments: {workload_summary(api, dev)}") from None
    assert seen == [(100, 0), (75, 25), (50, 50), (0, 100), (100, 0)], seen
    assert selectors[(75, 25)] == ("2.3.1", "2.4.0")
    wait.until(lambda: (selected_version(api, dev, "cbam-stable"), selected_version(api, dev, "cbam-canary"))
               == ("2.4.0", "2.4.0"), what="both split Services on 2.4.0")
    reasons = [r for _, r, _ in reg.events(api, dev, "cbam")]
    assert reasons.count("StepAdvanced") == 2 and reasons.count("Promoted") == 1
    assert "Traceback" not in operator_log_since(operator, offset)


def test_other_strategies_get_no_route(cluster, api, tenant, operator, gateway_crds):
    version_in(cluster, api, tenant["team"], "2.3.1", "experimental")
    dev = tenant["dev"]
    deploy(cluster, dev, tenant["team"], version="2.3.1", strategy={"type": "BlueGreen"})
    wait_status(api, dev, "2.3.1 Available", lambda s: s.get("phase") == "Available")
    assert route(api, dev) is None
    services = {s.metadata.name for s in client.CoreV1Api(api).list_namespaced_service(dev).items}
    assert services == {"cbam"}
    assert json.dumps(reg.custom(api).list_namespaced_custom_object(GROUP, VERSION, dev, "httproutes")["items"]) == "[]"
