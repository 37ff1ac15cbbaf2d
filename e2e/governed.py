"""A control plane with the registry's webhook server and operator as separate processes, for e2e tests.

``running(workdir, engine)`` starts it (the webhook server asking an OPA server, or the embedded
regopy interpreter with ``engine="regopy"``) with a tenant, a team and gl-cbam-calculator-v2
2.3.1 certified and 2.4.0 experimental, and the webhook server knowing ``RUNTIME_IMAGE`` as the
registry's runtime image. Each component runs as its own ServiceAccount with the chart's roles, as on
a cluster (``gl_devenv.identities``): the operator as ``greenlang-registry-operator``, the webhooks as
``greenlang-registry-webhooks``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import yaml
from kubernetes import config as kube_config

from e2e import registry as reg
from e2e import wait
from e2e import REPO
from gl_api import GROUP, VERSION, naming
from gl_devenv import cluster as local_cluster
from gl_devenv import crd_install, registry_services, webhook_service

TEAM = "climate-team"
TENANT = "customer-abc-123"
PROD, STAGING = f"{TENANT}-prod", f"{TENANT}-staging"
OPERATOR_USER = registry_services.OPERATOR_IDENTITY
TEST_OPERATOR_CONFIG = {"promotion": {"soakSeconds": 0}, "resyncSeconds": 1, "serviceAccount": OPERATOR_USER}
# The registry's agent-runtime image as the webhook server knows it (a fixed fake digest: no pod runs it
# here, the kwok node only pretends): the image guard judges its containers by GL_ARTIFACT_DIGEST.
RUNTIME_IMAGE = f"localhost/greenlang/agent-runtime@sha256:{'cd' * 32}"


def image_of(version: str) -> str:
    return f"registry.example.com/greenlang/cbam@sha256:{hashlib.sha256(version.encode()).hexdigest()}"


def artifact_of(version: str) -> str:
    """Each version's own artifact digest (what the runtime image loads, GL_ARTIFACT_DIGEST)."""
    return f"sha256:{hashlib.sha256(f'artifact {version}'.encode()).hexdigest()}"


class Governed:
    def __init__(self, cluster, api, engine: str, opa_url: str | None):
        self.cluster, self.api, self.engine, self.opa_url = cluster, api, engine, opa_url

    def kubectl(self, *args: str, input: str | None = None, as_user: str | None = None):
        return self.cluster.kubectl(*args, *([f"--as={as_user}"] if as_user else []), input=input, check=False)

    def apply(self, obj: dict, namespace: str | None = None, as_user: str | None = None):
        return self.kubectl("apply", *(["-n", namespace] if namespace else []), "-f", "-", input=json.dumps(obj),
                            as_user=as_user)

    def start_webhooks(self) -> None:
        webhook_service.start_webhooks(self.cluster, self.opa_url, OPERATOR_USER, runtime_images=[RUNTIME_IMAGE])

    def stop_webhooks(self) -> None:
        """Stop the webhook server and leave its configuration registered: admission must fail closed."""
        self.cluster.processes.stop(webhook_service.WEBHOOKS)

    def start_operator(self) -> None:
        registry_services.start_operator(self.cluster, TEST_OPERATOR_CONFIG)

    def stop_operator(self) -> None:
        registry_services.stop_operator(self.cluster)


def _tenant() -> dict:
    tenant = yaml.safe_load((REPO / "examples" / "tenant-policy.yaml").read_text())
    tenant["spec"]["quotas"] = {"cpu": "2", "memory": "8Gi", "maxDeployments": 2}
    # The tests make climate-team themselves, before the tenant: an existing namespace cannot be claimed.
    del tenant["spec"]["teamNamespaces"]
    return tenant


def version_object(version: str, **spec_changes) -> dict:
    obj = reg.example("AgentVersion")
    obj["metadata"]["name"] = naming.object_name(reg.AGENT, version)
    obj["metadata"]["labels"]["app.kubernetes.io/version"] = version
    digest = artifact_of(version)
    artifact = {**obj["spec"]["artifact"], "digest": digest,
                "uri": f"s3://greenlang-agents/sha256/{digest.removeprefix('sha256:')}"}
    obj["spec"].update(version=version, image=image_of(version), artifact=artifact, **spec_changes)
    return obj


def deployment_object(name: str, version: str, **spec) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentDeployment", "metadata": {"name": name},
            "spec": {"agent": f"{TEAM}/{reg.AGENT}", "version": version, "replicas": 1, **spec}}


@contextlib.contextmanager
def running(workdir: Path, engine: str) -> Iterator[Governed]:
    cluster = local_cluster.LocalCluster(workdir / "cluster")
    cluster.start()
    try:
        crd_install.install(cluster)
        opa_url = webhook_service.start_opa(cluster) if engine == "opa" else None
        env = Governed(cluster, kube_config.new_client_from_config(config_file=str(cluster.kubeconfig)), engine,
                       opa_url)
        env.start_webhooks()
        env.start_operator()
        _set_up(env)
        yield env
    finally:
        for name in (registry_services.OPERATOR, webhook_service.WEBHOOKS, webhook_service.OPA):
            cluster.processes.stop(name)
        cluster.stop()


def _set_up(env: Governed) -> None:
    """A tenant with provisioned environments; a team publishing 2.3.1 (certified) and 2.4.0 (experimental)."""
    assert env.apply(_tenant()).returncode == 0
    for namespace in (PROD, STAGING):
        # Kubernetes refuses objects under a quota until the quota controller has counted usage.
        wait.until(lambda: "requests.cpu" in env.kubectl(
            "get", "resourcequota", "greenlang-tenant-quota", "-n", namespace, "-o", "jsonpath={.status.used}").stdout,
            timeout=60, what=f"the tenant quota in {namespace} to be counted")
    assert env.kubectl("create", "namespace", TEAM).returncode == 0
    reg.grant_users(env.cluster, TEAM)
    assert env.apply(reg.example("Agent"), TEAM).returncode == 0
    for version in ("2.3.1", "2.4.0"):
        result = env.apply(version_object(version), TEAM)
        assert result.returncode == 0, result.stderr
        name = naming.object_name(reg.AGENT, version)
        reg.wait_state(env.api, TEAM, name, "draft")
        reg.report_results(env.api, TEAM, name, **reg.GOOD_RESULTS)
        assert env.apply(promotion_object(f"exp-{version}", version, "experimental"), TEAM, as_user="alice").returncode == 0
        reg.wait_phase(env.api, TEAM, f"exp-{version}", "Succeeded")
    assert env.apply(promotion_object("cert-2.3.1", "2.3.1", "certified"), TEAM, as_user="alice").returncode == 0
    reg.wait_phase(env.api, TEAM, "cert-2.3.1", "AwaitingApproval")
    assert reg.approve(env.cluster, TEAM, "cert-2.3.1", "bob").returncode == 0
    reg.wait_phase(env.api, TEAM, "cert-2.3.1", "Succeeded")


def promotion_object(name: str, version: str, target: str, **spec) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Promotion", "metadata": {"name": name},
            "spec": {"agentVersion": f"{reg.AGENT}@{version}", "targetState": target, **spec}}
