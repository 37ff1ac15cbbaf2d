"""The registry's own processes beside the local control plane (the lifecycle operator, for now)."""

from __future__ import annotations

import sys
import time
import urllib.request

from gl_devenv.cluster import ClusterError, LocalCluster, free_port

OPERATOR = "gl-operator"


def start_operator(cluster: LocalCluster, timeout: float = 60) -> str:
    """Run `gl-operator` against the cluster in the background; returns its metrics URL."""
    processes = cluster.processes
    ports_file = cluster.run_dir / f"{OPERATOR}.ports"
    if processes.running(OPERATOR):
        health, metrics = ports_file.read_text().split()
        return f"http://127.0.0.1:{metrics}/metrics"
    health, metrics = free_port(), free_port()
    ports_file.write_text(f"{health} {metrics}")
    processes.spawn(OPERATOR, [sys.executable, "-m", "gl_operator", "run", f"--kubeconfig={cluster.kubeconfig}",
                               f"--health-address=127.0.0.1:{health}", f"--metrics-address=127.0.0.1:{metrics}"],
                    cwd=cluster.workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.running(OPERATOR):
            raise ClusterError(f"the operator exited during start-up; {processes.tail(OPERATOR)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1) as reply:
                if reply.status == 200:
                    return f"http://127.0.0.1:{metrics}/metrics"
        except OSError:
            time.sleep(0.3)
    raise ClusterError(f"the operator did not become healthy; {processes.tail(OPERATOR)}")


def stop_operator(cluster: LocalCluster) -> None:
    cluster.processes.stop(OPERATOR, grace=15)
