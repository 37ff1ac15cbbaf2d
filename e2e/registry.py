"""Small helpers for driving the registry in e2e tests, the way a user would (kubectl, --as)."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from kubernetes import client

from e2e import wait
from e2e import REPO
from gl_api import GROUP, VERSION, labels, naming

EXAMPLE = REPO / "examples" / "cbam-calculator.yaml"
AGENT = "gl-cbam-calculator-v2"
GOOD_RESULTS = {
    "evaluation": {"passed": True, "score": 0.95, "suite": "cbam-2026.1"},
    "securityScan": {"critical": 0, "high": 0, "medium": 1, "scanner": "trivy 0.58"},
    "usage": {"requests": 1500, "errorRate": 0.002, "window": "7d"},
}


def example(kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d["kind"] == kind))


def apply(cluster, namespace: str, obj: dict[str, Any], as_user: str | None = None):
    args = ["apply", "-n", namespace, "-f", "-"] + ([f"--as={as_user}"] if as_user else [])
    return cluster.kubectl(*args, input=json.dumps(obj), check=False)


def publish_agent(cluster, namespace: str) -> None:
    result = apply(cluster, namespace, example("Agent"))
    assert result.returncode == 0, result.stderr


def publish_version(cluster, namespace: str, version: str) -> str:
    obj = example("AgentVersion")
    obj["spec"]["version"] = version
    obj["metadata"]["name"] = naming.object_name(AGENT, version)
    obj["metadata"]["labels"]["app.kubernetes.io/version"] = version
    result = apply(cluster, namespace, obj)
    assert result.returncode == 0, result.stderr
    return obj["metadata"]["name"]


def custom(api) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def get(api, namespace: str, plural: str, name: str) -> dict[str, Any]:
    return custom(api).get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)


def status(api, namespace: str, plural: str, name: str) -> dict[str, Any]:
    return get(api, namespace, plural, name).get("status") or {}


def report_results(api, namespace: str, version_name: str, **results: Any) -> None:
    """What an evaluation framework or CI does: write results through the status subresource."""
    custom(api).patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "agentversions", version_name,
                                                      {"status": results})


def as_operator(api: client.ApiClient) -> client.ApiClient:
    """A client that acts as the registry operator (the only identity the API server lets change
    lifecycle state, crds/admission_status.yaml), for tests that skip the promotion path."""
    from gl_devenv import identities

    impersonating = client.ApiClient(api.configuration)
    impersonating.set_default_header("Impersonate-User", identities.OPERATOR)
    impersonating.set_default_header("Impersonate-Group", "system:masters")
    return impersonating


REPORTED = ("evaluation", "securityScan", "usage")


def record_state(api, namespace: str, version_name: str, state: str, **status: Any) -> None:
    """Put a version in ``state`` (with lifecycle fields such as ``deprecation``) the way the operator
    would have; evaluation, scan and usage results are written as an evaluator writes them."""
    results = {k: v for k, v in status.items() if k in REPORTED}
    if results:
        report_results(api, namespace, version_name, **results)
    lifecycle = {"state": state, **{k: v for k, v in status.items() if k not in REPORTED}}
    custom(as_operator(api)).patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "agentversions",
                                                                   version_name, {"status": lifecycle})


def wait_state(api, namespace: str, version_name: str, state: str, timeout: float = 30) -> dict[str, Any]:
    return wait.until(lambda: (s := status(api, namespace, "agentversions", version_name)).get("state") == state and s,
                      timeout=timeout, what=f"{version_name} to be {state}")


def promote(cluster, namespace: str, name: str, version: str, target: str, as_user: str = "alice",
            **spec: Any):
    obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Promotion",
           "metadata": {"name": name, "annotations": {f"{GROUP}/created-by": as_user}},
           "spec": {"agentVersion": f"{AGENT}@{version}", "targetState": target, **spec}}
    result = apply(cluster, namespace, obj, as_user=as_user)
    assert result.returncode == 0, result.stderr
    return result


def approve(cluster, namespace: str, promotion: str, user: str):
    """`kubectl patch` adding an approval in the user's own name, as `gl agent approve` does."""
    patch = [{"op": "add", "path": "/spec/approvals/-", "value": {"user": user, "comment": "reviewed"}}]
    current = cluster.kubectl("get", "promotion", promotion, "-n", namespace, "-o", "json").stdout
    if not json.loads(current)["spec"].get("approvals"):
        patch = [{"op": "add", "path": "/spec/approvals", "value": [patch[0]["value"]]}]
    return cluster.kubectl("patch", "promotion", promotion, "-n", namespace, "--type=json", "-p", json.dumps(patch),
                           f"--as={user}", check=False)


def wait_phase(api, namespace: str, promotion: str, phase: str, timeout: float = 30) -> dict[str, Any]:
    return wait.until(lambda: (s := status(api, namespace, "promotions", promotion)).get("phase") == phase and s,
                      timeout=timeout, what=f"Promotion {promotion} to reach {phase}")


def checks(promotion_status: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    return {c["name"]: (c["passed"], c.get("message", "")) for c in promotion_status.get("checks") or []}


def events(api, namespace: str, name: str) -> list[tuple[str, str, str]]:
    items = client.CoreV1Api(api).list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [(e.type, e.reason, e.message) for e in items]


def wait_event(api, namespace: str, name: str, type_: str, reason: str, timeout: float = 20) -> str:
    """The message of the first Event of this type and reason about ``name``, once posted."""
    found = wait.until(lambda: [m for t, r, m in events(api, namespace, name) if (t, r) == (type_, reason)],
                       timeout=timeout, what=f"a {type_} {reason} Event on {name}")
    return found[0]


def binding(name: str, user: str, role: str, namespace: str | None = None, role_kind: str = "ClusterRole") -> dict:
    """A RoleBinding of ``user`` to ``role`` in ``namespace``, or a ClusterRoleBinding without one."""
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
            "metadata": meta, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]}


def grant_users(cluster, namespace: str) -> None:
    """alice requests and may approve (so her self-approval is refused for four eyes, not RBAC);
    bob approves; carol may edit promotions but not approve them."""
    manifests = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "promoter", "namespace": namespace},
         "rules": [{"apiGroups": [GROUP], "resources": ["promotions"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update"]}]},
        *[binding(f"{user}-{role}", user, role_name, namespace, kind)
          for user, role, kind, role_name in [
              ("alice", "promoter", "Role", "promoter"),
              ("alice", "approver", "ClusterRole", "greenlang-registry:promotion-approver"),
              ("bob", "approver", "ClusterRole", "greenlang-registry:promotion-approver"),
              ("carol", "promoter", "Role", "promoter")]],
    ]
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                    "items": manifests}), check=False)
    assert result.returncode == 0, result.stderr


def identity_stamped(cluster, namespace: str, obj: dict[str, Any]) -> bool | None:
    """Does the API server stamp the creator on ``obj`` (a server-side dry run)? None when it refuses it.

    The identity policies are a mutating and a validating one, switched on and off separately: for
    a moment one can act without the other, and then the dry run is refused.
    """
    result = cluster.kubectl("create", "-n", namespace, "--dry-run=server", "-o", "json", "-f", "-",
                             input=json.dumps(obj), check=False)
    if result.returncode != 0:
        return None
    return labels.CREATED_BY in (json.loads(result.stdout)["metadata"].get("annotations") or {})


def exists(read) -> bool:
    """Whether ``read()`` finds the object (a 404 says no; any other refusal is raised)."""
    try:
        read()
        return True
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
