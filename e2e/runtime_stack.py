"""The runtime's test stack: a real node running agent pods, Prometheus scraping them, S3 on the
node's address (pods fetch their artifacts from it), and the operator configured to use them.

Started once per session, only by the tests that ask for it (``runtime_stack`` fixture); the
operator uses it only inside those modules (``runtime_operator``), so pods of the other tests
keep landing on the kwok node.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from kubernetes import client

from gl_api import artifact
from gl_devenv import node as real_node
from gl_devenv import prometheus
from gl_devenv.cluster import LocalCluster
from e2e import REPO, s3_server
from e2e.operator_process import TEST_CONFIG, OperatorProcess

CBAM = REPO / "examples" / "agents" / "cbam-calculator"
CBAM_DEFECTIVE = REPO / "examples" / "agents" / "cbam-calculator-2.4.0"
CAPABILITY = "calculate-embedded-emissions"

BUCKET = "greenlang-agents"
# Fast reconciles and short analysis windows, so a rollout is minutes of test time, not hours.
RUNTIME_CONFIG = {**TEST_CONFIG, "deployments": {"reconcileSeconds": 1, "usageSeconds": 2, "usageWindow": "1h",
                                                  "placement": real_node.placement()}}


@dataclass
class RuntimeStack:
    cluster: LocalCluster
    node: real_node.RealNode
    prometheus_url: str
    s3_endpoint: str
    runtime_image: str

    def upload(self, project_dir) -> tuple[str, str, int]:  # type: ignore[no-untyped-def]
        """Pack an agent project and upload it content-addressed: (uri, digest, size)."""
        data = artifact.pack(project_dir)
        digest = artifact.digest(data)
        key = f"sha256/{digest.removeprefix('sha256:')}"
        boto3.client("s3", endpoint_url=self.s3_endpoint).put_object(Bucket=BUCKET, Key=key, Body=data)
        return f"s3://{BUCKET}/{key}", digest, len(data)

    @property
    def operator_env(self) -> dict[str, str]:
        return {"GL_RUNTIME_IMAGE": self.runtime_image, "GL_PROMETHEUS_URL": self.prometheus_url,
                "GL_S3_ENDPOINT": self.s3_endpoint, **s3_server.CREDENTIALS}

    def gl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The `gl` CLI as a user runs it, with the S3 settings `gl-dev up` prints."""
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "COLUMNS": "250", "GL_S3_BUCKET": BUCKET,
               "GL_S3_ENDPOINT": self.s3_endpoint, **s3_server.CREDENTIALS}
        return subprocess.run([sys.executable, "-c", "from gl_cli.main import main; main()", *args],
                              capture_output=True, text=True, env=env, timeout=120)

    def publish(self, project: Path, namespace: str, version: str | None = None) -> str:
        """`gl agent publish DIR`: the artifact to S3, the AgentVersion to the API server; its object name."""
        result = self.gl("agent", "publish", str(project), "-n", namespace, *(["--version", version] if version else []))
        assert result.returncode == 0, result.stderr
        ref = result.stdout.strip()
        return ref.replace("@", "-")

    def query(self, promql: str) -> list[dict]:
        return prometheus.query(self.prometheus_url, promql)

    def wait_scraped(self, promql: str, timeout: float = 60) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result:
                return result
            time.sleep(1)
        raise AssertionError(f"Prometheus had nothing for {promql} after {timeout}s")


@contextlib.contextmanager
def running(cluster: LocalCluster) -> Iterator[RuntimeStack]:
    node = real_node.RealNode(cluster)
    node.start()
    assert node.runtime_image is not None
    try:
        url = prometheus.start(cluster)
        with s3_server.running(BUCKET, host=real_node.NODE_IP) as endpoint:
            yield RuntimeStack(cluster, node, url, endpoint, node.runtime_image.pinned)
    finally:
        prometheus.stop(cluster)
        node.stop()


@contextlib.contextmanager
def operator_using(stack: RuntimeStack, operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The shared operator, restarted with the runtime's settings, and restored afterwards."""
    operator.stop()
    operator.reconfigure(RUNTIME_CONFIG, stack.operator_env)
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
        operator.reconfigure(TEST_CONFIG)
        operator.start()


@dataclass
class Load:
    """A bounded load generator: ``rate`` requests/s spread over the ready pods behind a Service.

    Addresses come from the Service's EndpointSlices, refreshed every second, as kube-proxy would
    balance; each request's answer is counted by pod address and HTTP status.
    """

    api: client.ApiClient
    namespace: str
    service: str
    bodies: list[dict]
    rate: float = 20
    max_seconds: float = 300
    answers: collections.Counter = field(default_factory=collections.Counter)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def by_status(self) -> dict[int, int]:
        totals: collections.Counter = collections.Counter()
        for (_, status), n in self.answers.items():
            totals[status] += n
        return dict(totals)

    def _run(self) -> None:
        deadline, sent = time.monotonic() + self.max_seconds, itertools.count()
        targets: list[str] = []
        refreshed = 0.0
        turn = itertools.count()
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            if started - refreshed > 1:
                with contextlib.suppress(Exception):
                    targets = service_endpoints(self.api, self.namespace, self.service)
                refreshed = started
            if targets:
                address = targets[next(turn) % len(targets)]
                try:
                    n = next(sent)  # bodies may be replaced while it runs: the traffic mix changes
                    status, _ = invoke(address, CAPABILITY, self.bodies[n % len(self.bodies)], timeout=5)
                except OSError:
                    status = 0  # refused or reset: a pod going away
                self.answers[(address, status)] += 1
            self._stop.wait(max(0.0, 1 / self.rate - (time.monotonic() - started)))


def invoke(pod_ip: str, capability: str, body: dict, port: int = 8080, timeout: float = 10) -> tuple[int, dict]:
    """POST one invocation to a pod; (status, JSON body) whatever the status."""
    request = urllib.request.Request(f"http://{pod_ip}:{port}/v1/capabilities/{urllib.parse.quote(capability)}:invoke",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def service_endpoints(api: client.ApiClient, namespace: str, service: str) -> list[str]:
    """Ready pod addresses behind a Service, from its EndpointSlices: what kube-proxy would balance over."""
    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}").items
    return sorted(address for s in slices for e in (s.endpoints or [])
                  if (e.conditions is None or e.conditions.ready) for address in e.addresses)
