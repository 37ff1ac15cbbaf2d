"""The ``input`` document of each decision, built from objects the caller has already gathered.

Pure: the webhook server fills these from its caches, ``gl agent check --offline`` from reads
with the user's own credentials; both then ask the same policies the same question. Each
function's fields are the ``input:`` line in its policy's METADATA.
"""

from __future__ import annotations

from typing import Any

from gl_policy import views


def user(userinfo: dict[str, Any]) -> dict[str, Any]:
    return {"username": userinfo.get("username", ""), "groups": list(userinfo.get("groups") or [])}


def is_member(member: dict[str, Any], who: dict[str, Any]) -> bool:
    return (member["kind"] == "User" and member["name"] == who["username"]) or \
        (member["kind"] == "Group" and member["name"] in who["groups"])


def publish(obj: dict[str, Any], userinfo: dict[str, Any], operation: str, agent: dict[str, Any] | None,
            tenants: list[dict[str, Any]]) -> dict[str, Any]:
    return {"operation": operation, "user": user(userinfo), "object": views.trimmed(obj), "agent": agent,
            "tenants": tenants}


def promotion(obj: dict[str, Any], userinfo: dict[str, Any], operation: str, version: dict[str, Any] | None,
              tenants: list[dict[str, Any]]) -> dict[str, Any]:
    return {"operation": operation, "user": user(userinfo), "object": views.trimmed(obj), "version": version,
            "tenants": tenants}


def approval(userinfo: dict[str, Any], requester: str, added: list[dict[str, Any]], may_approve: bool
             ) -> dict[str, Any]:
    return {"user": user(userinfo), "requester": requester, "added": added,
            "subjectAccessReview": {"allowed": may_approve}}


def deployment(obj: dict[str, Any], userinfo: dict[str, Any], operation: str, agent: dict[str, Any] | None,
               version: dict[str, Any] | None, previous_version: str | None, tenant: dict[str, Any] | None,
               other_deployments: int) -> dict[str, Any]:
    """``previous_version`` is the version the deployment ran before this update (None on create)."""
    return {
        "operation": operation, "user": user(userinfo), "object": views.trimmed(obj), "agent": agent,
        "version": version,
        "versionChanged": version is None or previous_version != version["spec"]["version"],
        "tenant": tenant, "usage": {"deployments": other_deployments},
    }


def status_write(obj: dict[str, Any], old: dict[str, Any], userinfo: dict[str, Any], operator: str
                 ) -> dict[str, Any]:
    return {"user": user(userinfo), "operator": operator, "kind": obj["kind"], "object": views.trimmed(obj),
            "oldObject": views.trimmed(old)}


def pod_images(spec: dict[str, Any]) -> list[str]:
    return [c["image"] for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or [] if c.get("image")]


def images(obj: dict[str, Any], namespace: str, tenant: dict[str, Any],
           versions_by_digest: dict[str, list[views.Version]]) -> dict[str, Any]:
    """A Pod's or Deployment's images, each with the AgentVersions its digest belongs to."""
    spec = obj["spec"]["template"]["spec"] if obj["kind"] == "Deployment" else obj["spec"]
    found = []
    for image in pod_images(spec):
        digest = views.image_digest(image)
        found.append({"image": image, "digest": digest, "versions": [
            {"ref": v.ref, "state": v.state or "unaccepted"} for v in versions_by_digest.get(digest or "", [])]})
    meta = obj["metadata"]
    return {"kind": obj["kind"], "name": meta.get("name") or meta.get("generateName", ""), "namespace": namespace,
            "tenant": tenant, "images": found}
