"""What every admission benchmark needs: a local stack, a light load generator, percentiles, a report.

The stack is the local control plane with the CRDs, the admission policies, an OPA server and the
webhook server, as `gl-dev up` runs them, without the operator (its reconciles would add load
that is not admission's). Load comes from one asyncio process speaking HTTP/1.1 with keep-alive
to the API server as the cluster admin, so a request costs the client a fraction of a millisecond
of CPU: the same client measures every mode, and reports its own CPU use beside the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gl_api import GROUP, VERSION  # noqa: E402
from gl_devenv import certs, crd_install, registry_services, webhook_service  # noqa: E402
from gl_devenv.cluster import LocalCluster  # noqa: E402

CRDS = REPO / "crds"
ADMISSION_POLICIES = sorted(CRDS.glob("admission_*.yaml"))


def _policy_bindings() -> list[tuple[str, str]]:
    """(kind, name) of every admission policy binding the registry installs: unbound, none of its CEL runs."""
    import yaml

    return [(doc["kind"].lower(), doc["metadata"]["name"]) for path in ADMISSION_POLICIES
            for doc in yaml.safe_load_all(path.read_text()) if doc and doc["kind"].endswith("PolicyBinding")]


def digest(text: str) -> str:
    import hashlib
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------------- figures

@dataclass
class Figures:
    label: str
    samples: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def percentile(self, p: float) -> float:
        if not self.samples:
            return float("nan")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))] * 1000

    def summary(self) -> dict[str, Any]:
        return {"label": self.label, "n": len(self.samples), "errors": self.errors,
                "p50_ms": round(self.percentile(50), 2), "p95_ms": round(self.percentile(95), 2),
                "p99_ms": round(self.percentile(99), 2),
                "mean_ms": round(statistics.fmean(self.samples) * 1000, 2) if self.samples else None,
                "per_second": round(len(self.samples) / self.seconds, 1) if self.seconds else None}


def print_rows(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    print(f"\n{title}")
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def ratio(numerator: dict[str, Any], denominator: dict[str, Any], key: str) -> float:
    return round(numerator[key] / denominator[key], 2) if denominator[key] else float("nan")


def write_report(name: str, report: dict[str, Any]) -> Path:
    out = Path(os.environ.get("GL_BENCH_OUT", tempfile.gettempdir())) / f"{name}.json"
    report = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **report}
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")
    return out


class CpuMeter:
    """CPU seconds this (client) process used while a block ran, as a share of one core."""

    def __enter__(self) -> CpuMeter:
        self._cpu, self._wall = time.process_time(), time.monotonic()
        return self

    def __exit__(self, *_: object) -> None:
        self.share = (time.process_time() - self._cpu) / max(time.monotonic() - self._wall, 1e-9)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------------------------- the client

class Client:
    """HTTP/1.1 keep-alive to the API server with the admin's client certificate."""

    def __init__(self, cluster: LocalCluster, connections: int = 64):
        pki = certs.ensure_pki(cluster.pki_dir)
        context = ssl.create_default_context(cafile=str(pki.ca.cert))
        context.load_cert_chain(str(pki.admin.cert), str(pki.admin.key))
        self.base = cluster.server
        self._connector = aiohttp.TCPConnector(ssl=context, limit=connections)
        self.session = aiohttp.ClientSession(connector=self._connector, timeout=aiohttp.ClientTimeout(total=60))

    async def create(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        async with self.session.post(f"{self.base}{path}", data=json.dumps(body),
                                     headers={"Content-Type": "application/json"}) as reply:
            return reply.status, await reply.text()

    async def close(self) -> None:
        await self.session.close()


def namespaced(plural: str, namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}"


async def load(figures: Figures, make: Callable[[int], Awaitable[tuple[int, str]]], first: int, count: int,
               concurrency: int) -> None:
    """Send ``count`` requests (``make(n)`` for n from ``first``), ``concurrency`` at a time."""
    numbers = iter(range(first, first + count))

    async def worker() -> None:
        for n in numbers:
            start = time.perf_counter()
            status, text = await make(n)
            elapsed = time.perf_counter() - start
            if status >= 300:
                figures.errors += 1
                if figures.errors <= 3:
                    print(f"  {figures.label}: HTTP {status}: {text[:300]}", file=sys.stderr)
            else:
                figures.samples.append(elapsed)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    figures.seconds += time.monotonic() - started


# ------------------------------------------------------------------------------------- the stack

class Stack:
    def __init__(self, workdir: Path):
        self.cluster = LocalCluster(workdir)
        self.opa_url = ""

    def start(self) -> None:
        self.cluster.start()
        crd_install.install(self.cluster)
        self.opa_url = webhook_service.start_opa(self.cluster)
        webhook_service.start_webhooks(self.cluster, self.opa_url, registry_services.OPERATOR_IDENTITY)

    def stop(self) -> None:
        webhook_service.stop(self.cluster)
        self.cluster.stop()

    def kubectl(self, *args: str, input: str | None = None) -> str:
        result = self.cluster.kubectl(*args, input=input, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl("apply", "--server-side", "-f", "-",
                     input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))

    @property
    def webhooks_pid(self) -> int:
        pid = self.cluster.processes.pid(webhook_service.WEBHOOKS)
        assert pid is not None
        return pid

    # Each switch waits until a server-side dry run shows the API server acting on it.

    def set_webhooks(self, on: bool, probe: dict[str, Any], namespace: str) -> None:
        if on:
            webhook_service.register_webhooks(self.cluster, registry_services.OPERATOR_IDENTITY)
        else:
            webhook_service.unregister_webhooks(self.cluster)
        self._until(lambda: self._dry_run_warned(probe, namespace) == on, f"webhooks {'on' if on else 'off'}")

    def set_policies(self, on: bool, probe: dict[str, Any], namespace: str) -> None:
        if on:
            self.kubectl("apply", *(arg for path in ADMISSION_POLICIES for arg in ("-f", str(path))))
        else:
            for kind, name in _policy_bindings():
                self.kubectl("delete", kind, name, "--ignore-not-found")
        self._until(lambda: self._dry_run_stamped(probe, namespace) is on, f"admission policies {'on' if on else 'off'}")

    def _dry_run(self, obj: dict[str, Any], namespace: str) -> tuple[dict[str, Any], str]:
        result = self.cluster.kubectl("create", "-n", namespace, "--dry-run=server", "-o", "json", "-f", "-",
                                      input=json.dumps(obj), check=False)
        return (json.loads(result.stdout) if result.returncode == 0 else {}), result.stderr

    def _dry_run_warned(self, obj: dict[str, Any], namespace: str) -> bool:
        """The publish webhook warns about a version without capabilities: a sign it was asked."""
        return "declares no capabilities" in self._dry_run(obj, namespace)[1]

    def _dry_run_stamped(self, obj: dict[str, Any], namespace: str) -> bool | None:
        """None while the dry run is refused (one identity policy switched before the other)."""
        created, _ = self._dry_run(obj, namespace)
        if not created:
            return None
        return "registry.greenlang.ai/created-by" in ((created.get("metadata") or {}).get("annotations") or {})

    @staticmethod
    def _until(probe: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not probe():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.2)
        time.sleep(0.5)  # let every API server goroutine see the same configuration


@contextlib.contextmanager
def running_stack(keep: bool = False) -> Iterator[Stack]:
    stack = Stack(Path(tempfile.mkdtemp(prefix="gl-bench-")))
    print(f"starting the local stack in {stack.cluster.workdir} ...", file=sys.stderr)
    stack.start()
    try:
        yield stack
    finally:
        if not keep:
            stack.stop()


def raise_open_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
