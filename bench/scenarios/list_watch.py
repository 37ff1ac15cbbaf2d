"""`python -m bench list-watch`: listing and watching N AgentVersions, and what holding them costs.

N AgentVersions and N ConfigMaps of the same size (the baseline: a built-in kind) are created in
one namespace each by the compiled load generator, then, alternated round by round, one client
as the cluster admin measures:

- ``list paged``: every object, 500 a page, as kubectl and `gl` list (each page from etcd);
- ``list cached``: one unpaged list at ``resourceVersion=0``, as an informer starts (from the API
  server's watch cache);
- ``watch``: from a create to its event on an open watch of the namespace.

And the API server's memory and etcd's database size before and after each kind is seeded, so
the cost of one stored AgentVersion is read beside a ConfigMap's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import harness, loadgen
from bench.harness import Figures, rss_mb
from bench.scenarios import common
from gl_api import API_VERSION

SCALES = {"tiny": {"objects": 200, "rounds": 1, "watches": 5},
          "10k": {"objects": 10_000, "rounds": 3, "watches": 30},
          "100k": {"objects": 100_000, "rounds": 3, "watches": 30}}
AGENT = "gl-bench-list"
NAMESPACES = {"AgentVersion": "bench-list-av", "ConfigMap": "bench-list-cm"}


def paths(kind: str) -> str:
    if kind == "AgentVersion":
        return harness.namespaced("agentversions", NAMESPACES[kind])
    return f"/api/v1/namespaces/{NAMESPACES[kind]}/configmaps"


def agent_version(version: str, digest_hex: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "AgentVersion",
            "metadata": {"name": f"{AGENT}-{version}", "namespace": NAMESPACES["AgentVersion"]},
            "spec": {"agent": AGENT, "version": version,
                     "artifact": {"uri": f"s3://greenlang-agents/sha256/{digest_hex}", "digest": f"sha256:{digest_hex}"},
                     "image": f"registry.example.com/bench@sha256:{'e' * 12}{digest_hex[12:]}",
                     "capabilities": [{"name": f"capability-{n}", "description": "calculates embedded emissions of "
                                       f"imported goods under the EU CBAM, variant {n}"} for n in range(4)]}}


def etcd_db_mb(cluster: Any) -> float:
    """etcd's database size as etcd reports it (``etcd_mvcc_db_total_size_in_bytes``)."""
    import urllib.request

    port = json.loads(cluster.state_file.read_text())["ports"]["etcd_client"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("etcd_mvcc_db_total_size_in_bytes "):
                return round(float(line.split()[1]) / 1e6, 1)
    return float("nan")


def resources(cluster: Any) -> dict[str, float]:
    pid = cluster.processes.pid("kube-apiserver")
    return {"apiServerRssMb": round(rss_mb(pid), 1) if pid else float("nan"), "etcdDbMb": etcd_db_mb(cluster)}


def seed(cluster: Any, count: int, workdir: Path) -> tuple[dict[str, Any], int]:
    """Create ``count`` of each kind (AgentVersions first); resources measured around each."""
    for namespace in NAMESPACES.values():
        cluster.kubectl("create", "namespace", namespace, check=False)
    cluster.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": AGENT, "namespace": NAMESPACES["AgentVersion"]},
        "spec": {"displayName": "List benchmark", "domain": "bench.list", "type": "calculator"}}))
    body = workdir / "agentversion.json"
    body.write_text(json.dumps(agent_version("0.0.{n}", "0" * 52 + "{n12}")))
    measured: dict[str, Any] = {"empty": resources(cluster)}
    started = time.monotonic()
    seeded = loadgen.run(cluster, paths("AgentVersion"), method="POST", body_file=body, concurrency=16,
                         seconds=3600, warmup=0, requests=count)
    measured["agentVersions"] = {**resources(cluster), "seconds": round(time.monotonic() - started, 1),
                                 "errors": seeded["errors"]}
    served = cluster.kubectl("get", "--raw", f"{paths('AgentVersion')}/{AGENT}-0.0.0").stdout
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench-list-{n}"},
                  "data": {"object": "x" * max(0, len(served) - 250)}}
    body.write_text(json.dumps(config_map))
    started = time.monotonic()
    seeded = loadgen.run(cluster, paths("ConfigMap"), method="POST", body_file=body, concurrency=16, seconds=3600,
                         warmup=0, requests=count)
    measured["configMaps"] = {**resources(cluster), "seconds": round(time.monotonic() - started, 1),
                              "errors": seeded["errors"]}
    return measured, len(served)


async def list_all(http: common.Http, path: str, paged: bool) -> tuple[int, str]:
    """Every object of the list; returns (status, count as text) so the harness's loader can time it."""
    if not paged:
        status, text = await http.get(f"{path}?resourceVersion=0")
        return status, str(len(json.loads(text).get("items", []))) if status == 200 else text
    token, count = "", 0
    while True:
        status, text = await http.get(f"{path}?limit=500" + (f"&continue={token}" if token else ""))
        if status != 200:
            return status, text
        page = json.loads(text)
        count += len(page["items"])
        token = page["metadata"].get("continue") or ""
        if not token:
            return status, str(count)


async def watch_latency(http: common.Http, kind: str, figures: Figures, count: int, round_number: int) -> None:
    """From a create to its ADDED event on a watch that is already open."""
    path = paths(kind)
    for number in range(round_number * count, (round_number + 1) * count):
        status, text = await http.get(f"{path}?limit=1")
        version = json.loads(text)["metadata"]["resourceVersion"]
        if kind == "AgentVersion":
            body = agent_version(f"9.{number}.0", f"{number:064x}")
        else:
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"watched-{number}"},
                    "data": {"a": "b"}}
        name = body["metadata"]["name"]
        async with http.session.get(f"{http.base}{path}?watch=1&resourceVersion={version}&timeoutSeconds=30",
                                    headers=http.headers) as stream:
            started = time.perf_counter()
            async with http.session.post(f"{http.base}{path}", data=json.dumps(body),
                                         headers={**http.headers, "Content-Type": "application/json"}) as created:
                if created.status >= 300:
                    figures.errors += 1
                    print(f"  watch {kind}: create refused, HTTP {created.status}: {(await created.text())[:300]}",
                          file=sys.stderr)
                    continue
            async for line in stream.content:
                event = json.loads(line)
                if event["type"] == "ADDED" and event["object"]["metadata"]["name"] == name:
                    figures.samples.append(time.perf_counter() - started)
                    break
            else:
                figures.errors += 1


async def measure(cluster: Any, count: int, rounds: int, watches: int) -> dict[str, Figures]:
    http = common.Http(cluster.kubeconfig)
    figures = {f"{what} {kind}": Figures(f"{what} {kind}") for what in ("list paged", "list cached", "watch")
               for kind in NAMESPACES}
    try:
        for number in range(rounds):
            for kind in (NAMESPACES if number % 2 == 0 else list(reversed(NAMESPACES))):
                for paged, what in ((True, "list paged"), (False, "list cached")):
                    target = figures[f"{what} {kind}"]
                    started = time.perf_counter()
                    status, listed = await list_all(http, paths(kind), paged)
                    target.seconds += time.perf_counter() - started
                    if status == 200 and int(listed) >= count:
                        target.samples.append(time.perf_counter() - started)
                    else:
                        target.errors += 1
                        print(f"  {what} {kind}: HTTP {status}, {listed[:200]}", file=sys.stderr)
                await watch_latency(http, kind, figures[f"watch {kind}"], watches, number)
                print(f"  round {number + 1}/{rounds} {kind} done", file=sys.stderr)
    finally:
        await http.close()
    return figures


def run(args: argparse.Namespace) -> None:
    scale = SCALES[args.scale]
    harness.raise_open_files()
    loadgen.binary()  # built before any clock starts
    with common.control_plane(args.cluster_dir) as cluster:
        seeded, size = seed(cluster, scale["objects"], Path(tempfile.mkdtemp(prefix="gl-bench-list-")))
        figures = asyncio.run(measure(cluster, scale["objects"], scale["rounds"], scale["watches"]))
        for namespace in NAMESPACES.values():
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    results = [common.compare(f"{what} AgentVersion", figures[f"{what} AgentVersion"], figures[f"{what} ConfigMap"],
                              f"{what} ConfigMap") for what in ("list paged", "list cached", "watch")]
    per_object = {}
    for kind, key, before in (("AgentVersion", "agentVersions", "empty"), ("ConfigMap", "configMaps", "agentVersions")):
        grown = seeded[key]
        per_object[kind] = {"apiServerKb": round(1000 * (grown["apiServerRssMb"] - seeded[before]["apiServerRssMb"])
                                                 / scale["objects"], 2),
                            "etcdKb": round(1000 * (grown["etcdDbMb"] - seeded[before]["etcdDbMb"]) / scale["objects"], 2)}
    common.report("list-watch", args, results, objects=scale["objects"], objectBytes=size, seeded=seeded,
                  perObject=per_object)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench list-watch", description=__doc__.splitlines()[0])
    common.add_common_arguments(parser, SCALES)
    run(parser.parse_args(argv))
