"""Thin helpers over the official kubernetes client for the registry's custom resources.

The operator uses the synchronous official client from kopf's sync handlers (kopf runs
them in worker threads): one client everywhere, the same one the CLI and tests use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

from gl_api import GROUP, VERSION, kinds

T = TypeVar("T")


class Conflict(Exception):
    """The object changed since it was read (HTTP 409); re-read and decide again."""


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def get(api: client.ApiClient, kind: kinds.Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
    try:
        if kind.namespaced:
            return custom(api).get_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name)
        return custom(api).get_cluster_custom_object(GROUP, VERSION, kind.plural, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def list_objects(api: client.ApiClient, kind: kinds.Kind, namespace: str | None = None,
                 field_selector: str | None = None) -> list[dict[str, Any]]:
    extra = {"field_selector": field_selector} if field_selector else {}
    if namespace:
        result = custom(api).list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, **extra)
    else:
        result = custom(api).list_cluster_custom_object(GROUP, VERSION, kind.plural, **extra)
    return result["items"]


def patch_status(api: client.ApiClient, kind: kinds.Kind, obj: dict[str, Any], status: dict[str, Any],
                 *, guard: bool = False) -> dict[str, Any]:
    """Merge-patch ``status``; with ``guard`` only if the object is unchanged since read (else Conflict)."""
    body: dict[str, Any] = {"status": status}
    if guard:
        body["metadata"] = {"resourceVersion": obj["metadata"]["resourceVersion"]}
    meta = obj["metadata"]
    try:
        if kind.namespaced:
            return custom(api).patch_namespaced_custom_object_status(
                GROUP, VERSION, meta["namespace"], kind.plural, meta["name"], body)
        return custom(api).patch_cluster_custom_object_status(GROUP, VERSION, kind.plural, meta["name"], body)
    except ApiException as error:
        if error.status == 409:
            raise Conflict(f"{kind.kind} {meta['name']} changed concurrently") from error
        raise


def patch_labels(api: client.ApiClient, kind: kinds.Kind, obj: dict[str, Any], labels: dict[str, str]) -> None:
    meta = obj["metadata"]
    body = {"metadata": {"labels": labels}}
    if kind.namespaced:
        custom(api).patch_namespaced_custom_object(GROUP, VERSION, meta["namespace"], kind.plural, meta["name"], body)
    else:
        custom(api).patch_cluster_custom_object(GROUP, VERSION, kind.plural, meta["name"], body)


def retry_on_conflict(attempt: Callable[[], T], attempts: int = 8, delay: float = 0.1) -> T:
    """Run ``attempt`` (which must re-read what it decides on) until it stops conflicting."""
    for number in range(attempts):
        try:
            return attempt()
        except Conflict:
            if number == attempts - 1:
                raise
            time.sleep(delay * (2 ** number))
    raise AssertionError("unreachable")
