"""Kubernetes Events for the operator's decisions (Normal or Warning, CamelCase reasons)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from gl_api import GROUP
from gl_api.conditions import timestamp
from gl_api.labels import OPERATOR_NAME

log = logging.getLogger(__name__)
NORMAL, WARNING = "Normal", "Warning"


def record(api: client.ApiClient, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
    """Post an Event about ``obj``; an Event that cannot be posted is logged, never fatal."""
    meta = obj["metadata"]
    namespace = meta.get("namespace") or "default"
    now = timestamp()
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": namespace},
        "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
                           "namespace": meta.get("namespace"), "uid": meta["uid"],
                           "resourceVersion": meta.get("resourceVersion")},
        "type": type_, "reason": reason, "message": message[:1024],
        "source": {"component": OPERATOR_NAME}, "reportingComponent": OPERATOR_NAME,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }
    log.info("event %s %s on %s/%s: %s", type_, reason, obj["kind"], meta["name"], message)
    try:
        client.CoreV1Api(api).create_namespaced_event(namespace, event)
    except ApiException as error:
        log.warning("could not post event %s on %s/%s: %s", reason, obj["kind"], meta["name"], error.reason)


def record_denial(api: client.ApiClient, obj: dict[str, Any], actor: str, message: str) -> None:
    """An Event about a refused request (the object may not exist), which the audit trail keeps."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    now = timestamp()
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{meta.get('name') or 'request'}.{uuid.uuid4().hex[:12]}", "namespace": namespace,
                     "annotations": {f"{GROUP}/actor": actor}},
        "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
                           "namespace": meta.get("namespace")},
        "type": WARNING, "reason": "AdmissionDenied", "message": message[:1024],
        "source": {"component": OPERATOR_NAME}, "reportingComponent": OPERATOR_NAME,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    }
    try:
        client.CoreV1Api(api).create_namespaced_event(namespace, event)
    except ApiException as error:
        log.warning("could not record the denial of %s/%s: %s", obj.get("kind"), meta.get("name"), error.reason)
