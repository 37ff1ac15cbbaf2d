"""Kubernetes Events for decisions (Normal or Warning, CamelCase reasons), posted by any component.

An Event that cannot be posted is logged, never fatal: the decision it reports stands.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from gl_api import GROUP
from gl_api.conditions import timestamp
from gl_api.labels import AUDIT, OPERATOR_NAME

log = logging.getLogger(__name__)
NORMAL, WARNING = "Normal", "Warning"
ADMISSION_DENIED = "AdmissionDenied"
# Decisions the audit trail keeps besides denials: the runtime rolling a version back on an SLO breach.
ROLLED_BACK = "RolledBack"
ACTOR_ANNOTATION = f"{GROUP}/actor"
# Labelled as audit records: the API server admits them only from the registry's own components.
AUDITED = (ADMISSION_DENIED, ROLLED_BACK)


def _event(obj: dict[str, Any], type_: str, reason: str, message: str, component: str,
           annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    now = timestamp()
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta.get('name') or 'request'}.{uuid.uuid4().hex[:12]}",
                     "namespace": meta.get("namespace") or "default",
                     **({"labels": {AUDIT: "true"}} if reason in AUDITED else {}),
                     **({"annotations": annotations} if annotations else {})},
        "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
                           "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                           "resourceVersion": meta.get("resourceVersion")},
        "type": type_, "reason": reason, "message": message[:1024],
        "source": {"component": component}, "reportingComponent": component,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }


def _post(api: client.ApiClient, event: dict[str, Any]) -> None:
    try:
        client.CoreV1Api(api).create_namespaced_event(event["metadata"]["namespace"], event)
    except ApiException as error:
        involved = event["involvedObject"]
        log.warning("could not post event %s on %s/%s: %s", event["reason"], involved["kind"], involved["name"],
                    error.reason)


def record(api: client.ApiClient, obj: dict[str, Any], type_: str, reason: str, message: str,
           component: str = OPERATOR_NAME) -> None:
    """Post an Event about ``obj``."""
    log.info("event %s %s on %s/%s: %s", type_, reason, obj.get("kind"), obj["metadata"]["name"], message)
    _post(api, _event(obj, type_, reason, message, component))


def record_denial(api: client.ApiClient, obj: dict[str, Any], actor: str, message: str, component: str) -> None:
    """An Event about a refused request (the object may not exist), which the audit trail keeps."""
    _post(api, _event(obj, WARNING, ADMISSION_DENIED, message, component, {ACTOR_ANNOTATION: actor}))
