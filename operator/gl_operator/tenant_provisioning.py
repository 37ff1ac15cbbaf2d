"""Provision what a TenantPolicy describes: environment namespaces, quota, limits, network
isolation and RoleBindings for its members; remove what it no longer describes.

``desired_objects`` is pure (unit-tested); ``reconcile_tenant`` applies it with server-side
apply and prunes the RoleBindings of removed members. Namespaces are labelled, never owned:
deleting a TenantPolicy removes access and limits, not the namespaces and what runs in them.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from gl_api import conditions, kinds, labels
from gl_kube import events, objects
from gl_operator import namespace_claims

log = logging.getLogger(__name__)
FIELD_MANAGER = labels.OPERATOR_NAME
ROLE_PREFIX = "greenlang-registry:"
DEFAULT_LIMITS = {"default": {"cpu": "500m", "memory": "512Mi"}, "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}
OPERATOR_NAMESPACE = "greenlang-system"


def _labels(tenant: str, environment: str | None = None) -> dict[str, str]:
    result = {labels.TENANT: tenant, labels.MANAGED_BY: labels.OPERATOR_NAME,
              "app.kubernetes.io/part-of": "greenlang-registry"}
    if environment:
        result[labels.ENVIRONMENT] = environment
    return result


def binding_name(member: dict[str, Any]) -> str:
    """Stable, DNS-safe name for one member's RoleBinding (user names may hold '@' and capitals)."""
    digest = hashlib.sha256(f"{member['kind']}/{member['name']}".encode()).hexdigest()[:10]
    return f"greenlang-{member['role'].replace('_', '-')}-{member['kind'].lower()}-{digest}"


def desired_objects(tenant: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything one TenantPolicy asks for, per environment namespace."""
    name, uid, spec = tenant["metadata"]["name"], tenant["metadata"]["uid"], tenant["spec"]
    owner = [{"apiVersion": kinds.TENANT_POLICY.api_version, "kind": "TenantPolicy", "name": name, "uid": uid,
              "controller": True, "blockOwnerDeletion": False}]
    quotas = spec.get("quotas") or {}
    hard = {key: str(quotas[source]) for key, source in
            (("requests.cpu", "cpu"), ("requests.memory", "memory"), ("requests.storage", "storage"))
            if quotas.get(source) is not None}
    # maxDeployments is enforced by the deployment policy at admission, with a message naming the
    # TenantPolicy; a count/ quota on the CRD would refuse everything until the quota controller
    # rediscovers resources, which takes minutes after the CRDs are installed.
    result: list[dict[str, Any]] = []
    for env in spec.get("environments") or []:
        namespace, env_labels = env["namespace"], _labels(name, env["name"])
        result.append({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": namespace, "labels": env_labels}})
        meta = {"namespace": namespace, "labels": _labels(name, env["name"]), "ownerReferences": owner}
        if hard:
            result.append({"apiVersion": "v1", "kind": "ResourceQuota",
                           "metadata": {"name": "greenlang-tenant-quota", **meta}, "spec": {"hard": hard}})
        result.append({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "greenlang-tenant-limits", **meta},
                       "spec": {"limits": [{"type": "Container", **DEFAULT_LIMITS}]}})
        result.append(_network_policy(meta))
        result.extend(_bindings(spec, meta))
    # Team namespaces: where the tenant's teams publish agents; its members' roles, no workload limits.
    for namespace in spec.get("teamNamespaces") or []:
        result.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": _labels(name)}})
        result.extend(_bindings(spec, {"namespace": namespace, "labels": _labels(name), "ownerReferences": owner}))
    return result


def _bindings(spec: dict[str, Any], meta: dict[str, Any]) -> list[dict[str, Any]]:
    return [{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": binding_name(member), **meta},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE_PREFIX + member["role"]},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": member["kind"], "name": member["name"]}],
    } for member in spec.get("members") or []]


def _network_policy(meta: dict[str, Any]) -> dict[str, Any]:
    """Deny by default; allow traffic inside the namespace, from the registry's runtime, and DNS."""
    same_namespace = {"podSelector": {}}
    runtime = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": OPERATOR_NAMESPACE}}}
    dns = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
           "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "greenlang-default-deny", **meta},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [same_namespace, runtime]}],
                     "egress": [{"to": [same_namespace]}, dns]}}


def _apply(api: client.ApiClient, obj: dict[str, Any]) -> None:
    resource = dynamic.DynamicClient(api).resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    resource.server_side_apply(body=obj, namespace=obj["metadata"].get("namespace"),
                               field_manager=FIELD_MANAGER, force_conflicts=True)


def _prune_bindings(api: client.ApiClient, tenant: str, wanted: set[tuple[str, str]]) -> list[str]:
    rbac = client.RbacAuthorizationV1Api(api)
    removed = []
    for binding in rbac.list_role_binding_for_all_namespaces(label_selector=f"{labels.TENANT}={tenant}").items:
        key = (binding.metadata.namespace, binding.metadata.name)
        if key not in wanted:
            rbac.delete_namespaced_role_binding(binding.metadata.name, binding.metadata.namespace)
            removed.append(f"{key[0]}/{key[1]}")
    return removed


def reconcile_tenant(api: client.ApiClient, name: str) -> None:
    tenant = objects.get(api, kinds.TENANT_POLICY, None, name)
    if tenant is None or tenant["metadata"].get("deletionTimestamp"):
        return
    generation = tenant["metadata"].get("generation", 1)
    status = tenant.get("status") or {}
    claims = namespace_claims.judge(api, tenant)
    desired = [o for o in desired_objects(tenant)
               if (o["metadata"].get("namespace") or o["metadata"]["name"]) not in claims.refused]
    try:
        for obj in desired:
            _apply(api, obj)
        bindings = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in desired if o["kind"] == "RoleBinding"}
        removed = _prune_bindings(api, name, bindings)
    except ApiException as error:
        message = f"provisioning failed: {error.reason}: {(error.body or '')[:300]}"
        objects.patch_status(api, kinds.TENANT_POLICY, tenant, {
            "observedGeneration": generation,
            "conditions": conditions.set_condition(status.get("conditions"), "Ready", False, "ProvisioningFailed",
                                                   message, generation)})
        events.record(api, tenant, events.WARNING, "ProvisioningFailed", message)
        raise
    teams = set(tenant["spec"].get("teamNamespaces") or [])
    namespaces = [o["metadata"]["name"] for o in desired if o["kind"] == "Namespace" and o["metadata"]["name"] not in teams]
    team_namespaces = [o["metadata"]["name"] for o in desired if o["kind"] == "Namespace" and o["metadata"]["name"] in teams]
    message = f"{len(namespaces)} environments, {len(bindings)} role bindings" + \
        (f", {len(team_namespaces)} team namespaces" if team_namespaces else "")
    if claims.refused:
        refusal = "not provisioned: " + "; ".join(claims.refused[ns] for ns in sorted(claims.refused))
        ready = conditions.set_condition(status.get("conditions"), "Ready", False, "NamespaceNotClaimable",
                                         f"{message} provisioned; {refusal}"[:4096], generation)
    else:
        ready = conditions.set_condition(status.get("conditions"), "Ready", True, "Provisioned", message, generation)
    wanted = {
        "observedGeneration": generation, "namespaces": namespaces, "teamNamespaces": team_namespaces or None,
        "roleBindings": sorted(f"{ns}/{n}" for ns, n in bindings), "conditions": ready,
    }
    if removed:
        events.record(api, tenant, events.NORMAL, "AccessRemoved", "removed role bindings " + ", ".join(removed))
    if any(status.get(k) != v for k, v in wanted.items()):
        objects.patch_status(api, kinds.TENANT_POLICY, tenant, wanted)
        if claims.refused:
            events.record(api, tenant, events.WARNING, "NamespaceNotClaimable", refusal[:1024])
        else:
            events.record(api, tenant, events.NORMAL, "Provisioned", message)
        for warning in claims.warnings:
            events.record(api, tenant, events.WARNING, "NamespaceAdopted", warning)


def running_deployments(api: client.ApiClient, tenant: dict[str, Any]) -> list[str]:
    namespaces = {env["namespace"] for env in tenant["spec"].get("environments") or []}
    return sorted(f"{d['metadata']['namespace']}/{d['metadata']['name']}"
                  for d in objects.list_objects(api, kinds.AGENT_DEPLOYMENT)
                  if d["metadata"]["namespace"] in namespaces)


def deletion_blockers(api: client.ApiClient, name: str) -> str | None:
    """Why a TenantPolicy may not go yet (None when it may)."""
    tenant = objects.get(api, kinds.TENANT_POLICY, None, name)
    if tenant is None:
        return None
    running = running_deployments(api, tenant)
    if not running:
        return None
    return (f"TenantPolicy {name} still has {len(running)} AgentDeployments in its namespaces "
            f"({', '.join(running)}); delete them first, then the TenantPolicy goes away by itself")
