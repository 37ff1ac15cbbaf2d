"""One way to build an API client: in-cluster when there, else the kubeconfig as kubectl reads it."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException


class NoCluster(Exception):
    """No usable kubeconfig or in-cluster configuration; the message says what to pass."""


@dataclass(frozen=True)
class Connection:
    api: client.ApiClient
    namespace: str
    """The namespace to act in: the one asked for, else the kubeconfig context's, else ``default``."""


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def _from_kubeconfig(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    except (ConfigException, FileNotFoundError, TypeError) as error:
        raise NoCluster(f"no usable kubeconfig ({error}); pass --kubeconfig or set KUBECONFIG") from error
    return client.ApiClient(configuration)


def api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """A client for a server process: in-cluster unless a kubeconfig or context is named."""
    if kubeconfig is None and context is None and in_cluster():
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    return _from_kubeconfig(kubeconfig, context)


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Connection:
    """A client for a user's command: always the kubeconfig, with kubectl's namespace rules."""
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except (ConfigException, FileNotFoundError, TypeError) as error:
        raise NoCluster(f"no usable kubeconfig ({error}); pass --kubeconfig or set KUBECONFIG") from error
    chosen = next((c for c in contexts if c["name"] == context), None) if context else active
    if context and chosen is None:
        raise NoCluster(f"context {context!r} is not in the kubeconfig; see `kubectl config get-contexts`")
    default_namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return Connection(api=_from_kubeconfig(kubeconfig, context), namespace=namespace or default_namespace)


def request_kind(method: str, url: str) -> tuple[str, str]:
    """The API verb and resource of a request, as the API server's own metrics name them:
    ``("list", "agentversions")`` for ``GET /apis/registry.greenlang.ai/v1alpha1/namespaces/ns/agentversions``."""
    parsed = urllib.parse.urlsplit(url)
    parts = [p for p in parsed.path.split("/") if p]
    rest = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else []
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        rest = rest[2:]
    resource, named = (rest[0] if rest else ""), len(rest) > 1
    if method == "GET":
        verb = "get" if named else "watch" if "watch=true" in parsed.query.lower() else "list"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if named else "deletecollection"}.get(method, method.lower())
    return verb, resource


def count_requests(api: client.ApiClient, counted: Callable[[str, str], None]) -> None:
    """Tell ``counted(verb, resource)`` of every request ``api`` makes (a metric of the caller's)."""
    request = api.rest_client.request

    def counting(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        counted(*request_kind(method, url))
        return request(method, url, *args, **kwargs)

    api.rest_client.request = counting
