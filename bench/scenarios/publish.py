"""`python -m bench publish`: a publish end to end at 1, 10 and 50 a second, and publish -> searchable.

The stack is the product's own: `gl-dev up --no-node` in a directory of its own (control plane,
admission policies, OPA, webhooks, operator, S3, Postgres, the mirror). Each publish does what
`gl agent publish` does, in the benchmark's process so that one small machine can send 50 a
second: upload a 1 MB artifact (random bytes, so S3 never finds it already there) with its SHA-256
checksum and read the server's digest back, create the AgentVersion, then wait for

- ``accepted``: the operator's ``Accepted=True`` condition, seen on a watch (what `gl agent publish`
  waits for before it returns);
- ``searchable``: the version's row in the mirror's search table, which every search reads (polled
  every 10 ms straight from Postgres, so the poll adds no API server load).

Open loop: each publish starts on its schedule and its latency counts from then, so a slow one
cannot hide the ones queued behind it. Baseline at the same rate, alternated round by round: the
same bytes moved the plainest way, the same S3 upload and a create of a ConfigMap of the
AgentVersion's size (no webhook, no operator, no mirror). Targets (issue 13): accepted p95 < 300 ms,
searchable p95 < 1 s.

And `gl agent publish` itself, as the process a user runs, a few times at the lowest rate, beside
`kubectl create` of the same-sized ConfigMap as a process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import Figures
from bench.scenarios import common
from gl_api import API_VERSION, GROUP, VERSION, naming
from gl_cli import artifacts, kube
from gl_devenv import postgres

SCALES = {"tiny": {"rates": (2,), "seconds": 2.0, "rounds": 1, "cli_runs": 1},
          "full": {"rates": (1, 10, 50), "seconds": 12.0, "rounds": 2, "cli_runs": 5}}
NAMESPACE = "bench-publish"
AGENT = "gl-bench-publish"
ARTIFACT_BYTES = 1024 * 1024
WAIT_SECONDS = 60


def start_stack(home: Path) -> dict[str, str]:
    """`gl-dev up --no-node` in ``home``: the environment its exports give a user."""
    run = subprocess.run([str(Path(sys.executable).with_name("gl-dev")), "--home", str(home), "up", "--no-node"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"gl-dev up failed:\n{run.stderr[-3000:]}")
    env: dict[str, str] = {}
    for line in run.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            key, value = line.removeprefix("export ").split("=", 1)
            env[key] = value.replace("$PATH", os.environ.get("PATH", ""))
    return env


def stop_stack(home: Path) -> None:
    subprocess.run([str(Path(sys.executable).with_name("gl-dev")), "--home", str(home), "down"], capture_output=True)


def dsn(home: Path) -> str:
    port = int((home / "postgres.port").read_text())
    return postgres.LocalPostgres(postgres.project_directory(home), port=port).dsn()


def agent_version(version: str, uploaded: artifacts.Uploaded) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "AgentVersion",
            "metadata": {"name": naming.object_name(AGENT, version), "namespace": NAMESPACE,
                         "labels": {"app.kubernetes.io/name": AGENT, "app.kubernetes.io/version": version}},
            "spec": {"agent": AGENT, "version": version,
                     "artifact": {"uri": uploaded.uri, "digest": uploaded.digest, "sizeBytes": uploaded.size},
                     "capabilities": [{"name": "calculate", "description": "calculates embedded emissions of imported "
                                                                           "goods under the EU CBAM"}]}}


class Publisher:
    """What `gl agent publish` does, callable from many threads: S3 upload, then the create."""

    def __init__(self, env: dict[str, str]):
        import boto3

        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        self.bucket, self.endpoint = env["GL_S3_BUCKET"], env["GL_S3_ENDPOINT"]
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint)  # thread-safe; one per process as gl has
        self.kubeconfig = env["KUBECONFIG"]
        self._local = threading.local()

    @property
    def api(self) -> kube.Api:
        if not hasattr(self._local, "api"):  # one kept-alive connection per thread
            self._local.api = kube.connect(self.kubeconfig, None, NAMESPACE).api
        return self._local.api

    def publish(self, version: str) -> float:
        uploaded = artifacts.upload_bytes(os.urandom(ARTIFACT_BYTES), version, self.bucket, self.endpoint,
                                          client=self.s3)
        kube.create(self.api, kube.AGENT_VERSION, NAMESPACE, agent_version(version, uploaded))
        return time.monotonic()

    def baseline(self, number: int, size: int) -> float:
        artifacts.upload_bytes(os.urandom(ARTIFACT_BYTES), f"baseline {number}", self.bucket, self.endpoint,
                               client=self.s3)
        self.api.request("POST", f"/api/v1/namespaces/{NAMESPACE}/configmaps",
                         body={"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": f"bench-publish-{number}", "namespace": NAMESPACE},
                               "data": {"object": "x" * size}})
        return time.monotonic()


class Observer:
    """When each version became Accepted (a watch) and searchable (its row in the search table)."""

    def __init__(self, env: dict[str, str], database: str):
        self.accepted: dict[str, float] = {}
        self.searchable: dict[str, float] = {}
        self._env, self._dsn = env, database
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, daemon=True),
                         threading.Thread(target=self._poll, daemon=True)]

    def __enter__(self) -> Observer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _watch(self) -> None:
        api = kube.connect(self._env["KUBECONFIG"], None, NAMESPACE).api
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/agentversions"
        while not self._stop.is_set():
            for event in api.stream(path, [], 300):
                obj = event.get("object") or {}
                for condition in (obj.get("status") or {}).get("conditions") or []:
                    if condition["type"] == "Accepted" and condition["status"] == "True":
                        self.accepted.setdefault(obj["spec"]["version"], time.monotonic())

    def _poll(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                for (version,) in conn.execute("SELECT version FROM agent_search WHERE namespace = %s AND agent = %s",
                                               (NAMESPACE, AGENT)):
                    self.searchable.setdefault(version, time.monotonic())
                time.sleep(0.01)


async def open_loop(rate: float, seconds: float, send: Any, pool: ThreadPoolExecutor) -> list[tuple[float, Any]]:
    """Call ``send(n)`` in the pool ``rate`` times a second; (scheduled start, result) for each."""
    loop = asyncio.get_running_loop()
    start, count = time.monotonic() + 0.1, max(1, round(rate * seconds))
    futures = []
    for number in range(count):
        scheduled = start + number / rate
        await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
        futures.append((scheduled, loop.run_in_executor(pool, send, number)))
    return [(scheduled, await future) for scheduled, future in futures]


def wait_for(seen: dict[str, float], versions: list[str], timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while any(v not in seen for v in versions) and time.monotonic() < deadline:
        time.sleep(0.05)


def measure(publisher: Publisher, env: dict[str, str], database: str, scale: dict[str, Any],
            size: int) -> dict[str, Figures]:
    figures: dict[str, Figures] = {}
    serial = 0
    with Observer(env, database) as observer, ThreadPoolExecutor(max_workers=128) as pool:
        for rate in scale["rates"]:
            for kind in ("accepted", "searchable", "created", "baseline"):
                figures.setdefault(f"{kind} {rate}/s", Figures(f"{kind} {rate}/s"))
            for number in range(scale["rounds"]):
                for mode in (("publish", "baseline") if number % 2 == 0 else ("baseline", "publish")):
                    serial += 1
                    started = time.monotonic()
                    if mode == "baseline":
                        done = asyncio.run(open_loop(rate, scale["seconds"],
                                                     lambda n, s=serial: publisher.baseline(s * 100_000 + n, size), pool))
                        figures[f"baseline {rate}/s"].samples += [end - begin for begin, end in done]
                        figures[f"baseline {rate}/s"].seconds += time.monotonic() - started
                        continue
                    done = asyncio.run(open_loop(rate, scale["seconds"],
                                                 lambda n, s=serial: (f"{s}.0.{n}", publisher.publish(f"{s}.0.{n}")),
                                                 pool))
                    versions = [version for _, (version, _) in done]
                    wait_for(observer.accepted, versions)
                    wait_for(observer.searchable, versions)
                    elapsed = time.monotonic() - started
                    for begin, (version, created) in done:
                        for kind, seen in (("created", {version: created}), ("accepted", observer.accepted),
                                           ("searchable", observer.searchable)):
                            target = figures[f"{kind} {rate}/s"]
                            if version in seen:
                                target.samples.append(seen[version] - begin)
                            else:
                                target.errors += 1
                            target.seconds += elapsed / len(done)
                    print(f"  {rate}/s round {number + 1}: {len(done)} published", file=sys.stderr)
    return figures


def cli_runs(env: dict[str, str], runs: int, workdir: Path, size: int) -> tuple[Figures, Figures]:
    """`gl agent publish` as a process, beside `kubectl create` of the same-sized ConfigMap as a process."""
    gl, kubectl = Figures("gl agent publish"), Figures("kubectl create configmap")
    process_env = {**os.environ, **env}
    for number in range(runs):
        artifact = workdir / f"artifact-{number}.bin"
        artifact.write_bytes(os.urandom(ARTIFACT_BYTES))
        started = time.monotonic()
        run = subprocess.run([str(Path(sys.executable).with_name("gl")), "agent", "publish", "--id", AGENT,
                              "--version", f"99.0.{number}", "--artifact", str(artifact), "-n", NAMESPACE],
                             env=process_env, capture_output=True, text=True)
        if run.returncode == 0:
            gl.samples.append(time.monotonic() - started)
        else:
            gl.errors += 1
            print(f"  gl agent publish failed: {run.stderr[-500:]}", file=sys.stderr)
        config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"bench-cli-{number}"},
                      "data": {"object": "x" * size}}
        started = time.monotonic()
        run = subprocess.run(["kubectl", "create", "-n", NAMESPACE, "-f", "-"], input=json.dumps(config_map),
                             env=process_env, capture_output=True, text=True)
        if run.returncode == 0:
            kubectl.samples.append(time.monotonic() - started)
        else:
            kubectl.errors += 1
        time.sleep(1)
    gl.seconds, kubectl.seconds = float(runs), float(runs)
    return gl, kubectl


def prepare(env: dict[str, str], publisher: Publisher) -> int:
    """The namespace, the Agent and a first version; returns that version's size as served (for the baseline)."""
    process_env = {**os.environ, **env}
    for args, input in ((("create", "namespace", NAMESPACE), None),
                        (("apply", "-f", "-"), json.dumps({
                            "apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": AGENT, "namespace": NAMESPACE},
                            "spec": {"displayName": "Publish benchmark", "domain": "bench.publish",
                                     "type": "calculator"}}))):
        run = subprocess.run(["kubectl", *args], input=input, env=process_env, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {run.stderr.strip()}")
    publisher.publish("0.0.1")
    first = kube.watch_object(publisher.api, kube.AGENT_VERSION, NAMESPACE, naming.object_name(AGENT, "0.0.1"),
                              WAIT_SECONDS)
    served = next(v for v in first if (v.get("status") or {}).get("state"))
    return len(json.dumps(served))


def run(args: argparse.Namespace) -> None:
    scale = SCALES[args.scale]
    home = Path(tempfile.mkdtemp(prefix="gl-bench-publish-"))
    print(f"starting gl-dev up --no-node in {home} ...", file=sys.stderr)
    try:
        env = start_stack(home)
        publisher = Publisher(env)
        size = prepare(env, publisher)
        # The process runs first, on an idle registry, as a user publishing alone sees it.
        gl, kubectl = cli_runs(env, scale["cli_runs"], home, size)
        figures = measure(publisher, env, dsn(home), scale, size)
    finally:
        stop_stack(home)
    results = []
    for rate in scale["rates"]:
        baseline = figures[f"baseline {rate}/s"]
        for kind in ("accepted", "searchable", "created"):
            results.append(common.compare(f"publish -> {kind} at {rate}/s", figures[f"{kind} {rate}/s"], baseline,
                                          f"S3 upload + ConfigMap create at {rate}/s"))
    results.append(common.compare("gl agent publish (process)", gl, kubectl, "kubectl create configmap (process)"))
    common.report("publish", args, results, artifactBytes=ARTIFACT_BYTES,
                  targets={"accepted_p95_ms": 300, "searchable_p95_ms": 1000})


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench publish", description=__doc__.splitlines()[0])
    common.add_common_arguments(parser, SCALES, reuse_cluster=False)
    run(parser.parse_args(argv))
