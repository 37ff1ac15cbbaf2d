"""Remember the bits of every AgentVersion the registry accepts, so agent@version never returns with others.

The record is one ConfigMap per agent, ``agentversion-digests.<namespace>.<agent>``, in the
registry's own namespace, where tenants cannot write: a tenant who deletes a version, its Agent or
its namespace erases nothing. Each entry is ``<AgentVersion name>: artifact=<digest> image=<ref>``.
Per agent, not per namespace: every entry makes the record's write (and the append-only check
of it) longer, and a ConfigMap holds 1 MiB, about 9,000 entries; a namespace of 10,000 versions
stalled accepting (`python -m bench memory`). Records of a whole namespace, written before,
are still read by the admission policy.
The API server reads these records (crds/admission_agentversion-releases.yaml) and refuses a
create whose bits differ, and keeps them append-only; the operator writes an entry before it
accepts the version, so every accepted version is on record.
"""

from __future__ import annotations

import threading
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from gl_kube import objects

# The admission policy's binding reads the records here (paramRef.namespace).
RECORD_NAMESPACE = "greenlang-system"
COMPONENT = "agentversion-digests"
_known: dict[tuple[str, str], str] = {}  # entries already on record: no API call for them again
_lock = threading.Lock()


def record_name(namespace: str, agent: str) -> str:
    return f"{COMPONENT}.{namespace}.{agent}"  # namespaces hold no dots: the first one ends it


def fingerprint(spec: dict[str, Any]) -> str:
    """The bits a version names, exactly as the admission policy spells them (its variable ``bits``)."""
    return f"artifact={(spec.get('artifact') or {}).get('digest') or ''} image={spec.get('image') or ''}"


def remember(api: client.ApiClient, version: dict[str, Any]) -> str | None:
    """Put this version's bits on record; the earlier bits when the record says otherwise, else None."""
    meta = version["metadata"]
    key, bits = (meta["namespace"], meta["name"]), fingerprint(version["spec"])
    with _lock:
        if key in _known:
            return None if _known[key] == bits else _known[key]
    record = record_name(meta["namespace"], version["spec"]["agent"])
    held = objects.retry_on_conflict(lambda: _record(client.CoreV1Api(api), record, meta["name"], bits))
    with _lock:  # the agent's whole record, so its other versions need no call either
        _known.update({(meta["namespace"], name): value for name, value in held.items()})
    return None if held[meta["name"]] == bits else held[meta["name"]]


def _record(core: client.CoreV1Api, record: str, name: str, bits: str) -> dict[str, str]:
    """The record once it holds an entry for ``name`` (the existing one, or ``bits``)."""
    try:
        found = core.read_namespaced_config_map(record, RECORD_NAMESPACE)
    except ApiException as error:
        if error.status != 404:
            raise
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(
            name=record, namespace=RECORD_NAMESPACE,
            labels={"app.kubernetes.io/name": "greenlang-registry", "app.kubernetes.io/part-of": "greenlang-registry",
                    "app.kubernetes.io/component": COMPONENT}), data={name: bits})
        try:
            core.create_namespaced_config_map(RECORD_NAMESPACE, body)
        except ApiException as race:
            if race.status == 409:  # created meanwhile: read it and decide again
                raise objects.Conflict(record) from race
            raise
        return {name: bits}
    data = found.data or {}
    if name in data:
        return data
    try:  # the resourceVersion makes the patch fail rather than add to a record changed since read
        core.patch_namespaced_config_map(record, RECORD_NAMESPACE, {
            "metadata": {"resourceVersion": found.metadata.resource_version}, "data": {name: bits}})
    except ApiException as error:
        if error.status == 409:
            raise objects.Conflict(record) from error
        raise
    return {**data, name: bits}
