"""One way to build an API client: in-cluster when there, else the kubeconfig as kubectl reads it."""

from __future__ import annotations

import os
from dataclasses import dataclass

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
