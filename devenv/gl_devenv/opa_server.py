"""A real OPA server on loopback, serving the policies in policies/ (for tests and `gl-dev up --opa`)."""

from __future__ import annotations

from pathlib import Path

from gl_devenv import build
from gl_devenv.cluster import free_port
from gl_devenv.processes import Supervisor

NAME = "opa"


def start(supervisor: Supervisor, policy_dir: Path, cwd: Path, timeout: float = 30) -> str:
    """Start `opa run --server` on a free loopback port; returns its URL once healthy."""
    build.ensure(["opa"])
    port = free_port()
    supervisor.spawn(NAME, [str(build.binary("opa")), "run", "--server", f"--addr=127.0.0.1:{port}",
                            "--disable-telemetry", "--log-level=error", str(policy_dir)], cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    supervisor.wait_healthy(NAME, f"{url}/health", timeout)
    return url
