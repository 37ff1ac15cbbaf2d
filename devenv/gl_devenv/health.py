"""`gl-dev status`: each registry component's process and what its health endpoint says."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable

from gl_devenv import node, prometheus, registry_services, webhook_service
from gl_devenv.cluster import LocalCluster


def _probe(url: str, insecure: bool = False) -> tuple[bool, str]:
    context = ssl._create_unverified_context() if insecure else None  # our own loopback server
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as reply:
            return True, reply.read(300).decode(errors="replace").strip()
    except urllib.error.HTTPError as error:
        return False, error.read(300).decode(errors="replace").strip() or f"HTTP {error.code}"
    except OSError as error:
        return False, str(getattr(error, "reason", error))


def _port(local: LocalCluster, name: str, index: int = 0) -> str:
    return (local.run_dir / name).read_text().split()[index]


def _operator(local: LocalCluster) -> str:
    ok, body = _probe(f"http://127.0.0.1:{_port(local, f'{registry_services.OPERATOR}.ports')}/healthz")
    if not ok:
        return f"unhealthy: {body}"
    return f"healthy, {json.loads(body).get('role', 'unknown')}"


def _ready(url: str, insecure: bool = False) -> str:
    ok, body = _probe(url, insecure)
    return "ready" if ok else f"not ready: {body}"


CHECKS: dict[str, Callable[[LocalCluster], str]] = {
    webhook_service.OPA: lambda local: _ready(
        f"http://127.0.0.1:{_port(local, f'{webhook_service.OPA}.port')}/health?bundles"),
    webhook_service.WEBHOOKS: lambda local: _ready(
        f"http://127.0.0.1:{webhook_service.ports(local)[1]}/readyz"),
    registry_services.OPERATOR: _operator,
    registry_services.MIRROR: lambda local: _ready(
        f"https://localhost:{_port(local, f'{registry_services.MIRROR}.ports')}/healthz", insecure=True),
    registry_services.S3: lambda local: _ready(f"{(local.run_dir / 's3.endpoint').read_text().strip()}/"),
    prometheus.PROMETHEUS: lambda local: _ready(
        f"http://127.0.0.1:{_port(local, f'{prometheus.PROMETHEUS}.port')}/-/ready"),
    "kubelet": lambda local: _node_ready(local),
}


def _node_ready(local: LocalCluster) -> str:
    result = local.kubectl("get", "node", node.NODE_NAME, "-o",
                           'jsonpath={.status.conditions[?(@.type=="Ready")].status}', check=False)
    return f"node {node.NODE_NAME} Ready" if result.stdout.strip() == "True" else f"node {node.NODE_NAME} not Ready"


def registry_status(local: LocalCluster) -> dict[str, str]:
    result = {}
    for name, check in CHECKS.items():
        pid = local.processes.pid(name)
        if not local.processes.running(name):
            result[name] = "stopped"
            continue
        try:
            result[name] = f"running (pid {pid}), {check(local)}"
        except (OSError, ValueError, IndexError) as error:
            result[name] = f"running (pid {pid}), health unknown: {error}"
    return result
