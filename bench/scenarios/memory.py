"""`python -m bench memory`: the memory each component holds for N published AgentVersions.

On the product's stack (`gl-dev up --no-node`, as `python -m bench publish` starts it), the
resident memory of the operator, the webhook server, the mirror, OPA and Postgres, and of the API
server and etcd for reference, first with the registry empty (the baseline, the same processes in
the same run; one version was published first, so that what loads on first use, such as the
mirror's embedding model, is in the baseline and not charged to the versions), then after N AgentVersions of N/10 Agents went through the real path: created
through admission (the compiled load generator, 16 clients), accepted by the operator and indexed
by the mirror, each one. Memory is read once nothing is left to do: every version Accepted
and in the mirror's search table, then the operator and the mirror idle (under 5 % of a core for
ten seconds: accepting is not the end of their work, as the Agent summaries and kopf's own
bookkeeping follow). Then the operator is restarted, as a rollout of a new operator version
restarts it, and its memory read again once idle: at start it lists and resumes every object.

RSS for single processes, and their peak (VmHWM) over the run; for Postgres the proportional set
size (PSS) summed over the server and its backends, so shared buffers count once. What one version
costs each component is (settled - empty) / N. The peak is what a burst of N creates costs while
the operator works through it: a memory limit must leave room for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import loadgen
from bench.harness import print_rows
from bench.scenarios import common, publish
from gl_api import API_VERSION, GROUP, VERSION, labels
from gl_cli import artifacts, kube
from gl_devenv import postgres, registry_services
from gl_devenv.cluster import LocalCluster

SCALES = {"tiny": {"versions": 40, "timeout": 300}, "2k": {"versions": 2_000, "timeout": 1800},
          "10k": {"versions": 10_000, "timeout": 3600}, "100k": {"versions": 100_000, "timeout": 6 * 3600}}
VERSIONS_PER_AGENT = 10
NAMESPACE = "bench-memory"
AGENT = "bench-memory"
PROCESSES = ("gl-operator", "gl-webhooks", "gl-mirror", "opa", "kube-apiserver", "etcd")
SETTLE_SECONDS = 20
IDLE_SHARE = 0.05  # of one core: an idle operator still renews its lease and resyncs
IDLE_WINDOW = 10.0


def _pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def postgres_pss_mb(home: Path) -> float:
    """The Postgres server and every backend it forked, PSS summed."""
    (pid_file,) = postgres.project_directory(home).rglob("postmaster.pid")
    server = int(pid_file.read_text().split()[0])
    pids = [server]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(stat[1]) == server:
                pids.append(int(entry.name))
    return sum(_pss_mb(pid) for pid in pids if Path(f"/proc/{pid}").exists())


def _pid(home: Path, name: str) -> int:
    return int((home / "run" / f"{name}.pid").read_text())


def memory(home: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Resident MB of each process now, and its peak so far (VmHWM; not kept for Postgres)."""
    used, peak = {}, {}
    for name in PROCESSES:
        for line in Path(f"/proc/{_pid(home, name)}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                (used if line.startswith("VmRSS") else peak)[name] = round(int(line.split()[1]) / 1024, 1)
    used["postgres"] = round(postgres_pss_mb(home), 1)
    return used, peak


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(home: Path, names: tuple[str, ...], timeout: float) -> float:
    """Seconds until every named process used under IDLE_SHARE of a core over IDLE_WINDOW."""
    started = time.monotonic()
    pids = [_pid(home, name) for name in names]
    while time.monotonic() - started < timeout:
        before = [_cpu_seconds(pid) for pid in pids]
        time.sleep(IDLE_WINDOW)
        busy = [(_cpu_seconds(pid) - was) / IDLE_WINDOW for pid, was in zip(pids, before)]
        if max(busy) < IDLE_SHARE:
            return round(time.monotonic() - started, 1)
        print(f"  still busy: {', '.join(f'{n} {b:.0%}' for n, b in zip(names, busy))}", file=sys.stderr)
    raise RuntimeError(f"{', '.join(names)} still busy after {timeout:.0f}s")


def _bodies(workdir: Path, uploaded: artifacts.Uploaded) -> tuple[Path, Path]:
    agent = workdir / "agent.json"
    agent.write_text(json.dumps({
        "apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": f"{AGENT}-{{n}}", "namespace": NAMESPACE},
        "spec": {"displayName": "Memory benchmark {n}", "domain": "bench.memory", "type": "calculator",
                 "description": "Computes embedded emissions of imported goods, variant {n}."}}))
    version = workdir / "agentversion.json"  # version 1.0.n of agent n modulo the number of agents
    version.write_text(json.dumps({
        "apiVersion": API_VERSION, "kind": "AgentVersion",
        "metadata": {"name": f"{AGENT}-{{m}}-1.0.{{n}}", "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/name": f"{AGENT}-{{m}}", "app.kubernetes.io/version": "1.0.{n}"}},
        "spec": {"agent": f"{AGENT}-{{m}}", "version": "1.0.{n}",
                 "artifact": {"uri": uploaded.uri, "digest": uploaded.digest, "sizeBytes": uploaded.size},
                 "capabilities": [{"name": "calculate", "description": "calculates embedded emissions of imported "
                                                                       "goods under the EU CBAM"}]}}))
    return agent, version


def _accepted(api: kube.Api) -> int:
    """AgentVersions the operator has accepted (its state label set), counted page by page."""
    count, token = 0, ""
    while True:
        page = api.request("GET", f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/agentversions",
                           [("labelSelector", labels.STATE), ("limit", "5000"), *([("continue", token)] if token else [])]
                           ).json()
        count += len(page["items"])
        token = page["metadata"].get("continue") or ""
        if not token:
            return count


def _searchable(database: str) -> int:
    with psycopg.connect(database) as conn:
        return conn.execute("SELECT count(*) FROM agent_search WHERE namespace = %s", (NAMESPACE,)).fetchone()[0]


def seed(home: Path, env: dict[str, str], count: int, timeout: float) -> dict[str, Any]:
    """N versions through admission; returns how long creating and catching up took."""
    cluster = LocalCluster(home)
    publisher = publish.Publisher(env)
    uploaded = artifacts.upload_bytes(os.urandom(4096), "bench memory", publisher.bucket, publisher.endpoint,
                                      client=publisher.s3)
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    agent_body, version_body = _bodies(home, uploaded)
    agents = max(1, count // VERSIONS_PER_AGENT)
    base = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}"
    started = time.monotonic()
    made = loadgen.run(cluster, f"{base}/agents", method="POST", body_file=agent_body, concurrency=16, seconds=3600,
                       warmup=0, requests=agents)
    created = loadgen.run(cluster, f"{base}/agentversions", method="POST", body_file=version_body, concurrency=16,
                          seconds=3600, warmup=0, requests=count, modulo=agents)
    if made["errors"] or created["errors"]:
        raise RuntimeError(f"seeding failed: {made['errors']} Agent and {created['errors']} AgentVersion creates "
                           "were refused (see the API server's log)")
    create_seconds = time.monotonic() - started
    api = kube.connect(env["KUBECONFIG"], None, NAMESPACE).api
    database = publish.dsn(home)
    deadline = started + timeout
    while (accepted := _accepted(api)) < count or (searchable := _searchable(database)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"after {timeout:.0f}s, {accepted} of {count} accepted, "
                               f"{_searchable(database)} searchable")
        print(f"  {accepted}/{count} accepted ...", file=sys.stderr)
        time.sleep(10)
    return {"createSeconds": round(create_seconds, 1), "caughtUpSeconds": round(time.monotonic() - started, 1),
            "accepted": accepted, "searchable": searchable}


def restart_operator(home: Path, timeout: float) -> dict[str, float]:
    """Stop the operator and start it again on the full registry; its memory once idle, and its peak."""
    registry_services.stop_operator(LocalCluster(home))
    started = time.monotonic()
    publish.start_stack(home)  # gl-dev up starts only what is not running: the operator
    wait_idle(home, ("gl-operator",), timeout)  # raises when it never idles
    used, peak = memory(home)
    return {"idleAfterSeconds": round(time.monotonic() - started, 1),
            "operatorMb": used["gl-operator"], "operatorPeakMb": peak["gl-operator"]}


def run(args: argparse.Namespace) -> None:
    scale = SCALES[args.scale]
    home = Path(tempfile.mkdtemp(prefix="gl-bench-memory-"))
    print(f"starting gl-dev up --no-node in {home} ...", file=sys.stderr)
    try:
        env = publish.start_stack(home)
        publish.prepare(env, publish.Publisher(env))  # a first version: lazy loads happen before the baseline
        time.sleep(SETTLE_SECONDS)
        empty, _ = memory(home)
        seeded = seed(home, env, scale["versions"], scale["timeout"])
        seeded["idleAfterSeconds"] = wait_idle(home, ("gl-operator", "gl-mirror"), scale["timeout"])
        full, peak = memory(home)
        restarted = restart_operator(home, scale["timeout"])
    finally:
        publish.stop_stack(home)
    count = scale["versions"]
    rows = [{"component": name, "empty MB": empty[name], f"{count} versions MB": full[name],
             "peak MB": peak.get(name, ""), "KB per version": round((full[name] - empty[name]) * 1024 / count, 2)}
            for name in empty]
    print_rows(f"memory with {count} AgentVersions ({count // VERSIONS_PER_AGENT} Agents) beside the empty registry",
               rows, ["component", "empty MB", f"{count} versions MB", "peak MB", "KB per version"])
    print(f"created in {seeded['createSeconds']}s; every version accepted and searchable after "
          f"{seeded['caughtUpSeconds']}s; operator and mirror idle {seeded['idleAfterSeconds']}s later",
          file=sys.stderr)
    print(f"operator restarted on the full registry: idle after {restarted['idleAfterSeconds']}s, "
          f"{restarted['operatorMb']} MB (peak {restarted['operatorPeakMb']} MB)", file=sys.stderr)
    common.report("memory", args, [], versions=count, agents=count // VERSIONS_PER_AGENT, emptyMb=empty,
                  fullMb=full, peakMb=peak, kbPerVersion={r["component"]: r["KB per version"] for r in rows},
                  seeding=seeded, operatorRestart=restarted, mallocArenaMax=os.environ.get("MALLOC_ARENA_MAX"))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench memory", description=__doc__.splitlines()[0])
    common.add_common_arguments(parser, SCALES, reuse_cluster=False)
    run(parser.parse_args(argv))
