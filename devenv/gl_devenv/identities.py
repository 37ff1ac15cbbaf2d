"""Who the registry's own components are on a cluster: the chart's ServiceAccounts, with its roles.

Each component (operator, webhooks, mirror) runs as the ServiceAccount
``greenlang-system/greenlang-registry-<component>``, bound to exactly the roles in
``crds/rbac_<component>.yaml`` (a ClusterRoleBinding for the ClusterRole, a RoleBinding per Role),
as the chart binds them, and authenticates with a token from the TokenRequest API: never in
``system:masters``, so a permission the roles lack fails here as it would on a cluster. The API
server's admission policies trust the operator's and the webhooks' user names (crds/admission_status.yaml,
crds/admission_events.yaml read them from the ConfigMap ``crd_install`` writes).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Protocol

import yaml

from gl_api import crdgen

NAMESPACE = "greenlang-system"
COMPONENTS = ("operator", "webhooks", "mirror")
# As long as the local certificates live (certs.VALIDITY): a token never expires under a running stack.
TOKEN_DURATION = "8760h"


class Kubectl(Protocol):
    kubeconfig: Path

    def kubectl(self, *args: str, check: bool = ..., input: str | None = ...) -> subprocess.CompletedProcess[str]:
        ...


class IdentityError(RuntimeError):
    pass


def account(component: str) -> str:
    return f"greenlang-registry-{component}"


def username(component: str) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{account(component)}"


OPERATOR = username("operator")
WEBHOOKS = username("webhooks")
MIRROR = username("mirror")


def roles(component: str) -> list[dict[str, Any]]:
    """The ClusterRole and Roles of ``crds/rbac_<component>.yaml``."""
    return [doc for doc in yaml.safe_load_all((crdgen.CRD_DIR / f"rbac_{component}.yaml").read_text()) if doc]


def _binding(component: str, role: dict[str, Any]) -> dict[str, Any]:
    meta = role["metadata"]
    namespaced = role["kind"] == "Role"
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding" if namespaced else "ClusterRoleBinding",
            "metadata": {"name": meta["name"], **({"namespace": meta["namespace"]} if namespaced else {}),
                         "labels": meta.get("labels", {})},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role["kind"], "name": meta["name"]},
            "subjects": [{"kind": "ServiceAccount", "name": account(component), "namespace": NAMESPACE}]}


def objects() -> list[dict[str, Any]]:
    """Each component's ServiceAccount and the bindings of its roles (the roles are in crds/)."""
    result: list[dict[str, Any]] = []
    for component in COMPONENTS:
        result.append({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": account(component), "namespace": NAMESPACE,
                                    "labels": {"app.kubernetes.io/name": "greenlang-registry",
                                               "app.kubernetes.io/part-of": "greenlang-registry",
                                               "app.kubernetes.io/component": component}}})
        result.extend(_binding(component, role) for role in roles(component))
    return result


def grant_in(cluster: Kubectl, component: str, namespace: str) -> None:
    """The component's greenlang-system Role, also in ``namespace`` (a mirror told --anchor-namespace)."""
    items = []
    for role in roles(component):
        if role["kind"] == "Role" and role["metadata"]["namespace"] == NAMESPACE:
            moved = {**role, "metadata": {**role["metadata"], "namespace": namespace}}
            items += [moved, _binding(component, moved)]
    applied = cluster.kubectl("apply", "-f", "-", check=False,
                              input=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    if applied.returncode != 0:
        raise IdentityError(f"granting {account(component)} its role in namespace {namespace} failed: "
                            f"{applied.stderr.strip()}")


def kubeconfig(cluster: Kubectl, component: str) -> Path:
    """A kubeconfig beside the cluster's that authenticates as the component's ServiceAccount, with a
    token from the TokenRequest API (`kubectl create token`); written afresh on every call."""
    issued = cluster.kubectl("create", "token", account(component), "-n", NAMESPACE,
                             f"--duration={TOKEN_DURATION}", check=False)
    if issued.returncode != 0:
        raise IdentityError(f"no token for ServiceAccount {NAMESPACE}/{account(component)}: {issued.stderr.strip()} "
                            "(crd_install.install creates it; run `gl-dev up`)")
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    contexts = {c["name"]: c["context"] for c in admin["contexts"]}
    clusters = {c["name"]: c["cluster"] for c in admin["clusters"]}
    server = clusters[contexts[admin["current-context"]]["cluster"]]
    config = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "greenlang", "cluster": server}],
        "users": [{"name": account(component), "user": {"token": issued.stdout.strip()}}],
        "contexts": [{"name": account(component), "context": {"cluster": "greenlang", "user": account(component),
                                                              "namespace": NAMESPACE}}],
        "current-context": account(component),
    }
    path = Path(cluster.kubeconfig).with_name(f"kubeconfig-{account(component)}")
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
