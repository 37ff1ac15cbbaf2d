"""Gather what a policy needs to decide: the objects around the one being admitted.

Each function returns the ``input`` document of one decision in ``policies/``. Reads go to the
API server with the operator's credentials; the user's identity comes from the admission request.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from gl_api import kinds, labels, naming, semver
from gl_api.lifecycle import State
from gl_operator import approvals, kube


def user(userinfo: dict[str, Any]) -> dict[str, Any]:
    return {"username": userinfo.get("username", ""), "groups": list(userinfo.get("groups") or [])}


def tenant_of_namespace(api: client.ApiClient, namespace: str) -> dict[str, Any] | None:
    for tenant in kube.list_objects(api, kinds.TENANT_POLICY):
        if any(env.get("namespace") == namespace for env in tenant["spec"].get("environments") or []):
            return tenant
    return None


def tenants_of_user(api: client.ApiClient, who: dict[str, Any]) -> list[dict[str, Any]]:
    def member(m: dict[str, Any]) -> bool:
        return (m["kind"] == "User" and m["name"] == who["username"]) or \
            (m["kind"] == "Group" and m["name"] in who["groups"])

    return [t for t in kube.list_objects(api, kinds.TENANT_POLICY)
            if any(member(m) for m in t["spec"].get("members") or [])]


def governing_tenants(api: client.ApiClient, namespace: str, who: dict[str, Any]) -> list[dict[str, Any]]:
    """The namespace's tenant when it is a tenant environment, else the tenants the user belongs to."""
    tenant = tenant_of_namespace(api, namespace)
    return [tenant] if tenant else tenants_of_user(api, who)


def publish(api: client.ApiClient, body: dict[str, Any], userinfo: dict[str, Any], operation: str) -> dict[str, Any]:
    namespace = body["metadata"]["namespace"]
    who = user(userinfo)
    return {"operation": operation, "user": who, "object": body,
            "agent": kube.get(api, kinds.AGENT, namespace, body["spec"]["agent"]),
            "tenants": governing_tenants(api, namespace, who)}


def promotion(api: client.ApiClient, body: dict[str, Any], userinfo: dict[str, Any], operation: str) -> dict[str, Any]:
    namespace = body["metadata"]["namespace"]
    who = user(userinfo)
    version = None
    try:
        ref = naming.AgentVersionRef.parse(body["spec"]["agentVersion"])
        version = kube.get(api, kinds.AGENT_VERSION, namespace, ref.object_name)
    except naming.InvalidReference:
        pass  # the schema rejects a malformed reference before we are asked
    return {"operation": operation, "user": who, "object": body, "version": version,
            "tenants": governing_tenants(api, namespace, who)}


def approval(api: client.ApiClient, body: dict[str, Any], old: dict[str, Any], userinfo: dict[str, Any]) -> dict[str, Any]:
    who = user(userinfo)
    before = old["spec"].get("approvals") or []
    added = [a for a in body["spec"].get("approvals") or [] if a not in before]
    meta = body["metadata"]
    allowed = bool(added) and approvals.may_approve(api, who["username"], who["groups"], meta["namespace"],
                                                    meta["name"])
    requester = (old["metadata"].get("annotations") or {}).get(labels.CREATED_BY, "")
    return {"user": who, "requester": requester, "added": added, "subjectAccessReview": {"allowed": allowed}}


def resolve_version(api: client.ApiClient, spec: dict[str, Any]) -> dict[str, Any] | None:
    """The AgentVersion an AgentDeployment's spec selects: exact, newest in range, or newest certified."""
    agent_namespace, agent = spec["agent"].split("/", 1)
    versions = [v for v in kube.list_objects(api, kinds.AGENT_VERSION, agent_namespace,
                                             field_selector=f"spec.agent={agent}")
                if (v.get("status") or {}).get("state") not in (None, State.retired.value)]
    by_version = {v["spec"]["version"]: v for v in versions}
    if spec.get("version"):
        return kube.get(api, kinds.AGENT_VERSION, agent_namespace, naming.object_name(agent, spec["version"]))
    if spec.get("channel"):
        certified = [v for v, obj in by_version.items() if obj["status"]["state"] == spec["channel"]]
        chosen = semver.highest(certified)
    else:
        try:
            chosen = semver.highest(list(by_version), spec.get("versionRange"))
        except semver.InvalidVersion:
            return None
    return by_version.get(chosen) if chosen else None


def deployment(api: client.ApiClient, body: dict[str, Any], old: dict[str, Any] | None, userinfo: dict[str, Any],
               operation: str) -> dict[str, Any]:
    namespace = body["metadata"]["namespace"]
    agent_namespace, agent_name = body["spec"]["agent"].split("/", 1)
    version = resolve_version(api, body["spec"])
    previous = None
    if old is not None:
        previous = (old.get("status") or {}).get("resolvedVersion") or old["spec"].get("version")
    others = [d for d in kube.list_objects(api, kinds.AGENT_DEPLOYMENT, namespace)
              if d["metadata"]["name"] != body["metadata"]["name"]]
    return {
        "operation": operation, "user": user(userinfo), "object": body,
        "agent": kube.get(api, kinds.AGENT, agent_namespace, agent_name),
        "version": version,
        "versionChanged": version is None or previous != version["spec"]["version"],
        "tenant": tenant_of_namespace(api, namespace),
        "usage": {"deployments": len(others)},
    }


def status_write(body: dict[str, Any], old: dict[str, Any], userinfo: dict[str, Any], operator: str) -> dict[str, Any]:
    return {"user": user(userinfo), "operator": operator, "kind": body["kind"], "object": body, "oldObject": old}


def _digest(image: str) -> str | None:
    _, sep, digest = image.partition("@")
    return digest if sep and digest.startswith("sha256:") else None


def pod_images(spec: dict[str, Any]) -> list[str]:
    return [c["image"] for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or [] if c.get("image")]


def images(api: client.ApiClient, body: dict[str, Any], namespace: str, tenant: dict[str, Any]) -> dict[str, Any]:
    spec = body["spec"]["template"]["spec"] if body["kind"] == "Deployment" else body["spec"]
    by_digest: dict[str, list[dict[str, str]]] = {}
    for version in kube.list_objects(api, kinds.AGENT_VERSION):
        digest = _digest(version["spec"].get("image") or "")
        if digest:
            by_digest.setdefault(digest, []).append({
                "ref": f"{version['spec']['agent']}@{version['spec']['version']}",
                "state": (version.get("status") or {}).get("state") or "unaccepted"})
    found = []
    for image in pod_images(spec):
        digest = _digest(image)
        found.append({"image": image, "digest": digest, "versions": by_digest.get(digest, []) if digest else []})
    return {"kind": body["kind"], "name": body["metadata"].get("name") or body["metadata"].get("generateName", ""),
            "namespace": namespace, "tenant": tenant, "images": found}

