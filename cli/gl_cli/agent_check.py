"""`gl agent check`: would this agent version be admitted in a tenant environment?

It asks the very webhooks and policies `kubectl apply` would, by sending a server-side dry run
of an AgentDeployment in the environment's namespace: nothing is created.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.rest import ApiException

from gl_api import GROUP, VERSION, kinds
from gl_operator import kube

DENIED = re.compile(r'denied the request: (?P<messages>.*)$', re.DOTALL)
WARNING = re.compile(r'^\d{3} \S+ "(?P<text>.*)"$')


class CheckError(Exception):
    """A mistake in the request itself (unknown tenant or environment)."""


@dataclass
class CheckResult:
    namespace: str
    denials: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.denials


def environment_namespace(api: client.ApiClient, tenant: str, environment: str) -> str:
    policy = kube.get(api, kinds.TENANT_POLICY, None, tenant)
    if policy is None:
        raise CheckError(f"TenantPolicy {tenant} does not exist; see `kubectl get tenantpolicies`")
    environments = {e["name"]: e["namespace"] for e in policy["spec"].get("environments") or []}
    if environment not in environments:
        raise CheckError(f"tenant {tenant} has no environment {environment!r}; it has: "
                         f"{', '.join(environments) or 'none'}")
    return environments[environment]


def split_denials(message: str) -> list[str]:
    match = DENIED.search(message)
    lines = [line.strip() for line in (match.group("messages") if match else message).strip().splitlines()]
    listed = [line.removeprefix("- ") for line in lines if line.startswith("- ")]
    return listed or [line for line in lines if line]


def check(api: client.ApiClient, agent_namespace: str, agent: str, version: str, tenant: str,
          environment: str) -> CheckResult:
    namespace = environment_namespace(api, tenant, environment)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentDeployment",
            "metadata": {"name": f"gl-check-{agent}"[:63], "namespace": namespace},
            "spec": {"agent": f"{agent_namespace}/{agent}", "version": version, "replicas": 1}}
    result = CheckResult(namespace=namespace)
    try:
        _, _, headers = client.CustomObjectsApi(api).create_namespaced_custom_object_with_http_info(
            GROUP, VERSION, namespace, "agentdeployments", body, dry_run="All")
    except ApiException as error:
        if error.status not in (400, 403, 422):
            raise
        message = json.loads(error.body).get("message", error.body) if error.body else str(error)
        result.denials = split_denials(message)
        headers = error.headers or {}
    result.warnings = [m.group("text") for raw in _warning_headers(headers) if (m := WARNING.match(raw.strip()))]
    return result


def _warning_headers(headers: object) -> list[str]:
    getlist = getattr(headers, "getlist", None)
    if getlist:
        return list(getlist("Warning"))
    value = headers.get("Warning") if isinstance(headers, dict) else None  # type: ignore[union-attr]
    return [value] if value else []
