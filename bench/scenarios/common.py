"""What the `python -m bench` scenarios share: a control plane to run on, an HTTP client with a
kubeconfig's credentials, timing, and one report format (a table on stdout, JSON on disk).

Every figure is reported beside a baseline measured in the same run, alternated with it round by
round, so that ratios hold on a busy machine even when absolute figures do not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp

from bench import harness  # noqa: F401  (puts the repository on sys.path, as the older scripts expect)
from bench.harness import Figures, print_rows
from gl_cli import kube
from gl_devenv import crd_install
from gl_devenv.cluster import LocalCluster

RESULT_COLUMNS = ["label", "n", "p50_ms", "p95_ms", "p99_ms", "per_second", "baseline", "base_p50_ms",
                  "base_p95_ms", "base_p99_ms", "base_per_second", "ratio_p50", "ratio_p95"]


def add_common_arguments(parser: argparse.ArgumentParser, scales: dict[str, Any], reuse_cluster: bool = True) -> None:
    """--scale and --out; --cluster-dir too unless the scenario needs a stack of its own."""
    parser.add_argument("--scale", choices=list(scales), default=next(iter(scales)),
                        help="data size and request counts: " + ", ".join(f"{k}={v}" for k, v in scales.items()))
    if reuse_cluster:
        parser.add_argument("--cluster-dir", type=Path,
                            help="the workdir of a running local control plane to reuse (a LocalCluster's, e.g. the "
                                 "e2e session's); default: start one in a temporary directory and stop it afterwards")
    parser.add_argument("--out", type=Path, help="where to write the JSON report (default: $GL_BENCH_OUT or /tmp, "
                                                 "named after the scenario)")


@contextlib.contextmanager
def control_plane(cluster_dir: Path | None) -> Iterator[LocalCluster]:
    """The local control plane with the registry's CRDs; stopped afterwards only if started here."""
    cluster = LocalCluster(cluster_dir or Path(tempfile.mkdtemp(prefix="gl-bench-")))
    started_here = not cluster.is_running()
    if started_here:
        print(f"starting a control plane in {cluster.workdir} ...", file=sys.stderr)
        cluster.start()
    crd_install.install(cluster)
    try:
        yield cluster
    finally:
        if started_here:
            cluster.stop()


class Http:
    """Keep-alive HTTPS to the API server with a kubeconfig's credentials (client certificate or token)."""

    def __init__(self, kubeconfig: Path, connections: int = 32):
        api = kube.connect(str(kubeconfig), None, None).api
        self.base = api.server.rstrip("/")
        self.headers = {**api.headers, "Accept": "application/json"}
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=api.ssl_context, limit=connections),
                                             timeout=aiohttp.ClientTimeout(total=60))

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(f"{self.base}{path}", headers=self.headers) as reply:
            return reply.status, await reply.text()

    async def close(self) -> None:
        await self.session.close()


def alternate(rounds: int, modes: list[str], run: Callable[[str], None]) -> None:
    """Run each mode once per round, the order flipped every other round, so all see the same machine."""
    for number in range(rounds):
        for mode in (modes if number % 2 == 0 else list(reversed(modes))):
            run(mode)


def compare(label: str, measured: Figures, baseline: Figures, baseline_label: str) -> dict[str, Any]:
    """One result row: the figures, the baseline's from the same run, and their ratios."""
    ours, theirs = measured.summary(), baseline.summary()
    return {**ours, "label": label, "baseline": baseline_label,
            **{f"base_{k}": theirs[k] for k in ("n", "errors", "p50_ms", "p95_ms", "p99_ms", "per_second")},
            "ratio_p50": harness.ratio(ours, theirs, "p50_ms"), "ratio_p95": harness.ratio(ours, theirs, "p95_ms")}


def cpu_seconds_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def report(scenario: str, args: argparse.Namespace, results: list[dict[str, Any]], **extra: Any) -> Path:
    """Print the table and write the JSON: every result beside its baseline, the machine and its load."""
    if results:
        print_rows(f"{scenario} (scale {args.scale})", results, RESULT_COLUMNS)
    document = {"scenario": scenario, "scale": args.scale,
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                            "load_average": [round(x, 2) for x in os.getloadavg()]},
                "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "results": results, **extra}
    out = args.out or Path(os.environ.get("GL_BENCH_OUT", tempfile.gettempdir())) / f"bench-{scenario}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2))
    print(f"\nwrote {out}")
    return out


def run_async(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(coroutine)  # type: ignore[arg-type]
