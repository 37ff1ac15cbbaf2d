"""`python -m bench publish-cost`: what one publish costs each component, in API requests and CPU.

On the product's stack (`gl-dev up --no-node`, as `python -m bench publish` starts it), N versions
are published at a gentle rate (nothing queues), then, per publish: the API server's requests by
resource, subresource and verb (its own ``apiserver_request_total``), and the CPU seconds each
process used (``/proc/<pid>/stat``; Postgres with its backends) less what it uses idle over as long, measured just before. The baseline beside it: the same number of S3 uploads and
ConfigMap creates, the plainest way to move the same bytes. This is the profile behind the
publish rates the machine sustains (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import print_rows
from bench.scenarios import common, publish
from gl_devenv import postgres

SCALES = {"tiny": {"publishes": 5}, "full": {"publishes": 100}}
PROCESSES = ("kube-apiserver", "etcd", "gl-operator", "gl-mirror", "gl-webhooks", "opa", "s3")
TICKS = os.sysconf("SC_CLK_TCK")
SETTLE = 15.0  # seconds after the last publish for the operator and the mirror to finish


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def postgres_cpu_seconds(home: Path) -> float | None:
    """The postmaster, the exited backends it reaped and the live ones (the mirror's connections,
    autovacuum, the WAL writer): a write's index upkeep is spent there, not in the mirror."""
    try:
        postmaster = int((postgres.project_directory(home) / "data" / "postmaster.pid").read_text().split()[0])
        fields = _stat(postmaster)
    except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
        return None
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = _stat(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(child[1]) == postmaster:  # its parent
                ticks += int(child[11]) + int(child[12])
    return ticks / TICKS


def cpu_seconds(home: Path) -> dict[str, float]:
    used = {}
    for name in PROCESSES:
        try:
            pid = int((home / "run" / f"{name}.pid").read_text())
            fields = _stat(pid)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            continue
        used[name] = (int(fields[11]) + int(fields[12])) / TICKS
    database = postgres_cpu_seconds(home)
    if database is not None:
        used["postgres"] = database
    return used


def requests(env: dict[str, str]) -> dict[str, float]:
    """The API server's request counts for the registry's kinds, ConfigMaps and Events."""
    text = subprocess.run(["kubectl", "get", "--raw", "/metrics"], env={**os.environ, **env}, check=True,
                          capture_output=True, text=True).stdout
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if found.get("group") != "registry.greenlang.ai" and found.get("resource") not in ("configmaps", "events"):
            continue
        key = f"{found.get('verb')} {found.get('resource')}" + (f"/{found['subresource']}" if found.get("subresource") else "")
        counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def per_item(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    return {key: round((after.get(key, 0.0) - before.get(key, 0.0)) / count, 3)
            for key in sorted(set(after) | set(before)) if after.get(key, 0.0) != before.get(key, 0.0)}


def measured(home: Path, env: dict[str, str], count: int, send: Any) -> tuple[dict[str, float], dict[str, float]]:
    """CPU ms and API requests per item, less what the same stack spends idle over the same time
    (leases, controllers, the operator's timers), measured just before."""
    window = count * 0.1 + SETTLE
    cpu = cpu_seconds(home)
    time.sleep(window)
    idle = per_item(cpu, cpu_seconds(home), count)
    cpu, counted = cpu_seconds(home), requests(env)
    for number in range(count):
        started = time.monotonic()
        send(number)
        time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
    time.sleep(max(0.0, window - count * 0.1))  # the operator and the mirror finish what the last ones started
    busy = per_item(cpu, cpu_seconds(home), count)
    cpu_ms = {name: round(1000 * (value - idle.get(name, 0.0)), 1) for name, value in busy.items()}
    return cpu_ms, per_item(counted, requests(env), count)


def run(args: argparse.Namespace) -> None:
    count = SCALES[args.scale]["publishes"]
    home = Path(tempfile.mkdtemp(prefix="gl-bench-publish-cost-"))
    print(f"starting gl-dev up --no-node in {home} ...", file=sys.stderr)
    try:
        env = publish.start_stack(home)
        publisher = publish.Publisher(env)
        size = publish.prepare(env, publisher)
        ours = measured(home, env, count, lambda n: publisher.publish(f"7.0.{n}"))
        baseline = measured(home, env, count, lambda n: publisher.baseline(700_000 + n, size))
    finally:
        publish.stop_stack(home)
    rows = [{"per publish": name, "publish": ours[0].get(name, 0.0), "baseline": baseline[0].get(name, 0.0)}
            for name in (*PROCESSES, "postgres")]
    rows.append({"per publish": "total CPU ms", "publish": round(sum(ours[0].values()), 1),
                 "baseline": round(sum(baseline[0].values()), 1)})
    print_rows(f"CPU ms per publish ({count} publishes) beside S3 upload + ConfigMap create", rows,
               ["per publish", "publish", "baseline"])
    calls = [{"request": key, "publish": ours[1].get(key, 0.0), "baseline": baseline[1].get(key, 0.0)}
             for key in sorted(set(ours[1]) | set(baseline[1]))]
    print_rows("API server requests per publish", calls, ["request", "publish", "baseline"])
    total = sum(ours[0].values())
    common.report("publish-cost", args, [], publishes=count, cpuMsPerPublish=ours[0], baselineCpuMs=baseline[0],
                  requestsPerPublish=ours[1], baselineRequests=baseline[1],
                  ceilingPerSecond=round(1000 * (os.cpu_count() or 1) / total, 1) if total else None)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench publish-cost", description=__doc__.splitlines()[0])
    common.add_common_arguments(parser, SCALES, reuse_cluster=False)
    run(parser.parse_args(argv))
