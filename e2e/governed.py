"""A control plane with the registry's operator serving its admission webhooks, for e2e tests.

``running(workdir, engine)`` starts it (embedded regopy, or an OPA server with ``engine="opa"``)
with a tenant, a team and gl-cbam-calculator-v2 2.3.1 certified and 2.4.0 experimental.
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
from e2e.conftest import REPO
from e2e.operator_process import OperatorProcess
from gl_api import GROUP, VERSION, naming
from gl_devenv import cluster as local_cluster
from gl_devenv import crd_install, opa_server, registry_services
from gl_devenv.cluster import free_port

TEAM = "climate-team"
TENANT = "customer-abc-123"
PROD, STAGING = f"{TENANT}-prod", f"{TENANT}-staging"
OPERATOR_USER = "admin"  # the operator runs with the admin kubeconfig here


def image_of(version: str) -> str:
    return f"registry.example.com/greenlang/cbam@sha256:{hashlib.sha256(version.encode()).hexdigest()}"


class Governed:
    def __init__(self, cluster, api, engine: str):
        self.cluster, self.api, self.engine = cluster, api, engine
        self.webhook_port = 0

    def kubectl(self, *args: str, input: str | None = None, as_user: str | None = None):
        return self.cluster.kubectl(*args, *([f"--as={as_user}"] if as_user else []), input=input, check=False)

    def apply(self, obj: dict, namespace: str | None = None, as_user: str | None = None):
        return self.kubectl("apply", *(["-n", namespace] if namespace else []), "-f", "-", input=json.dumps(obj),
                            as_user=as_user)


def _tenant() -> dict:
    tenant = yaml.safe_load((REPO / "examples" / "tenant-policy.yaml").read_text())
    tenant["spec"]["quotas"] = {"cpu": "2", "memory": "8Gi", "maxDeployments": 2}
    return tenant


def version_object(version: str, **spec_changes) -> dict:
    obj = reg.example("AgentVersion")
    obj["metadata"]["name"] = naming.object_name(reg.AGENT, version)
    obj["metadata"]["labels"]["app.kubernetes.io/version"] = version
    obj["spec"].update(version=version, image=image_of(version), **spec_changes)
    return obj


def deployment_object(name: str, version: str, **spec) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentDeployment", "metadata": {"name": name},
            "spec": {"agent": f"{TEAM}/{reg.AGENT}", "version": version, "replicas": 1, **spec}}


@contextlib.contextmanager
def running(workdir: Path, engine: str) -> Iterator[Governed]:
    cluster = local_cluster.LocalCluster(workdir / "cluster")
    cluster.start()
    crd_install.install(cluster)
    extra: list[str] = []
    port = free_port()
    if engine == "opa":
        url = opa_server.start(cluster.processes, REPO / "policies", cwd=cluster.workdir)
        extra.append(f"--opa-url={url}")
    args = registry_services.webhook_args(cluster.pki_dir, port, None) + extra
    operator = OperatorProcess(cluster.kubeconfig, workdir, config={
        "promotion": {"soakSeconds": 0}, "resyncSeconds": 1, "serviceAccount": OPERATOR_USER}, args=args)
    operator.start()
    registry_services.install_webhooks(cluster, cluster.pki_dir, port)
    env = Governed(cluster, kube_config.new_client_from_config(config_file=str(cluster.kubeconfig)), engine)
    env.webhook_port = port
    try:
        _set_up(env)
        yield env
    finally:
        operator.stop()
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
