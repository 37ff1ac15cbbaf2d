"""The registry's components run with least privilege: their ServiceAccounts, never system:masters.

Every question here goes to the real API server with the component's own token (what `gl-dev up`
and the e2e suite run it with): who it is (`kubectl auth whoami`), and what the authorizer lets it
do (`kubectl auth can-i`, a SelfSubjectAccessReview), both what it needs and what it must not do.
"""

from __future__ import annotations

import json

import pytest

from gl_devenv import identities
from gl_devenv.external import ExternalCluster

REGISTRY_KINDS = ("agents", "agentversions", "promotions", "tenantpolicies", "agentdeployments")


def as_component(cluster, component: str) -> ExternalCluster:
    return ExternalCluster(identities.kubeconfig(cluster, component))


def can(component: ExternalCluster, verb: str, resource: str, *scope: str, subresource: str | None = None) -> bool:
    """Does the authorizer allow it? ``resource`` may name one object (``configmaps/NAME``); ``scope`` is
    ``-n NS`` or ``-A`` (every namespace)."""
    extra = [f"--subresource={subresource}"] if subresource else []
    answer = component.kubectl("auth", "can-i", verb, resource, *scope, *extra, check=False)
    assert answer.stdout.strip() in ("yes", "no"), answer.stderr
    return answer.stdout.strip() == "yes"


@pytest.mark.parametrize("component", identities.COMPONENTS)
def test_each_component_is_its_service_account_and_not_in_system_masters(cluster, component):
    who = as_component(cluster, component).kubectl("auth", "whoami", "-o", "json")
    user = json.loads(who.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:greenlang-system:greenlang-registry-{component}"
    assert "system:masters" not in user["groups"]
    assert "system:serviceaccounts:greenlang-system" in user["groups"]


def test_the_identities_the_admission_policies_trust_are_the_service_accounts(cluster):
    data = json.loads(cluster.kubectl("get", "configmap", "greenlang-registry-identities", "-n", "greenlang-system",
                                      "-o", "json").stdout)["data"]
    assert data == {"operator": identities.username("operator"), "webhooks": identities.username("webhooks")}


def test_the_operator_does_its_work_and_nothing_more(cluster, namespace):
    operator = as_component(cluster, "operator")
    # What it needs: its kinds and their status, tenant provisioning, workloads, its Lease and records.
    assert all(can(operator, "patch", kind, "-A") for kind in REGISTRY_KINDS)
    assert all(can(operator, "patch", kind, "-A", subresource="status") for kind in REGISTRY_KINDS)
    assert can(operator, "create", "rolebindings", "-n", namespace)
    assert can(operator, "bind", "clusterroles/greenlang-registry:developer", "-n", namespace)
    assert can(operator, "patch", "deployments.apps", "-n", namespace)
    assert can(operator, "update", "leases.coordination.k8s.io/greenlang-registry-operator", "-n", "greenlang-system")
    # blockOwnerDeletion on an AgentDeployment's children, where OwnerReferencesPermissionEnforcement runs.
    assert can(operator, "update", "agentdeployments", "-n", namespace, subresource="finalizers")
    assert can(operator, "patch", "configmaps", "-n", "greenlang-system")
    # Not a cluster admin: no Secrets read, no CRDs changed, no registry objects deleted or their specs
    # rewritten, no cluster-wide bindings, no roles of its own choosing, no ConfigMaps outside its namespace.
    assert not can(operator, "get", "secrets", "-A")
    assert not can(operator, "list", "secrets", "-n", namespace)
    assert not can(operator, "delete", "customresourcedefinitions.apiextensions.k8s.io")
    assert not can(operator, "update", "customresourcedefinitions.apiextensions.k8s.io")
    assert not any(can(operator, verb, kind, "-A") for verb in ("create", "update", "delete") for kind in REGISTRY_KINDS)
    assert not can(operator, "create", "clusterrolebindings.rbac.authorization.k8s.io")
    assert not can(operator, "bind", "clusterroles/cluster-admin", "-n", namespace)
    assert not can(operator, "escalate", "clusterroles", "-n", namespace)
    assert not can(operator, "create", "pods", "-n", namespace)
    assert not can(operator, "update", "tenantpolicies", subresource="finalizers")
    assert not can(operator, "update", "agentversions", "-A", subresource="status")
    assert not can(operator, "patch", "configmaps", "-n", namespace)
    assert not can(operator, "update", "leases.coordination.k8s.io/kube-controller-manager", "-n", "kube-system")


def test_the_operator_cannot_grant_more_than_the_tenant_roles(cluster, namespace):
    """The API server's own escalation check, on the request itself: a tenant role may be bound, cluster-admin not."""
    operator = as_component(cluster, "operator")
    tenant_role = operator.kubectl("create", "rolebinding", "member", "-n", namespace, "--dry-run=server",
                                   "--clusterrole=greenlang-registry:developer", "--user=alice", check=False)
    assert tenant_role.returncode == 0, tenant_role.stderr
    admin = operator.kubectl("create", "rolebinding", "member", "-n", namespace, "--dry-run=server",
                             "--clusterrole=cluster-admin", "--user=alice", check=False)
    assert admin.returncode != 0
    assert "forbidden" in admin.stderr and "attempting to grant RBAC permissions not currently held" in admin.stderr


def test_the_webhooks_read_the_registry_and_never_write_it(cluster, namespace):
    webhooks = as_component(cluster, "webhooks")
    assert all(can(webhooks, "watch", kind, "-A") for kind in REGISTRY_KINDS if kind != "promotions")
    assert can(webhooks, "create", "subjectaccessreviews.authorization.k8s.io")
    assert can(webhooks, "create", "events", "-n", namespace)
    for kind in REGISTRY_KINDS:
        for verb in ("create", "update", "patch", "delete"):
            assert not can(webhooks, verb, kind, "-A"), f"webhooks may {verb} {kind}"
        assert not can(webhooks, "patch", kind, "-A", subresource="status")
    assert not can(webhooks, "get", "secrets", "-A")
    assert not can(webhooks, "list", "namespaces")


def test_the_mirror_watches_and_keeps_only_its_anchor(cluster, namespace):
    mirror = as_component(cluster, "mirror")
    assert all(can(mirror, "watch", kind, "-A") for kind in REGISTRY_KINDS)
    assert can(mirror, "watch", "events", "-A")
    assert can(mirror, "update", "configmaps/greenlang-audit-anchor", "-n", "greenlang-system")
    assert can(mirror, "get", "configmaps/extension-apiserver-authentication", "-n", "kube-system")
    assert not can(mirror, "update", "configmaps/greenlang-registry-identities", "-n", "greenlang-system")
    assert not can(mirror, "get", "configmaps/kube-root-ca.crt", "-n", "kube-system")
    assert not can(mirror, "get", "secrets", "-A")
    for kind in REGISTRY_KINDS:
        assert not can(mirror, "patch", kind, "-A") and not can(mirror, "delete", kind, "-A")
