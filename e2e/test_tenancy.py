"""A TenantPolicy's claims when no webhook is there to refuse them (`gl-operator run` alone, the
default): the operator asks the same tenancy policy before it provisions, so a claim of a system
namespace, another tenant's namespace or an existing one grants nobody anything there."""

from __future__ import annotations

import uuid

from kubernetes import client

from e2e import registry as reg
from e2e import wait
from gl_api import GROUP, VERSION, labels


def _tenant(name: str, *namespaces: str) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TenantPolicy", "metadata": {"name": name},
            "spec": {"environments": [{"name": env, "namespace": ns}
                                      for env, ns in zip(("dev", "staging", "production")[:len(namespaces)], namespaces,
                                                          strict=True)],
                     "members": [{"kind": "User", "name": "mallory", "role": "super_admin"}]}}


def _ready(api, name: str) -> dict:
    status = reg.custom(api).get_cluster_custom_object(GROUP, VERSION, "tenantpolicies", name).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})


def _bindings(api, namespace: str, tenant: str) -> list:
    return client.RbacAuthorizationV1Api(api).list_namespaced_role_binding(
        namespace, label_selector=f"{labels.TENANT}={tenant}").items


def _events(api, name: str) -> list[tuple[str, str, str]]:
    items = client.CoreV1Api(api).list_namespaced_event(
        "default", field_selector=f"involvedObject.kind=TenantPolicy,involvedObject.name={name}").items
    return [(e.type, e.reason, e.message) for e in items]


def test_the_operator_provisions_only_namespaces_a_tenant_may_claim(cluster, api, namespace, operator):
    first, second = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    assert reg.apply(cluster, namespace, _tenant(first, f"{first}-dev")).returncode == 0
    wait.until(lambda: _bindings(api, f"{first}-dev", first), what=f"{first}-dev provisioned")

    # Claims kube-system and the first tenant's namespace, plus one of its own.
    greedy = _tenant(second, "kube-system", f"{first}-dev", f"{second}-dev")
    assert reg.apply(cluster, namespace, greedy).returncode == 0  # no webhook here: the API server accepts it
    ready = wait.until(lambda: (c := _ready(api, second)).get("reason") == "NamespaceNotClaimable" and c,
                       what="the claims refused")
    assert ready["status"] == "False"
    for reason in ("claims namespace kube-system, which belongs to the cluster or the registry",
                   f"claims namespace {first}-dev, which TenantPolicy {first} already claims"):
        assert reason in ready["message"], ready["message"]
    wait.until(lambda: _bindings(api, f"{second}-dev", second), what="its own namespace provisioned")
    # Then an existing team namespace in place of kube-system.
    assert reg.apply(cluster, namespace, _tenant(second, namespace, f"{first}-dev", f"{second}-dev")).returncode == 0
    wait.until(lambda: f"claims namespace {namespace}, which already exists and was not created for this tenant"
               in _ready(api, second).get("message", ""), what="the team namespace refused")

    for refused in ("kube-system", f"{first}-dev", namespace):
        assert not _bindings(api, refused, second), refused
        labelled = client.CoreV1Api(api).read_namespace(refused).metadata.labels or {}
        assert labelled.get(labels.TENANT) != second
    status = reg.custom(api).get_cluster_custom_object(GROUP, VERSION, "tenantpolicies", second)["status"]
    assert status["namespaces"] == [f"{second}-dev"]
    assert ("Warning", "NamespaceNotClaimable") in {(t, r) for t, r, _ in _events(api, second)}
    assert _ready(api, first)["status"] == "True"  # a later claim takes nothing from the first tenant

    for name in (first, second):
        reg.custom(api).delete_cluster_custom_object(GROUP, VERSION, "tenantpolicies", name)
    for env in (f"{first}-dev", f"{second}-dev"):
        client.CoreV1Api(api).delete_namespace(env)
