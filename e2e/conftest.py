"""Fixtures for end-to-end tests: a real Kubernetes API server, never a mock.

By default the session starts the local control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok) from the binaries in the shared cache,
building them first if needed. ``GL_E2E_CLUSTER=kind`` runs the same tests on a new kind
cluster; ``GL_E2E_KUBECONFIG=path`` runs them on an existing cluster.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from gl_devenv import cluster as local_cluster
from gl_api import GROUP, VERSION
from gl_devenv import crd_install, external, identities
from e2e import registry as reg
from e2e import wait
from e2e.operator_process import OperatorProcess
from e2e.runtime_stack import RuntimeStack, operator_using, running



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_cluster.LocalCluster | external.ExternalCluster]:
    mode = os.environ.get("GL_E2E_CLUSTER", "local")
    workdir = tmp_path_factory.mktemp("cluster")
    target: local_cluster.LocalCluster | external.ExternalCluster
    if os.environ.get("GL_E2E_KUBECONFIG"):
        target = external.ExternalCluster(Path(os.environ["GL_E2E_KUBECONFIG"]))
    elif mode == "kind":
        target = external.KindCluster(f"gl-e2e-{os.getpid()}", workdir / "kubeconfig")
        target.start()
    elif mode == "local":
        target = local_cluster.LocalCluster(workdir)
        target.start()
    else:
        raise pytest.UsageError(f"GL_E2E_CLUSTER={mode!r}: use local (default) or kind")
    try:
        crd_install.install(target, operator_user=_operator_user(target))
        yield target
    finally:
        target.stop()


def _operator_user(target) -> str:
    """The user the operator runs as, the one the admission policies let change lifecycle state: its own
    identity locally, the kubeconfig's user on an existing cluster (nothing else to authenticate with)."""
    if isinstance(target, local_cluster.LocalCluster):
        return identities.OPERATOR
    return target.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout.strip()


def operator_kubeconfig(target) -> Path:
    """Locally, the operator's ServiceAccount token, bound to crds/rbac_operator.yaml: a permission the
    operator lacks there fails the tests."""
    if isinstance(target, local_cluster.LocalCluster):
        return identities.kubeconfig(target, "operator")
    return Path(target.kubeconfig)


@pytest.fixture(scope="session")
def api(cluster: local_cluster.LocalCluster | external.ExternalCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting for it to go)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"e2e": "true"})))
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as error:
        if error.status != 404:  # gone already: the test deleted it
            raise


@pytest.fixture(scope="session")
def operator_process(cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(operator_kubeconfig(cluster), tmp_path_factory.mktemp("operator"))
    yield process
    process.stop()


@pytest.fixture
def operator(operator_process: OperatorProcess) -> OperatorProcess:
    """The operator, running (a test that stopped or crashed it leaves it to be restarted here)."""
    if not operator_process.running():
        operator_process.start()
    return operator_process


@pytest.fixture(scope="session")
def runtime_stack(cluster) -> Iterator[RuntimeStack]:
    """A real node for agent pods, Prometheus, and S3 on the node's address."""
    if not isinstance(cluster, local_cluster.LocalCluster):
        pytest.fail("the runtime tests run a real node beside the local control plane (GL_E2E_CLUSTER=local)")
    with running(cluster) as stack:
        yield stack


@pytest.fixture(scope="module")
def runtime_operator(runtime_stack: RuntimeStack, operator_process: OperatorProcess) -> Iterator[OperatorProcess]:
    """The operator with the runtime image, Prometheus, S3 and the agent pool's placement, for one module."""
    with operator_using(runtime_stack, operator_process) as operator:
        yield operator


@pytest.fixture
def tenant(cluster, api, namespace, operator):
    """A team namespace with the CBAM Agent, and a tenant whose environments (dev admits experimental and
    certified versions, production only certified) are fresh namespaces."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    envs = {"dev": f"{name}-dev", "production": f"{name}-prod"}
    policy = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TenantPolicy", "metadata": {"name": name},
              "spec": {"environments": [{"name": "dev", "namespace": envs["dev"],
                                         "allowedStates": ["experimental", "certified"]},
                                        {"name": "production", "namespace": envs["production"],
                                         "allowedStates": ["certified"]}]}}
    assert reg.apply(cluster, namespace, policy).returncode == 0
    core = client.CoreV1Api(api)
    for env in envs.values():
        wait.until(lambda: reg.exists(lambda: core.read_namespace(env)), what=f"namespace {env}")
    reg.publish_agent(cluster, namespace)
    yield {"team": namespace, "name": name, **envs}
    for env in envs.values():
        for glad in reg.custom(api).list_namespaced_custom_object(GROUP, VERSION, env, "agentdeployments")["items"]:
            reg.custom(api).delete_namespaced_custom_object(GROUP, VERSION, env, "agentdeployments",
                                                            glad["metadata"]["name"])
    reg.custom(api).delete_cluster_custom_object(GROUP, VERSION, "tenantpolicies", name)
    for env in envs.values():
        core.delete_namespace(env)
