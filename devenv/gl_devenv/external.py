"""Clusters we did not start ourselves: an existing kubeconfig, or a kind cluster.

Where Docker and kind are available (a laptop), the e2e suite runs against kind with
``GL_E2E_CLUSTER=kind``; ``GL_E2E_KUBECONFIG=path`` points it at any other cluster.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from gl_devenv import build


class ExternalCluster:
    def __init__(self, kubeconfig: Path):
        self.kubeconfig = Path(kubeconfig)

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        kubectl = shutil.which("kubectl") or str(build.binary("kubernetes", "kubectl"))
        return subprocess.run([kubectl, f"--kubeconfig={self.kubeconfig}", *args], input=input,
                              capture_output=True, text=True, check=check)

    def stop(self) -> None:
        """Someone else's cluster: leave it running."""


class KindCluster(ExternalCluster):
    def __init__(self, name: str, kubeconfig: Path):
        super().__init__(kubeconfig)
        self.name = name

    def start(self) -> None:
        if shutil.which("kind") is None:
            raise RuntimeError("GL_E2E_CLUSTER=kind needs the kind binary on PATH (and a Docker daemon)")
        subprocess.run(["kind", "create", "cluster", "--name", self.name, "--kubeconfig", str(self.kubeconfig),
                        "--wait", "120s"], check=True)

    def stop(self) -> None:
        subprocess.run(["kind", "delete", "cluster", "--name", self.name], check=False)
