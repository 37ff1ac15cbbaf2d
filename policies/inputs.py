"""The ``input`` document of each decision, built from objects the caller has already gathered.

Pure: the webhook server fills these from its caches, ``gl agent check --offline`` from reads
with the user's own credentials; both then ask the same policies the same question. Each
function's fields are the ``input:`` line in its policy's METADATA.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gl_api import naming
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
               other_deployments: int, agent_tenant: str | None = None) -> dict[str, Any]:
    """``previous_version`` is the version the deployment ran before this update (None on create);
    ``agent_tenant`` the TenantPolicy that owns the Agent's namespace, if one does."""
    return {
        "operation": operation, "user": user(userinfo), "object": views.trimmed(obj), "agent": agent,
        "version": version,
        "versionChanged": version is None or previous_version != version["spec"]["version"],
        "tenant": tenant, "usage": {"deployments": other_deployments}, "agentTenant": agent_tenant,
    }


def claimed_namespaces(tenant: dict[str, Any]) -> dict[str, str]:
    """Every namespace a TenantPolicy claims, with the field that claims it."""
    spec = tenant.get("spec") or {}
    fields = {ns: "spec.teamNamespaces" for ns in spec.get("teamNamespaces") or []}
    fields.update({env["namespace"]: "spec.environments" for env in spec.get("environments") or []
                   if env.get("namespace")})
    return fields


def tenancy(tenant: dict[str, Any], namespaces: dict[str, dict[str, Any] | None], claimed_by: dict[str, str]
            ) -> dict[str, Any]:
    """``namespaces``: the claimed namespaces that exist (None or absent: they do not); ``claimed_by``:
    claimed namespaces another TenantPolicy already lists, with its name."""
    name, fields = tenant["metadata"]["name"], claimed_namespaces(tenant)
    return {"tenant": name, "claims": sorted(fields), "fields": fields,
            "reserved": {"names": list(naming.RESERVED_NAMESPACES), "prefixes": list(naming.RESERVED_NAMESPACE_PREFIXES)},
            "namespaces": {ns: views.namespace(obj) for ns, obj in namespaces.items() if obj is not None},
            "claimedBy": {ns: other for ns, other in claimed_by.items() if other != name}}


def status_write(obj: dict[str, Any], old: dict[str, Any], userinfo: dict[str, Any], operator: str
                 ) -> dict[str, Any]:
    return {"user": user(userinfo), "operator": operator, "kind": obj["kind"], "object": views.trimmed(obj),
            "oldObject": views.trimmed(old)}


RUNTIME_ARTIFACT_ENV = "GL_ARTIFACT_DIGEST"
"""The variable naming the artifact the registry's agent runtime loads (and verifies) instead of an image's code."""


def pod_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container of a pod spec that names an image: init, regular and ephemeral."""
    return [c for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or [] if c.get("image")]


def pod_images(spec: dict[str, Any]) -> list[str]:
    return [c["image"] for c in pod_containers(spec)]


def artifact_digest(container: dict[str, Any]) -> str | None:
    """The container's ``GL_ARTIFACT_DIGEST`` when it is a literal value, else None.

    The last definition wins, as in Kubernetes; a value from ``valueFrom`` or ``envFrom`` (a Secret
    or ConfigMap the request does not show) or one that expands ``$(VAR)`` cannot be checked.
    """
    value = None
    for var in container.get("env") or []:
        if var.get("name") == RUNTIME_ARTIFACT_ENV:
            value = None if var.get("valueFrom") is not None else var.get("value")
    return value if value and "$(" not in value else None


RUNTIME_OVERRIDES = ("command", "args", "workingDir")
"""Container fields that would make the runtime image run something other than the runtime on its artifact."""
LOADER_ENV_PREFIXES = ("LD_", "PYTHON")
"""Variables that change what the interpreter loads (the image runs Python isolated, -I, but the
dynamic loader reads LD_* before Python starts)."""
SCRATCH = "/tmp"
SERVICE_ACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def _service_account_volume(volume: dict[str, Any]) -> bool:
    """The token volume the API server's ServiceAccount admission adds: a token, the cluster CA, the namespace."""
    sources = (volume.get("projected") or {}).get("sources")
    return bool(sources) and all(
        "serviceAccountToken" in source or "downwardAPI" in source
        or (source.get("configMap") or {}).get("name") == "kube-root-ca.crt" for source in sources)


def runtime_overrides(container: dict[str, Any], volumes: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """What in this container would run other code than the runtime on its verified artifact.

    Besides command, args and workingDir: envFrom (its variables cannot be seen here), loader
    variables given literally, and any mount but an
    emptyDir under /tmp or the ServiceAccount token volume (a ConfigMap, Secret or host path could
    replace the runtime's code or hold a library to preload).
    """
    found = [name for name in RUNTIME_OVERRIDES if container.get(name)]
    if container.get("envFrom"):
        found.append("envFrom")  # variables the request does not show (LD_PRELOAD from a Secret)
    found += [f"env {var['name']}" for var in container.get("env") or []
              if str(var.get("name", "")).startswith(LOADER_ENV_PREFIXES)]
    for mount in container.get("volumeMounts") or []:
        path, volume = str(mount.get("mountPath", "")), (volumes or {}).get(mount.get("name"), {})
        scratch = (path == SCRATCH or path.startswith(SCRATCH + "/")) and "emptyDir" in volume
        token = path == SERVICE_ACCOUNT_PATH and _service_account_volume(volume)
        if not (scratch or token):
            found.append(f"volumeMounts {path}")
    return found


def runtime_artifact_digests(spec: dict[str, Any], runtime_digests: Iterable[str]) -> set[str]:
    """The literal artifact digests of the containers running a runtime image (what to look up)."""
    runtime = set(runtime_digests)
    return {d for c in pod_containers(spec) if views.image_digest(c["image"]) in runtime
            for d in [artifact_digest(c)] if d}


def _versions(found: list[views.Version]) -> list[dict[str, Any]]:
    return [{"ref": v.ref, "state": v.state or "unaccepted"} for v in found]


def images(obj: dict[str, Any], namespace: str, tenant: dict[str, Any],
           versions_by_digest: dict[str, list[views.Version]], runtime_digests: Iterable[str] = (),
           versions_by_artifact: dict[str, list[views.Version]] | None = None) -> dict[str, Any]:
    """A Pod's or Deployment's images, each with the AgentVersions its digest belongs to.

    A container running one of the registry's runtime images (``runtime_digests``) is judged by the
    artifact it loads instead: its entry says ``runtime: true``, the literal ``GL_ARTIFACT_DIGEST``
    (``artifact``, None when absent or not checkable), what the container changes that would run
    other code (``overrides``, see :func:`runtime_overrides`) and the AgentVersions of that artifact.
    """
    spec = obj["spec"]["template"]["spec"] if obj["kind"] == "Deployment" else obj["spec"]
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    runtime = set(runtime_digests)
    by_artifact = versions_by_artifact or {}
    found = []
    for container in pod_containers(spec):
        image = container["image"]
        digest = views.image_digest(image)
        if digest is not None and digest in runtime:
            artifact = artifact_digest(container)
            found.append({"image": image, "digest": digest, "runtime": True, "artifact": artifact,
                          "overrides": runtime_overrides(container, volumes),
                          "versions": _versions(by_artifact.get(artifact, []) if artifact else [])})
        else:
            found.append({"image": image, "digest": digest,
                          "versions": _versions(versions_by_digest.get(digest or "", []))})
    meta = obj["metadata"]
    return {"kind": obj["kind"], "name": meta.get("name") or meta.get("generateName", ""), "namespace": namespace,
            "tenant": tenant, "images": found}
