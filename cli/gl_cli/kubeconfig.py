"""Read kubeconfig the way kubectl does: --kubeconfig, --context, the context's namespace."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException


class NoCluster(Exception):
    pass


@dataclass
class Connection:
    api: client.ApiClient
    namespace: str


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Connection:
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        chosen = next((c for c in contexts if c["name"] == context), None) if context else active
        if context and chosen is None:
            raise NoCluster(f"context {context!r} is not in the kubeconfig; see `kubectl config get-contexts`")
        api = config.new_client_from_config(config_file=kubeconfig, context=context)
    except (ConfigException, FileNotFoundError, TypeError) as error:
        raise NoCluster(f"no usable kubeconfig ({error}); pass --kubeconfig or set KUBECONFIG") from error
    default_namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return Connection(api=api, namespace=namespace or default_namespace)
