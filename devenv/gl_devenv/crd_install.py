"""Install the registry's CRDs and admission policies into a cluster, and its own namespace.

The namespace ``greenlang-system`` holds what the registry runs on (the operator's Lease, the
query API's Service); the chart makes it where it installs. So does the ConfigMap
``greenlang-registry-identities``: the user names of the registry's own components, which the
admission policies trust (crds/admission_status.yaml, crds/admission_events.yaml). The components'
ServiceAccounts and the bindings of their roles (crds/rbac_<component>.yaml) come last
(``identities``), as the chart makes them.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Protocol

from gl_api import crdgen, kinds
from gl_devenv import identities


class Kubectl(Protocol):
    def kubectl(self, *args: str, check: bool = ..., input: str | None = ...) -> subprocess.CompletedProcess[str]:
        ...


class InstallError(RuntimeError):
    pass


SYSTEM_NAMESPACE = identities.NAMESPACE
IDENTITIES = "greenlang-registry-identities"


def install(cluster: Kubectl, timeout: str = "60s", operator_user: str = identities.OPERATOR,
            webhooks_user: str = identities.WEBHOOKS) -> None:
    """`kubectl apply -f crds/`, exactly as the README tells users to, then wait for Established.

    First the namespace and the identities the policies trust, so that no write of the operator
    meets a policy without them.
    """
    objects = {"apiVersion": "v1", "kind": "List", "items": _system_objects(operator_user, webhooks_user)}
    system = cluster.kubectl("apply", "-f", "-", check=False, input=json.dumps(objects))
    if system.returncode != 0:
        raise InstallError(f"creating namespace {SYSTEM_NAMESPACE} and its ConfigMap {IDENTITIES} failed: "
                           f"{system.stderr.strip()}")
    applied = cluster.kubectl("apply", "-f", str(crdgen.CRD_DIR), check=False)
    if applied.returncode != 0:
        raise InstallError(f"installing the CRDs from {crdgen.CRD_DIR} failed: {applied.stderr.strip()}")
    bound = cluster.kubectl("apply", "-f", "-", check=False, input=json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": identities.objects()}))
    if bound.returncode != 0:
        raise InstallError(f"creating the components' ServiceAccounts and binding their roles failed: "
                           f"{bound.stderr.strip()}")
    names = [f"crd/{kind.crd_name}" for kind in kinds.ALL]
    waited = cluster.kubectl("wait", "--for=condition=Established", f"--timeout={timeout}", *names, check=False)
    if waited.returncode != 0:
        raise InstallError(f"the CRDs were not established: {waited.stderr.strip()}")
    wait_admissible(cluster, float(timeout.rstrip("s")))


def _system_objects(operator_user: str, webhooks_user: str) -> list[dict]:
    labels = {"app.kubernetes.io/name": "greenlang-registry", "app.kubernetes.io/part-of": "greenlang-registry",
              "app.kubernetes.io/component": "admission-params"}
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}},
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": IDENTITIES, "namespace": SYSTEM_NAMESPACE, "labels": labels},
             "data": {"operator": operator_user, "webhooks": webhooks_user}}]


def wait_admissible(cluster: Kubectl, timeout: float) -> None:
    """Wait until writes of every kind pass admission.

    The admission policies (CEL) learn a new kind's schema a moment after its CRD is established;
    until then the API server answers 503 ("Resource kind ... not found"). A server-side dry run
    of each example shows when that moment has passed.
    """
    # Empty specs: admission runs before schema validation, so a 422 still shows admission passed.
    probes = json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": kind.api_version, "kind": kind.kind, "spec": {},
         "metadata": {"name": "admission-probe", **({"namespace": "default"} if kind.namespaced else {})}}
        for kind in kinds.ALL]})
    deadline = time.monotonic() + timeout
    while True:
        tried = cluster.kubectl("create", "--dry-run=server", "--validate=false", "-o", "name", "-f", "-",
                                input=probes, check=False)
        if "Resource kind" not in tried.stderr:
            return
        if time.monotonic() > deadline:
            raise InstallError(f"the registry's kinds are not admissible yet: {tried.stderr.strip()}")
        time.sleep(0.2)
