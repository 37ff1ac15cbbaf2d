"""The runtime's test stack: a real node running agent pods, Prometheus scraping them, S3 on the
node's address (pods fetch their artifacts from it), and the operator configured to use them.

Started once per session, only by the tests that ask for it (``runtime_stack`` fixture): the
rest of the suite keeps the kwok node alone.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
from kubernetes import client

from gl_api import artifact
from gl_devenv import node as real_node
from gl_devenv import prometheus
from gl_devenv.cluster import LocalCluster
from e2e import s3_server
from e2e.operator_process import TEST_CONFIG, OperatorProcess

BUCKET = "greenlang-agents"
# Fast reconciles and short analysis windows, so a rollout is minutes of test time, not hours.
RUNTIME_CONFIG = {**TEST_CONFIG, "deployments": {"reconcileSeconds": 1, "placement": real_node.placement()}}


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
def running(cluster: LocalCluster, operator: OperatorProcess) -> Iterator[RuntimeStack]:
    node = real_node.RealNode(cluster)
    node.start()
    assert node.runtime_image is not None
    try:
        url = prometheus.start(cluster)
        with s3_server.running(BUCKET, host=real_node.NODE_IP) as endpoint:
            env = {"GL_RUNTIME_IMAGE": node.runtime_image.reference, "GL_PROMETHEUS_URL": url,
                   "GL_S3_ENDPOINT": endpoint, **s3_server.CREDENTIALS}
            operator.stop()
            operator.reconfigure(RUNTIME_CONFIG, env)
            operator.start()
            yield RuntimeStack(cluster, node, url, endpoint, node.runtime_image.reference)
    finally:
        prometheus.stop(cluster)
        node.stop()


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
