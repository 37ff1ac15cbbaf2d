"""The webhook server stands on its own: it fails closed when gone, recovers without the API server
restarting, survives the operator's absence, rotates its certificate in place and never lists on
the admission path. One control plane, the webhook server asking an OPA server, as `gl-dev up` runs it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from e2e import governed as setup
from e2e import registry as reg
from e2e import wait
from e2e.governed import PROD, TEAM, image_of, version_object
from gl_devenv import certs, webhook_service
from gl_devenv.cluster import free_port


@pytest.fixture(scope="module")
def governed(tmp_path_factory):
    with setup.running(tmp_path_factory.mktemp("webhook-server"), "opa") as env:
        yield env


def _metrics(env) -> str:
    port = webhook_service.ports(env.cluster)[2]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return reply.read().decode()


def _decisions(env, webhook: str) -> float:
    """How many decisions (allowed, denied or failed) the webhook server made for ``webhook``."""
    return sum(sample.value for family in text_string_to_metric_families(_metrics(env))
               if family.name == "greenlang_registry_admission_decisions" for sample in family.samples
               if sample.name.endswith("_total") and sample.labels.get("webhook") == webhook)


def _apiserver_lists(env, resources: tuple[str, ...]) -> float:
    """LIST requests the API server has answered for these resources, by anyone, since it started."""
    text = env.kubectl("get", "--raw", "/metrics").stdout
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{") and 'verb="LIST"' in line and \
                any(f'resource="{r}"' in line for r in resources):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_dead_webhook_server_fails_closed_and_a_restart_restores_admission(governed):
    governed.stop_webhooks()
    try:
        refused = governed.apply(version_object("7.0.0"), TEAM)
        assert refused.returncode != 0
        assert 'failed calling webhook "publish.registry.greenlang.ai"' in refused.stderr
        assert "connection refused" in refused.stderr
        assert governed.kubectl("get", "agentversion", "gl-cbam-calculator-v2-7.0.0", "-n", TEAM).returncode != 0
    finally:
        governed.start_webhooks()  # same port, same configuration: the API server is not restarted
    created = governed.apply(version_object("7.0.0"), TEAM)
    assert created.returncode == 0, created.stderr


def test_registry_writes_keep_working_while_the_operator_is_down(governed):
    governed.stop_operator()
    try:
        created = governed.apply(version_object("7.1.0"), TEAM)
        assert created.returncode == 0, created.stderr
        denied = governed.apply(setup.deployment_object("while-down", "2.4.0"), PROD)
        assert denied.returncode != 0 and "allows only certified versions in production" in denied.stderr
        assert "state" not in reg.status(governed.api, TEAM, "agentversions", "gl-cbam-calculator-v2-7.1.0")
    finally:
        governed.start_operator()
    reg.wait_state(governed.api, TEAM, "gl-cbam-calculator-v2-7.1.0", "draft")  # reconciled once it is back


def test_an_agent_created_a_moment_ago_is_found(governed):
    """The publish decision needs the Agent; one created in the same apply may not be cached yet (one GET)."""
    agent = reg.example("Agent")
    agent["metadata"] = {"name": "gl-fresh-agent"}
    version = version_object("1.0.0", agent="gl-fresh-agent")
    version["metadata"]["name"] = "gl-fresh-agent-1.0.0"
    result = governed.kubectl("apply", "-n", TEAM, "-f", "-", input="\n---\n".join(
        json.dumps(o) for o in (agent, version)))
    assert result.returncode == 0, result.stderr
    assert "does not exist" not in result.stderr


def test_admission_lists_nothing_however_many_requests(governed):
    governed.stop_operator()  # its periodic resync lists; the webhook server must not
    try:
        resources = ("agentversions", "agents", "tenantpolicies", "agentdeployments", "promotions")
        before = _apiserver_lists(governed, resources)
        for n in range(10):
            assert governed.apply(version_object(f"8.0.{n}"), TEAM).returncode == 0
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"guarded-{n}"},
                   "spec": {"containers": [{"name": "agent", "image": image_of("2.3.1")}]}}
            assert governed.apply(pod, PROD).returncode == 0
        assert governed.apply(setup.deployment_object("counted", "2.3.1"), PROD).returncode == 0
        assert governed.apply(setup.promotion_object("listless", "2.4.0", "certified"), TEAM,
                              as_user="alice").returncode == 0
        assert _apiserver_lists(governed, resources) == before
    finally:
        governed.kubectl("delete", "pods", "--all", "-n", PROD, "--wait=false")
        governed.kubectl("delete", "agentdeployment", "counted", "-n", PROD)
        governed.kubectl("delete", "promotion", "listless", "-n", TEAM)
        governed.start_operator()


def test_the_operators_own_writes_skip_the_webhooks(governed):
    """matchConditions: the operator's status writes and bookkeeping never reach the webhook server."""
    status_before = _decisions(governed, "status-agentversions")
    approvals_before = _decisions(governed, "approval")
    assert governed.apply(version_object("7.2.0"), TEAM).returncode == 0
    name = "gl-cbam-calculator-v2-7.2.0"
    reg.wait_state(governed.api, TEAM, name, "draft")  # the operator wrote status (and patched labels)
    assert governed.apply(setup.promotion_object("skip-exp", "7.2.0", "experimental"), TEAM,
                          as_user="alice").returncode == 0
    wait.until(lambda: reg.status(governed.api, TEAM, "promotions", "skip-exp").get("checks"),
               what="the operator to record the promotion's checks")
    assert _decisions(governed, "status-agentversions") == status_before
    assert _decisions(governed, "approval") == approvals_before
    # A user's status write is still decided.
    reg.report_results(governed.api, TEAM, name, **reg.GOOD_RESULTS)
    # At least once: the API server retries a webhook call whose keep-alive connection was reset.
    assert _decisions(governed, "status-agentversions") >= status_before + 1


def _served_serial(port: int) -> int:
    context = ssl._create_unverified_context()  # we only read which certificate is served
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def test_a_rotated_serving_certificate_is_served_without_a_restart(governed, tmp_path):
    port = webhook_service.ports(governed.cluster)[0]
    ca, serving = webhook_service.tls(governed.cluster.pki_dir)
    pid = governed.cluster.processes.pid(webhook_service.WEBHOOKS)
    before = _served_serial(port)
    fresh = certs.ensure_leaf(tmp_path, "rotated", ca, "greenlang-registry-webhook", server=True,
                              dns=("localhost",), ips=("127.0.0.1",))
    # Written next to the old pair and renamed over it, as a Secret volume update does.
    for source, target in ((fresh.key, serving.key), (fresh.cert, serving.cert)):
        staged = target.with_suffix(".new")
        shutil.copy(source, staged)
        staged.replace(target)
    rotated = x509.load_pem_x509_certificate(serving.cert.read_bytes()).serial_number
    assert rotated != before
    wait.until(lambda: _served_serial(port) == rotated, timeout=20, what="the rotated certificate to be served")
    assert governed.cluster.processes.pid(webhook_service.WEBHOOKS) == pid  # no restart
    assert governed.apply(version_object("7.3.0"), TEAM).returncode == 0  # the API server trusts it (same CA)


def test_not_ready_until_its_caches_have_synced(governed, tmp_path):
    """A webhook server that cannot reach the API server lives (/healthz) but never says ready."""
    unreachable = tmp_path / "kubeconfig"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    unreachable.write_text(governed.cluster.kubeconfig.read_text().replace(
        governed.cluster.server, f"https://127.0.0.1:{closed_port}"))
    _, serving = webhook_service.tls(governed.cluster.pki_dir)
    ports = [free_port(), free_port()]
    process = subprocess.Popen([sys.executable, "-m", "gl_webhooks", "run", f"--kubeconfig={unreachable}",
                                f"--address=127.0.0.1:{ports[0]}", f"--tls-cert={serving.cert}",
                                f"--tls-key={serving.key}", f"--health-address=127.0.0.1:{ports[1]}",
                                "--metrics-address=off", f"--opa-url={governed.opa_url}",
                                f"--opa-token-file={webhook_service.opa_token_file(governed.cluster)}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def probe(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}{path}", timeout=2) as reply:
                    return reply.status, reply.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode()
            except OSError:
                return 0, ""

        wait.until(lambda: probe("/healthz")[0] == 200, timeout=20, what="the webhook server to serve probes")
        status, body = probe("/readyz")
        assert status == 503 and "caches not synced" in body
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_without_its_policy_engine_admission_fails_closed_and_readiness_says_why(governed):
    probes = webhook_service.ports(governed.cluster)[1]

    def readiness() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{probes}/readyz", timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    governed.cluster.processes.stop(webhook_service.OPA)
    try:
        refused = governed.apply(version_object("7.4.0"), TEAM)
        assert refused.returncode != 0
        assert "the registry's policy engine did not answer, so the request is refused (fail closed)" in refused.stderr
        assert governed.kubectl("get", "agentversion", "gl-cbam-calculator-v2-7.4.0", "-n", TEAM).returncode != 0
        status, body = readiness()
        assert status == 503 and "did not answer" in body
    finally:
        webhook_service.start_opa(governed.cluster)  # the same port: the webhook server reconnects by itself
    status, body = readiness()
    assert status == 200, body
    assert governed.apply(version_object("7.4.0"), TEAM).returncode == 0


def test_a_lookup_the_caches_cannot_answer_costs_one_get(governed):
    """An object asked for by name before its watch event arrived is read from the API server."""
    from gl_webhooks.caches import MISSES, Caches

    caches = Caches(governed.api)  # informers not started: every lookup by name misses
    misses = MISSES.labels(kind="AgentVersion")._value.get()
    version = asyncio.run(caches.version(TEAM, "gl-cbam-calculator-v2-2.3.1"))
    assert version is not None and (version.ref, version.state) == ("gl-cbam-calculator-v2@2.3.1", "certified")
    assert MISSES.labels(kind="AgentVersion")._value.get() == misses + 1
    agent = asyncio.run(caches.agent(TEAM, reg.AGENT))
    assert agent is not None and agent["spec"]["domain"] == "sustainability.cbam"
    assert asyncio.run(caches.agent(TEAM, "gl-no-such-agent")) is None
    assert caches.versions_of(TEAM, reg.AGENT) == []  # lists are never fetched on a miss: nothing to GET
