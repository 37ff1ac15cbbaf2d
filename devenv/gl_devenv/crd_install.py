"""Install the registry's CRDs and admission policies into a cluster, and its own namespace.

The namespace ``greenlang-system`` holds what the registry runs on (the operator's Lease, the
query API's Service); the chart makes it where it installs.
"""

from __future__ import annotations

import json
import subprocess
from typing import Protocol

from gl_api import crdgen, kinds


class Kubectl(Protocol):
    def kubectl(self, *args: str, check: bool = ..., input: str | None = ...) -> subprocess.CompletedProcess[str]:
        ...


class InstallError(RuntimeError):
    pass


SYSTEM_NAMESPACE = "greenlang-system"


def install(cluster: Kubectl, timeout: str = "60s") -> None:
    """`kubectl apply -f crds/`, exactly as the README tells users to, then wait for Established."""
    namespace = cluster.kubectl("apply", "-f", "-", check=False, input=json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}}))
    if namespace.returncode != 0:
        raise InstallError(f"creating namespace {SYSTEM_NAMESPACE} failed: {namespace.stderr.strip()}")
    applied = cluster.kubectl("apply", "-f", str(crdgen.CRD_DIR), check=False)
    if applied.returncode != 0:
        raise InstallError(f"installing the CRDs from {crdgen.CRD_DIR} failed: {applied.stderr.strip()}")
    names = [f"crd/{kind.crd_name}" for kind in kinds.ALL]
    waited = cluster.kubectl("wait", "--for=condition=Established", f"--timeout={timeout}", *names, check=False)
    if waited.returncode != 0:
        raise InstallError(f"the CRDs were not established: {waited.stderr.strip()}")
