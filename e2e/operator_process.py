"""The registry operator as a real process (`python -m gl_operator run`), for e2e tests.

It holds the Lease ``greenlang-system/greenlang-registry-operator`` under a fixed identity, so a
restarted process takes its Lease back at once, as a restarted container of the same pod does;
give two processes different identities to see one lead and the other wait.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from gl_devenv.cluster import free_port

# Fast enough for tests, long enough that "fast track skips the soak" is observable.
# Gateway API CRDs installed mid-session (test_gateway_routes) are noticed within a second.
# A Promotion whose checks cannot be evaluated fails after 8 s, not an hour.
TEST_CONFIG = {"promotion": {"soakSeconds": 10, "checkDeadlineSeconds": 8}, "resyncSeconds": 1,
               "deployments": {"reconcileSeconds": 1, "gatewayCheckSeconds": 1,
                               "gateway": [{"name": "agents", "namespace": "greenlang-system"}]}}


class OperatorProcess:
    def __init__(self, kubeconfig: Path, workdir: Path, config: dict | None = None, identity: str = "e2e-operator"):
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.identity = identity
        self.config = workdir / f"{identity}.yaml"
        self.config.write_text(yaml.safe_dump(config or TEST_CONFIG))
        self.log = workdir / f"{identity}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.health_port = 0
        self.metrics_port = 0
        self.env: dict[str, str] = {}

    def reconfigure(self, config: dict, env: dict[str, str] | None = None) -> None:
        """Settings and environment for the next start (the runtime's image, Prometheus, S3...)."""
        self.config.write_text(yaml.safe_dump(config))
        self.env = dict(env or {})

    def start(self, env: dict[str, str] | None = None, wait: bool = True) -> None:
        self.health_port, self.metrics_port = free_port(), free_port()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gl_operator", "run", f"--kubeconfig={self.kubeconfig}",
                 f"--config={self.config}", f"--health-address=127.0.0.1:{self.health_port}",
                 f"--metrics-address=127.0.0.1:{self.metrics_port}", "--log-format=full",
                 "--leader-election-namespace=greenlang-system", f"--leader-identity={self.identity}"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env, **(env or {})})
        if wait:
            self.wait_role("leader")

    def role(self) -> str | None:
        """``leader`` or ``standby`` as its /healthz says; None while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as reply:
                return json.loads(reply.read())["role"]
        except OSError:
            return None

    def wait_role(self, role: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"operator exited with {self.process.returncode}; see {self.log}")
            if self.role() == role:
                return
            time.sleep(0.1)
        raise AssertionError(f"operator not {role} after {timeout}s (it says {self.role()}); see {self.log}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.running():
            assert self.process is not None
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
            return reply.read().decode()
