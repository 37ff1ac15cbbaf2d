"""Install the registry's CRDs into a cluster and wait until the API server serves them."""

from __future__ import annotations

import subprocess
from typing import Protocol

from gl_api import crdgen, kinds


class Kubectl(Protocol):
    def kubectl(self, *args: str, check: bool = ..., input: str | None = ...) -> subprocess.CompletedProcess[str]:
        ...


class InstallError(RuntimeError):
    pass


def install(cluster: Kubectl, timeout: str = "60s") -> None:
    """`kubectl apply -f crds/`, exactly as the README tells users to, then wait for Established."""
    applied = cluster.kubectl("apply", "-f", str(crdgen.CRD_DIR), check=False)
    if applied.returncode != 0:
        raise InstallError(f"installing the CRDs from {crdgen.CRD_DIR} failed: {applied.stderr.strip()}")
    names = [f"crd/{kind.crd_name}" for kind in kinds.ALL]
    waited = cluster.kubectl("wait", "--for=condition=Established", f"--timeout={timeout}", *names, check=False)
    if waited.returncode != 0:
        raise InstallError(f"the CRDs were not established: {waited.stderr.strip()}")
