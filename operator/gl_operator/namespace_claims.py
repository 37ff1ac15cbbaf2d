"""Which of a TenantPolicy's namespaces the operator may provision: the tenancy policy again.

The admission webhook refuses a bad claim at `kubectl apply`; this is the same policy, asked
through the embedded engine, for clusters that run the operator without the webhooks (the
default of `gl-operator run`) and for claims that raced each other past admission. A namespace
refused here gets no labels, limits or RoleBindings from this tenant.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from gl_api import kinds
from gl_kube import objects
from gl_policy import engines, inputs

_engine: engines.RegoEngine | None = None
_engine_lock = threading.Lock()


def _policy() -> engines.RegoEngine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = engines.RegoEngine()
        return _engine


@dataclass(frozen=True)
class Claims:
    refused: dict[str, str]  # namespace -> why
    warnings: list[str]


def claimed(tenant: dict[str, Any]) -> list[str]:
    """Every namespace the TenantPolicy claims: its environments' and its team namespaces."""
    return sorted(inputs.claimed_namespaces(tenant))


def _namespace(api: client.ApiClient, name: str) -> dict[str, Any] | None:
    try:
        return api.sanitize_for_serialization(client.CoreV1Api(api).read_namespace(name, _request_timeout=10))
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def judge(api: client.ApiClient, tenant: dict[str, Any]) -> Claims:
    """Each claimed namespace judged on its own, so one refusal does not hold back the others."""
    name = tenant["metadata"]["name"]
    claims = claimed(tenant)
    claimed_by: dict[str, str] = {}
    for other in objects.list_objects(api, kinds.TENANT_POLICY):
        if other["metadata"]["name"] != name and not other["metadata"].get("deletionTimestamp"):
            for ns in set(claimed(other)) & set(claims):
                claimed_by.setdefault(ns, other["metadata"]["name"])
    refused: dict[str, str] = {}
    warnings: list[str] = []
    for ns in claims:
        team = ns in (tenant["spec"].get("teamNamespaces") or [])
        single = {**tenant, "spec": {"teamNamespaces": [ns]} if team else {"environments": [{"namespace": ns}]}}
        verdict = _policy().evaluate("tenancy", inputs.tenancy(single, {ns: _namespace(api, ns)}, claimed_by))
        if verdict.deny:
            refused[ns] = "; ".join(verdict.deny)
        warnings += verdict.warn
    return Claims(refused, warnings)
