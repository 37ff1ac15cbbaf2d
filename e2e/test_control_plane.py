"""The local control plane behaves like a real cluster: workloads run, namespaces go away."""

from __future__ import annotations

from kubernetes import client
from kubernetes.client.rest import ApiException

from e2e import wait

PAUSE_IMAGE = "registry.k8s.io/pause@sha256:" + "0" * 64  # never pulled: kwok only pretends to run it


def _deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app.kubernetes.io/name": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="app", image=PAUSE_IMAGE)]),
            ),
        ),
    )


def test_deployment_of_two_replicas_becomes_available(api, namespace):
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, _deployment("web", 2))

    def available():
        status = apps.read_namespaced_deployment_status("web", namespace).status
        conditions = {c.type: c.status for c in status.conditions or []}
        return status.available_replicas == 2 and conditions.get("Available") == "True"

    wait.until(available, timeout=90, what="Deployment web to have 2 available replicas")
    pods = core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/name=web").items
    assert len(pods) == 2
    assert {p.status.phase for p in pods} == {"Running"}
    assert all(p.spec.node_name for p in pods), "pods must be bound by the scheduler"


def test_namespace_deletion_completes(api):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    name = "e2e-delete-me"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"),
                                                               data={"k": "v"}))
    apps.create_namespaced_deployment(name, _deployment("web", 1))
    wait.until(lambda: core.list_namespaced_pod(name).items, timeout=60, what="a pod in the namespace")
    core.delete_namespace(name)

    def gone():
        try:
            core.read_namespace(name)
        except ApiException as error:
            return error.status == 404
        return False

    wait.until(gone, timeout=120, what=f"namespace {name} to be deleted")


def test_the_fake_node_keeps_its_lease_so_its_pods_stay_ready(api):
    """The node controller reads a node's Lease as its heartbeat: without renewals it marks the node
    NotReady after 50 s, and every pod on it unready, which stalls any rollout in progress."""
    coordination = client.CoordinationV1Api(api)

    def renewed_at():
        try:
            return coordination.read_namespaced_lease("kwok-node-0", "kube-node-lease").spec.renew_time
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    first = wait.until(renewed_at, timeout=30, what="the fake node's Lease")
    wait.until(lambda: renewed_at() > first, timeout=30, what="the fake node's Lease to be renewed")
    ready = {c.type: c.status for c in client.CoreV1Api(api).read_node("kwok-node-0").status.conditions}["Ready"]
    assert ready == "True"
