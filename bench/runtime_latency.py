"""The runtime's own costs: invoke latency of the CBAM calculator in its pods at 10, 50 and 200
requests/s next to the same calculation called in this process, the time from applying an
AgentDeployment to Available, and the time from a canary's first failed request to its rollback.

    .venv/bin/python bench/runtime_latency.py [--seconds 20] [--rates 10,50,200]

Needs root and what `gl-dev up` needs (it starts a control plane, the real node, Prometheus, S3
and the operator in a temporary directory). Load is open-loop: requests are sent on a fixed
schedule and latency counts from the scheduled time, so a slow answer cannot hide the ones
queued behind it. Requests go to the pods' addresses from the Service's EndpointSlices (what
kube-proxy would balance over), with keep-alive, as a client in the cluster would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import boto3
from kubernetes import client, config

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from harness import CpuMeter, Figures, print_rows, ratio, write_report  # noqa: E402

from gl_api import GROUP, VERSION, artifact  # noqa: E402
from gl_devenv import crd_install, node, prometheus, registry_services  # noqa: E402
from gl_devenv.cluster import LocalCluster  # noqa: E402

CBAM = REPO / "examples" / "agents" / "cbam-calculator"
CBAM_DEFECTIVE = REPO / "examples" / "agents" / "cbam-calculator-2.4.0"
AGENT = "gl-cbam-calculator-v2"
CAPABILITY = "calculate-embedded-emissions"
TEAM, ENV = "bench-team", "bench-dev"
STEEL = {"cnCode": "72081000", "quantityTonnes": 12.5, "countryOfOrigin": "BR"}
BODIES = [STEEL, {"cnCode": "25232900", "quantityTonnes": 40, "countryOfOrigin": "TR"},
          {"cnCode": "76011000", "quantityTonnes": 3, "countryOfOrigin": "CN"}]
BUCKET = registry_services.S3_BUCKET


class Bench:
    def __init__(self, cluster: LocalCluster, s3: dict[str, str]):
        self.cluster = cluster
        self.s3 = s3
        self.api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self.custom = client.CustomObjectsApi(self.api)

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.cluster.kubectl(*args, input=input).stdout

    def apply(self, obj: dict[str, Any], namespace: str | None = None) -> None:
        self.kubectl("apply", *(["-n", namespace] if namespace else []), "-f", "-", input=json.dumps(obj))

    def publish(self, project: Path, version: str) -> None:
        """What `gl agent publish` does: the artifact content-addressed in S3, then the objects."""
        data = artifact.pack(project)
        manifest = artifact.read_manifest(data)
        digest = artifact.digest(data)
        key = f"sha256/{digest.removeprefix('sha256:')}"
        boto3.client("s3", endpoint_url=self.s3["GL_S3_ENDPOINT"]).put_object(Bucket=BUCKET, Key=key, Body=data)
        self.apply({"apiVersion": f"{GROUP}/{VERSION}", "kind": "Agent", "metadata": {"name": AGENT},
                    "spec": manifest.agent.to_k8s()}, TEAM)
        name = f"{AGENT}-{version}"
        self.apply({"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentVersion", "metadata": {"name": name},
                    "spec": {"agent": AGENT, "version": version,
                             "artifact": {"uri": f"s3://{BUCKET}/{key}", "digest": digest, "sizeBytes": len(data)},
                             "capabilities": [c.to_k8s() for c in manifest.capabilities]}}, TEAM)
        self.until(lambda: self.status("agentversions", TEAM, name).get("state") == "draft", f"{name} draft")
        # The lifecycle is not measured here: set the state as the operator, the only user the API server lets.
        self.kubectl("patch", "agentversion", name, "-n", TEAM, "--subresource=status", "--type=merge", "-p",
                     json.dumps({"status": {"state": "experimental"}}), f"--as={registry_services.OPERATOR_IDENTITY}",
                     "--as-group=system:masters")
        self.until(lambda: self.status("agentversions", TEAM, name).get("state") == "experimental",
                   f"{name} experimental")

    def status(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name).get("status") or {}
        except client.ApiException:
            return {}

    def glad(self) -> dict[str, Any]:
        return self.status("agentdeployments", ENV, "cbam")

    def endpoints(self) -> list[str]:
        slices = client.DiscoveryV1Api(self.api).list_namespaced_endpoint_slice(
            ENV, label_selector="kubernetes.io/service-name=cbam").items
        return sorted(a for s in slices for e in (s.endpoints or []) if not e.conditions or e.conditions.ready
                      for a in e.addresses)

    def events(self, reason: str) -> list[str]:
        return [e.message for e in client.CoreV1Api(self.api).list_namespaced_event(
            ENV, field_selector="involvedObject.name=cbam").items if e.reason == reason]

    @staticmethod
    def until(probe, what: str, timeout: float = 180, interval: float = 0.1) -> float:  # type: ignore[no-untyped-def]
        started = time.monotonic()
        while not probe():
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(interval)
        return time.monotonic() - started


async def open_loop(targets: list[str], rate: float, seconds: float, bodies: list[dict]) -> tuple[Figures, dict]:
    """``rate`` requests/s for ``seconds``, round-robin over ``targets``; latency from the scheduled send."""
    figures = Figures(f"{rate:g}/s runtime")
    codes: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        async def one(n: int, scheduled: float) -> None:
            url = f"http://{targets[n % len(targets)]}:8080/v1/capabilities/{CAPABILITY}:invoke"
            try:
                async with session.post(url, json=bodies[n % len(bodies)]) as reply:
                    await reply.read()
                    codes[reply.status] = codes.get(reply.status, 0) + 1
                    figures.samples.append(time.monotonic() - scheduled)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                figures.errors += 1

        start = time.monotonic()
        tasks = []
        total = int(rate * seconds)
        for n in range(total):
            scheduled = start + n / rate
            await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
            tasks.append(asyncio.create_task(one(n, scheduled)))
        await asyncio.gather(*tasks)
        figures.seconds = time.monotonic() - start
    return figures, codes


def in_process(rate: float, seconds: float) -> Figures:
    """The same calculations called directly, at the same schedule: the cost without the runtime."""
    sys.path.insert(0, str(CBAM))
    calculate = importlib.import_module("cbam_calculator.agent").CAPABILITIES[CAPABILITY]
    figures = Figures(f"{rate:g}/s in-process")
    start = time.monotonic()
    for n in range(int(rate * seconds)):
        scheduled = start + n / rate
        time.sleep(max(0.0, scheduled - time.monotonic()))
        begun = time.monotonic()
        calculate(dict(BODIES[n % len(BODIES)]))
        figures.samples.append(time.monotonic() - max(begun, scheduled))
    figures.seconds = time.monotonic() - start
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="seconds of load per rate")
    parser.add_argument("--rates", default="10,50,200", help="requests per second, comma-separated")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="gl-bench-runtime-"))
    cluster = LocalCluster(workdir)
    real = node.RealNode(cluster)
    report: dict[str, Any] = {"rates": []}
    try:
        cluster.start()
        crd_install.install(cluster)
        real.start()
        assert real.runtime_image is not None
        metrics_url = prometheus.start(cluster)
        s3 = registry_services.start_s3(cluster, host=node.NODE_IP)
        registry_services.start_operator(
            cluster, {"deployments": {"reconcileSeconds": 1, "placement": node.placement()}},
            env={"GL_RUNTIME_IMAGE": real.runtime_image.pinned, "GL_PROMETHEUS_URL": metrics_url, **s3})
        bench = Bench(cluster, s3)
        bench.kubectl("create", "namespace", TEAM)
        bench.apply({"apiVersion": f"{GROUP}/{VERSION}", "kind": "TenantPolicy", "metadata": {"name": "bench"},
                     "spec": {"environments": [{"name": "dev", "namespace": ENV,
                                                "allowedStates": ["experimental", "certified"]}]}})
        bench.until(lambda: ENV in bench.kubectl("get", "namespaces"), "the tenant namespace")
        bench.publish(CBAM, "2.3.1")

        # --- apply → Available
        glad = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentDeployment", "metadata": {"name": "cbam"},
                "spec": {"agent": f"{TEAM}/{AGENT}", "versionRange": ">=2.3.0 <3.0.0", "replicas": 2,
                         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                         "strategy": {"type": "Canary", "steps": [{"weight": 50, "pauseSeconds": 5}, {"weight": 100}],
                                      "analysis": {"windowSeconds": 10, "minRequests": 5, "failureLimit": 1}},
                         "slo": {"errorRate": 0.005, "p95LatencyMs": 500}}}
        applied = time.monotonic()
        bench.apply(glad, ENV)
        bench.until(lambda: bench.glad().get("phase") == "Available", "Available")
        report["apply_to_available_s"] = round(time.monotonic() - applied, 2)
        targets = bench.endpoints()

        # --- invoke latency, alternating runtime and in-process at each rate
        rows = []
        for rate in rates:
            with CpuMeter() as cpu:
                runtime, codes = asyncio.run(open_loop(targets, rate, args.seconds, BODIES))
            baseline = in_process(rate, args.seconds)
            r, b = runtime.summary(), baseline.summary()
            rows += [{**r, "codes": codes, "client_cpu": f"{cpu.share:.0%}"}, b]
            report["rates"].append({"rate": rate, "runtime": r, "codes": codes, "in_process": b,
                                    "overhead_p50_ms": round(r["p50_ms"] - b["p50_ms"], 2),
                                    "ratio_p50": ratio(r, b, "p50_ms")})
        print_rows("invoke latency (ms), open loop, 2 pods on the real node", rows,
                   ["label", "n", "errors", "p50_ms", "p95_ms", "p99_ms", "per_second", "codes", "client_cpu"])

        # --- breach → rollback: a canary of the defective 2.4.0 under load
        async def breach() -> dict[str, float]:
            first_failure: list[float] = []
            marks: dict[str, float] = {}
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=5)) as s:
                stop = time.monotonic() + 240
                n = 0
                while time.monotonic() < stop and "complete" not in marks:
                    ips = await asyncio.to_thread(bench.endpoints)
                    for ip in ips:
                        n += 1
                        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                            async with s.post(f"http://{ip}:8080/v1/capabilities/{CAPABILITY}:invoke",
                                              json=BODIES[n % len(BODIES)]) as reply:
                                if reply.status >= 500 and not first_failure:
                                    first_failure.append(time.monotonic())
                    if "publish" not in marks:
                        marks["publish"] = time.monotonic()
                        await asyncio.to_thread(bench.publish, CBAM_DEFECTIVE, "2.4.0")
                    if first_failure and "rolled_back" not in marks and await asyncio.to_thread(bench.events,
                                                                                               "RolledBack"):
                        marks["rolled_back"] = time.monotonic()
                    if "rolled_back" in marks and "complete" not in marks:
                        pods = await asyncio.to_thread(lambda: client.CoreV1Api(bench.api).list_namespaced_pod(
                            ENV, label_selector="registry.greenlang.ai/deployment=cbam").items)
                        if {p.metadata.labels["registry.greenlang.ai/version"] for p in pods} == {"2.3.1"}:
                            marks["complete"] = time.monotonic()
                    await asyncio.sleep(0.05)
            start = first_failure[0]
            return {"first_failure_to_rollback_decided_s": round(marks["rolled_back"] - start, 2),
                    "first_failure_to_rollback_complete_s": round(marks["complete"] - start, 2)}

        report["breach"] = asyncio.run(breach())
        report["breach"]["analysis"] = glad["spec"]["strategy"]["analysis"]
        print(f"\napply → Available: {report['apply_to_available_s']} s (2 replicas, images cached)")
        print(f"breach → rollback: decided {report['breach']['first_failure_to_rollback_decided_s']} s, complete "
              f"{report['breach']['first_failure_to_rollback_complete_s']} s after the first failed request "
              f"(analysis window 10 s, scrape 2 s, reconcile 1 s)")
        write_report("runtime_latency", report)
        return 0
    finally:
        with contextlib.suppress(Exception):
            registry_services.stop_operator(cluster)
        cluster.processes.stop(registry_services.S3)
        prometheus.stop(cluster)
        real.stop()
        cluster.stop()
        if not os.environ.get("GL_BENCH_KEEP"):
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
