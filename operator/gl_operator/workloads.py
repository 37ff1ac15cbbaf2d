"""The Kubernetes objects an AgentDeployment runs as, built from plain dicts (pure: no API calls).

Names (fixed contract): Service ``<glad>`` (port 80 to the pods' ``http``); RollingUpdate runs one
Deployment ``<glad>``, BlueGreen and Canary one Deployment per version ``<glad>-<version>`` (dots
and ``+`` as dashes, shortened with a hash beyond 63 characters); ServiceAccount ``<glad>``
without an API token; Secret ``<glad>-artifact-store`` with the operator's artifact-store
settings; HorizontalPodAutoscaler, PodDisruptionBudget and NetworkPolicy ``<glad>``. BlueGreen
adds ``<glad>-preview`` while a new version waits for its switch, so it can be tried (and
measured) before it takes traffic. Canary, where the cluster serves Gateway API HTTPRoutes, adds
Services ``<glad>-stable`` and ``<glad>-canary`` (one version each) and an HTTPRoute ``<glad>``
weighting them. Everything is owned by the AgentDeployment (controller) and
labelled with the recommended ``app.kubernetes.io/*`` labels and the registry's own.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from collections.abc import Mapping
from typing import Any

from gl_api import kinds, labels

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = "v1"

NAME_MAX = 63
ARTIFACT_STORE_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "GL_S3_ENDPOINT")
DEFAULT_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
DEFAULT_PORT = 8080
RUNAS = 65532
CONTAINER = "agent"
# Namespaces whose pods may reach an agent besides its own namespace: the registry's runtime and monitoring.
INGRESS_NAMESPACES = ("greenlang-system", "monitoring")


def short_name(name: str, limit: int = NAME_MAX) -> str:
    """``name`` if it fits, else its head and a hash of the whole, still a DNS label."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[:limit - 11].rstrip('-')}-{digest}"


def version_slug(version: str) -> str:
    return version.replace(".", "-").replace("+", "-")


def deployment_name(glad_name: str, version: str | None = None) -> str:
    """``<glad>`` (RollingUpdate, version None) or ``<glad>-<version>`` (BlueGreen, Canary)."""
    return glad_name if version is None else short_name(f"{glad_name}-{version_slug(version)}")


def preview_name(glad_name: str) -> str:
    return short_name(f"{glad_name}-preview")


def stable_service_name(glad_name: str) -> str:
    return short_name(f"{glad_name}-stable")


def canary_service_name(glad_name: str) -> str:
    return short_name(f"{glad_name}-canary")


def secret_name(glad_name: str) -> str:
    return short_name(f"{glad_name}-artifact-store")


def agent_name(glad: Mapping[str, Any]) -> str:
    return str(glad["spec"]["agent"]).split("/", 1)[1]


def common_labels(glad: Mapping[str, Any], version: str | None = None) -> dict[str, str]:
    name, agent = glad["metadata"]["name"], agent_name(glad)
    result = {
        labels.NAME: agent, labels.INSTANCE: name, labels.COMPONENT: "agent", labels.PART_OF: labels.PART_OF_VALUE,
        labels.MANAGED_BY: labels.MANAGED_BY_VALUE, labels.AGENT: agent, labels.DEPLOYMENT: name,
    }
    if version:
        result[labels.APP_VERSION] = version
        result[labels.VERSION] = version
    return result


def owner_references(glad: Mapping[str, Any]) -> list[dict[str, Any]]:
    meta = glad["metadata"]
    return [{"apiVersion": kinds.AGENT_DEPLOYMENT.api_version, "kind": kinds.AGENT_DEPLOYMENT.kind,
             "name": meta["name"], "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]


def _meta(glad: Mapping[str, Any], name: str, version: str | None = None,
          annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": glad["metadata"]["namespace"],
                            "labels": common_labels(glad, version), "ownerReferences": owner_references(glad)}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def pod_selector(glad: Mapping[str, Any], version: str | None = None) -> dict[str, str]:
    """Every pod of the AgentDeployment, or of one version of it."""
    result = {labels.DEPLOYMENT: glad["metadata"]["name"]}
    if version:
        result[labels.VERSION] = version
    return result


def _has_quantities(section: Mapping[str, Any] | None) -> bool:
    return bool(section) and any(v is not None for v in section.values())  # type: ignore[union-attr]


def resources(glad_spec: Mapping[str, Any], version_spec: Mapping[str, Any]) -> dict[str, Any]:
    """spec.resources, else the version's runtime.resources, else 50m/64Mi requested and 256Mi at most.

    The tenant's ResourceQuota admits only pods that request cpu and memory: whatever the source
    leaves out of the requests is taken from the defaults; a missing memory limit is the request.
    """
    source = glad_spec.get("resources") or (version_spec.get("runtime") or {}).get("resources") or {}
    if not (_has_quantities(source.get("requests")) or _has_quantities(source.get("limits"))):
        source = DEFAULT_RESOURCES
    result: dict[str, Any] = {}
    for section in ("requests", "limits"):
        values = {k: str(v) for k, v in (source.get(section) or {}).items() if v is not None}
        if values:
            result[section] = values
    limits = result.get("limits", {})
    requests = result.setdefault("requests", {})
    for key in ("cpu", "memory"):
        # Kubernetes takes a missing request from the limit; the quota needs one either way.
        if key not in requests and key not in limits:
            requests[key] = DEFAULT_RESOURCES["requests"][key]
    if "memory" not in limits:
        # A namespace's LimitRange default could be below the request; the request itself never is.
        result.setdefault("limits", {})["memory"] = requests["memory"]
    return result


def port(version_spec: Mapping[str, Any]) -> int:
    return int((version_spec.get("runtime") or {}).get("port") or DEFAULT_PORT)


def image(version_spec: Mapping[str, Any], runtime_image: str | None) -> str | None:
    return version_spec.get("image") or runtime_image or None


def pod_template(glad: Mapping[str, Any], version_obj: Mapping[str, Any], runtime_image: str | None,
                 placement: Mapping[str, Any] | None = None) -> dict[str, Any]:
    spec = version_obj["spec"]
    version = spec["version"]
    agent_ref = f"{version_obj['metadata']['namespace']}/{spec['agent']}"
    artifact = spec.get("artifact") or {}
    serve_port = port(spec)
    name = glad["metadata"]["name"]
    container = {
        "name": CONTAINER, "image": image(spec, runtime_image), "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": serve_port, "protocol": "TCP"}],
        "env": [{"name": "GL_AGENT", "value": agent_ref}, {"name": "GL_AGENT_VERSION", "value": version},
                {"name": "GL_ARTIFACT_URI", "value": artifact.get("uri", "")},
                {"name": "GL_ARTIFACT_DIGEST", "value": artifact.get("digest", "")},
                {"name": "GL_PORT", "value": str(serve_port)},
                # Key by key, not envFrom: the image guard can then see that nothing else is set.
                *({"name": key, "valueFrom": {"secretKeyRef": {"name": secret_name(name), "key": key,
                                                                "optional": True}}}
                  for key in ARTIFACT_STORE_KEYS)],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 10,
                          "periodSeconds": 10, "failureThreshold": 3},
        "resources": resources(glad["spec"], spec),
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "metadata": {"labels": common_labels(glad, version),
                     "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(serve_port),
                                     "prometheus.io/path": "/metrics"}},
        "spec": {
            "serviceAccountName": name, "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 30,
            "securityContext": {"runAsNonRoot": True, "runAsUser": RUNAS, "runAsGroup": RUNAS, "fsGroup": RUNAS,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            **(placement or {}),
        },
    }


def deployment(glad: Mapping[str, Any], version_obj: Mapping[str, Any], name: str, replicas: int | None, *,
               per_version: bool, runtime_image: str | None, history: list[str] | None = None,
               placement: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One Deployment running ``version_obj``; ``replicas`` None leaves the count to the autoscaler.

    ``per_version`` (BlueGreen, Canary) selects the version's pods only; RollingUpdate's one
    Deployment selects every pod of the AgentDeployment, so a new version rolls over the old.
    ``history`` (earlier stable versions, newest first) is kept as an annotation: the versions
    an SLO breach rolls back to.
    """
    version = version_obj["spec"]["version"]
    annotations = {labels.STABLE_HISTORY: ",".join(history)} if history else None
    spec: dict[str, Any] = {
        "selector": {"matchLabels": pod_selector(glad, version if per_version else None)},
        "revisionHistoryLimit": 3, "progressDeadlineSeconds": 600,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": pod_template(glad, version_obj, runtime_image, placement),
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(glad, name, version, annotations),
            "spec": spec}


def service(glad: Mapping[str, Any], version: str | None = None, name: str | None = None) -> dict[str, Any]:
    """The agent's Service: every pod (RollingUpdate, Canary) or one version's (BlueGreen)."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(glad, name or glad["metadata"]["name"]),
            "spec": {"type": "ClusterIP", "selector": pod_selector(glad, version),
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}


def preview_service(glad: Mapping[str, Any], version: str) -> dict[str, Any]:
    return service(glad, version, preview_name(glad["metadata"]["name"]))


def split_services(glad: Mapping[str, Any], stable: str, canary: str | None) -> list[dict[str, Any]]:
    """``<glad>-stable`` and ``<glad>-canary``, the HTTPRoute's backends, each selecting one version.

    Without a canary both select the stable version: the canary backend (weight 0) is never a
    Service without endpoints, and a promotion changes no backend's pods at the moment it happens.
    """
    name = glad["metadata"]["name"]
    return [service(glad, stable, stable_service_name(name)), service(glad, canary or stable, canary_service_name(name))]


def http_route(glad: Mapping[str, Any], canary_weight: int,
               parents: list[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """HTTPRoute ``<glad>``: one rule sending ``100 - canary_weight`` % to ``<glad>-stable`` and
    ``canary_weight`` % to ``<glad>-canary``. Without ``parents`` it has no parentRefs (attaches to
    no Gateway; the field is left to whoever sets it with another field manager)."""
    name = glad["metadata"]["name"]
    weight = max(0, min(100, int(canary_weight)))
    backends = [{"group": "", "kind": "Service", "name": stable_service_name(name), "port": 80, "weight": 100 - weight},
                {"group": "", "kind": "Service", "name": canary_service_name(name), "port": 80, "weight": weight}]
    spec: dict[str, Any] = {"rules": [{"backendRefs": backends}]}
    if parents:
        spec["parentRefs"] = [dict(parent) for parent in parents]
    return {"apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}", "kind": "HTTPRoute", "metadata": _meta(glad, name),
            "spec": spec}


def service_account(glad: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(glad, glad["metadata"]["name"]),
            "automountServiceAccountToken": False}


def artifact_secret(glad: Mapping[str, Any], environment: Mapping[str, str]) -> dict[str, Any]:
    """The operator's own artifact-store settings (those it has), for the pods' environment."""
    data = {key: base64.b64encode(environment[key].encode()).decode()
            for key in ARTIFACT_STORE_KEYS if environment.get(key)}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _meta(glad, secret_name(glad["metadata"]["name"])), "data": data}


def autoscaler(glad: Mapping[str, Any], target: str) -> dict[str, Any] | None:
    """autoscaling/v2 between spec.autoscaling's bounds on the Deployment serving, or None."""
    scaling = glad["spec"].get("autoscaling")
    if not scaling:
        return None
    metrics = []
    if scaling.get("targetCpuUtilization"):
        metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": scaling["targetCpuUtilization"]}}})
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicas": max(1, scaling.get("minReplicas", 1)), "maxReplicas": scaling["maxReplicas"],
    }
    if metrics:
        spec["metrics"] = metrics
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(glad, glad["metadata"]["name"]), "spec": spec}


def disruption_budget(glad: Mapping[str, Any]) -> dict[str, Any]:
    """At most one pod of the agent down at a time for voluntary disruptions (drains)."""
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(glad, glad["metadata"]["name"]),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": pod_selector(glad)}}}


def _endpoint_port(endpoint: str | None) -> int | None:
    if not endpoint:
        return None
    parsed = urllib.parse.urlsplit(endpoint if "//" in endpoint else f"//{endpoint}")
    return parsed.port or (443 if parsed.scheme == "https" else 80)


def network_policy(glad: Mapping[str, Any], serve_port: int, s3_endpoint: str | None) -> dict[str, Any]:
    """Ingress to the agent's port from its namespace, the registry's runtime and monitoring; egress to
    DNS and the artifact store (the tenant's default-deny policy refuses the rest)."""
    ingress_from = [{"podSelector": {}},
                    {"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                                 "operator": "In",
                                                                 "values": list(INGRESS_NAMESPACES)}]}}]
    egress = [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
               "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]
    store_port = _endpoint_port(s3_endpoint) or 443
    egress.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": store_port}]})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(glad, glad["metadata"]["name"]),
            "spec": {"podSelector": {"matchLabels": pod_selector(glad)}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": ingress_from, "ports": [{"protocol": "TCP", "port": serve_port}]}],
                     "egress": egress}}
