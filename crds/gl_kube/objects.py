"""Read and write the registry's kinds through the official client: one set of calls for everyone.

The operator calls these from kopf's sync handlers (kopf runs them in worker threads), the CLI
with the user's own credentials, the webhooks only on a cache miss. Errors stay
``ApiException`` (callers word them with ``explain``), except a lost optimistic-concurrency
race, which is ``Conflict``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

from gl_api import GROUP, VERSION, kinds

T = TypeVar("T")
PAGE = 500  # list in pages, so a list of 100,000 objects never sits in memory at once


class Conflict(Exception):
    """The object changed since it was read (HTTP 409); re-read and decide again."""


def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def explain(error: ApiException) -> str:
    """The API server's own message for a failed request, as kubectl would print it."""
    try:
        message = json.loads(error.body or "{}").get("message") or error.reason
    except ValueError:
        message = error.body or error.reason
    return f"not found: {message}" if error.status == 404 else str(message)


def namespace_gone(error: ApiException) -> bool:
    """Whether the API server refused because the request's namespace does not exist (404 naming
    ``namespaces``): writes to objects a namespace deletion left behind get this, not the object's 404."""
    if error.status != 404:
        return False
    try:
        details = json.loads(error.body or "{}").get("details") or {}
    except ValueError:
        return False
    return details.get("kind") == "namespaces"


def get(api: client.ApiClient, kind: kinds.Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    try:
        if kind.namespaced:
            return custom(api).get_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name)
        return custom(api).get_cluster_custom_object(GROUP, VERSION, kind.plural, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def pages(api: client.ApiClient, kind: kinds.Kind, namespace: str | None = None, *,
          label_selector: str | None = None, field_selector: str | None = None,
          resume_expired: bool = False) -> Iterator[dict[str, Any]]:
    """Each page of a list (``items`` plus ``metadata.resourceVersion``), ``PAGE`` objects at a time.

    A list read more slowly than etcd compacts (every 5 minutes by default) loses its continue
    token: the next page is 410 Expired. With ``resume_expired`` it carries on with the token the
    API server offers then, giving up one consistent snapshot (objects changed meanwhile may show
    as they are now): right for a pass that checks each object on its own, wrong for a cache.
    """
    extra = {k: v for k, v in (("label_selector", label_selector), ("field_selector", field_selector)) if v}
    token = None
    while True:
        try:
            if namespace and kind.namespaced:
                page = custom(api).list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, limit=PAGE,
                                                                 _continue=token, **extra)
            else:
                page = custom(api).list_cluster_custom_object(GROUP, VERSION, kind.plural, limit=PAGE,
                                                              _continue=token, **extra)
        except ApiException as error:
            token = _continuation(error) if resume_expired and token else None
            if not token:
                raise
            continue
        yield page
        token = page["metadata"].get("continue")
        if not token:
            return


def _continuation(error: ApiException) -> str | None:
    """The token to carry on with after 410 Expired, when the API server offers one."""
    if error.status != 410:
        return None
    try:
        status = json.loads(error.body or "")
    except ValueError:
        return None
    return (status.get("metadata") or {}).get("continue") if status.get("reason") == "Expired" else None


def list_objects(api: client.ApiClient, kind: kinds.Kind, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None) -> list[dict[str, Any]]:
    """Every object of ``kind`` (in ``namespace``, or everywhere) matching the selectors."""
    return [item for page in pages(api, kind, namespace, label_selector=label_selector,
                                   field_selector=field_selector) for item in page["items"]]


def create(api: client.ApiClient, kind: kinds.Kind, namespace: str | None, body: dict[str, Any], *,
           dry_run: bool = False) -> dict[str, Any]:
    extra = {"dry_run": "All"} if dry_run else {}
    if kind.namespaced:
        return custom(api).create_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, body, **extra)
    return custom(api).create_cluster_custom_object(GROUP, VERSION, kind.plural, body, **extra)


def patch_status(api: client.ApiClient, kind: kinds.Kind, obj: dict[str, Any], status: dict[str, Any],
                 *, guard: bool = False, missing_ok: bool = False) -> dict[str, Any] | None:
    """Merge-patch ``status``; with ``guard`` only if the object is unchanged since read (else Conflict).

    ``missing_ok`` is for reconcilers of one object that write another's status: that one may be
    deleted between their read and this write, and then there is nothing left to record (None).
    """
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
        if error.status == 404 and missing_ok:
            return None
        raise


def patch_labels(api: client.ApiClient, kind: kinds.Kind, obj: dict[str, Any], labels: dict[str, str]) -> None:
    meta = obj["metadata"]
    body = {"metadata": {"labels": labels}}
    if kind.namespaced:
        custom(api).patch_namespaced_custom_object(GROUP, VERSION, meta["namespace"], kind.plural, meta["name"], body)
    else:
        custom(api).patch_cluster_custom_object(GROUP, VERSION, kind.plural, meta["name"], body)


def patch_json(api: client.ApiClient, kind: kinds.Kind, namespace: str, name: str,
               operations: list[dict[str, Any]]) -> None:
    """A JSON patch (RFC 6902), e.g. appending to a list without replacing it."""
    api.call_api(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{kind.plural}/{name}", "PATCH",
                 header_params={"Content-Type": "application/json-patch+json", "Accept": "application/json"},
                 body=operations, auth_settings=["BearerToken"], _preload_content=False)


def whoami(api: client.ApiClient) -> dict[str, Any]:
    """The user the API server authenticates these credentials as (a SelfSubjectReview)."""
    review = client.AuthenticationV1Api(api).create_self_subject_review(
        client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"))
    info = review.status.user_info
    return {"username": info.username, "groups": info.groups or []}


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
