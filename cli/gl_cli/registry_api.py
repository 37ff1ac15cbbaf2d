"""The registry as the CLI sees it: Kubernetes objects and the mirror's aggregated query API.

Every call goes through the API server with the user's own credentials: no status writes, no
bypass of admission.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from gl_api import GROUP, VERSION, kinds

QUERY = "/apis/search.registry.greenlang.ai/v1alpha1"


class RegistryError(Exception):
    """A failed request, worded for the user (the API server's own message included)."""


def explain(error: ApiException) -> str:
    try:
        message = json.loads(error.body or "{}").get("message") or error.reason
    except ValueError:
        message = error.body or error.reason
    if error.status == 404:
        return f"not found: {message}"
    return str(message)


class Registry:
    def __init__(self, api: client.ApiClient):
        self.api = api
        self.custom = client.CustomObjectsApi(api)

    def get(self, kind: kinds.Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            if kind.namespaced:
                return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name)
            return self.custom.get_cluster_custom_object(GROUP, VERSION, kind.plural, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise RegistryError(explain(error)) from error

    def list(self, kind: kinds.Kind, namespace: str | None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict[str, Any]]:
        extra = {k: v for k, v in (("label_selector", label_selector), ("field_selector", field_selector)) if v}
        try:
            if kind.namespaced and namespace:
                result = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, **extra)
            else:
                result = self.custom.list_cluster_custom_object(GROUP, VERSION, kind.plural, **extra)
        except ApiException as error:
            raise RegistryError(explain(error)) from error
        return result["items"]

    def create(self, kind: kinds.Kind, namespace: str | None, body: dict[str, Any], dry_run: bool = False
               ) -> dict[str, Any]:
        extra = {"dry_run": "All"} if dry_run else {}
        try:
            if kind.namespaced:
                return self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, body,
                                                                   **extra)
            return self.custom.create_cluster_custom_object(GROUP, VERSION, kind.plural, body, **extra)
        except ApiException as error:
            raise RegistryError(explain(error)) from error

    def patch_json(self, kind: kinds.Kind, namespace: str, name: str, operations: list[dict[str, Any]]) -> None:
        try:
            self.api.call_api(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{kind.plural}/{name}", "PATCH",
                              header_params={"Content-Type": "application/json-patch+json",
                                             "Accept": "application/json"},
                              body=operations, auth_settings=["BearerToken"], _preload_content=False)
        except ApiException as error:
            raise RegistryError(explain(error)) from error

    def whoami(self) -> dict[str, Any]:
        review = client.AuthenticationV1Api(self.api).create_self_subject_review(
            client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"))
        info = review.status.user_info
        return {"username": info.username, "groups": info.groups or []}

    def query(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET on the mirror's aggregated API, e.g. ``agentsearches`` or ``auditevents``."""
        query = [(k, str(v)) for k, v in params.items() if v not in (None, "")]
        try:
            response = self.api.call_api(f"{QUERY}/{path}", "GET", query_params=query,
                                         header_params={"Accept": "application/json"},
                                         auth_settings=["BearerToken"], _preload_content=False)
        except ApiException as error:
            if error.status == 503 or (error.status == 404 and "the server could not find" in (error.body or "")):
                raise RegistryError("the registry's search and audit API is not available: is the mirror running? "
                                    f"({explain(error)})") from error
            raise RegistryError(explain(error)) from error
        raw = response[0] if isinstance(response, tuple) else response  # the client's shape varies by version
        return json.loads(raw.data)
