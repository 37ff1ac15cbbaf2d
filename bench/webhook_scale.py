"""Does admission stay flat as the registry grows? The image guard's cost and the webhook server's memory
at 0, 10,000 and 100,000 AgentVersions (with 100 TenantPolicies), each beside its baseline.

- Pod creates in a tenant's production namespace, one at a time, with the image guard webhook and
  without it, alternated round by round at each size: the ratio must not grow with the number of objects
  (its lookups are index hits in the webhook server's caches, never a list). Beside them, the
  webhook server's own time per decision, from its histogram.
- The webhook server's resident memory once its caches hold every AgentVersion, beside the same
  process with none (started afresh at each size), and the API server's for scale.

    .venv/bin/python bench/webhook_scale.py [--sizes 0,10000,100000] [--pods 200] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from typing import Any

from harness import (Client, Figures, Stack, digest, load, namespaced, print_rows, raise_open_files, ratio,
                     rss_mb, running_stack, write_report)

from gl_api import API_VERSION, labels
from gl_devenv import registry_services, webhook_service

TEAM = "bench-team"
PROD = "bench-prod"
AGENT = "gl-bench-agent"
TENANTS = 100
IMAGE = f"registry.example.com/bench@{digest('certified image')}"


def version(n: int) -> dict[str, Any]:
    text = f"1.{n // 1000}.{n % 1000}"
    return {"apiVersion": API_VERSION, "kind": "AgentVersion", "metadata": {"name": f"{AGENT}-{text}"},
            "spec": {"agent": AGENT, "version": text,
                     "artifact": {"uri": f"s3://greenlang-agents/sha256/{digest(text)[7:]}", "digest": digest(text)},
                     "image": f"registry.example.com/bench@{digest('image ' + text)}"}}


def tenant(n: int) -> dict[str, Any]:
    environments = [{"name": "production", "namespace": PROD}] if n == 0 else \
        [{"name": "production", "namespace": f"bench-tenant-{n}-prod"}, {"name": "dev", "namespace": f"bench-tenant-{n}-dev"}]
    return {"apiVersion": API_VERSION, "kind": "TenantPolicy", "metadata": {"name": f"bench-tenant-{n}"},
            "spec": {"displayName": f"Tenant {n}", "environments": environments,
                     "members": [{"kind": "User", "name": f"user-{n}", "role": "developer"}]}}


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "agent", "image": IMAGE}], "terminationGracePeriodSeconds": 0}}


def _metric(stack: Stack, prefix: str) -> float:
    port = webhook_service.ports(stack.cluster)[2]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(prefix):
                return float(line.split()[-1])
    return 0.0


def cached_versions(stack: Stack) -> int:
    return int(_metric(stack, 'greenlang_registry_cache_objects{kind="AgentVersion"}') or -1)


def guard_seconds(stack: Stack) -> tuple[float, float]:
    """(total seconds, decisions) the webhook server itself spent on the image guard for Pods so far."""
    labels_ = '{engine="opa",webhook="images-pods"}'
    return (_metric(stack, f"greenlang_registry_webhook_duration_seconds_sum{labels_}"),
            _metric(stack, f"greenlang_registry_webhook_duration_seconds_count{labels_}"))


def remove_pods(stack: Stack) -> None:
    """Gone before the next round, so neither mode pays for the other's clean-up."""
    stack.kubectl("delete", "pods", "--all", "-n", PROD, "--grace-period=0", "--force", "--wait=false")
    while stack.kubectl("get", "pods", "-n", PROD, "-o", "name").strip():
        time.sleep(0.5)


def wait_cached(stack: Stack, count: int) -> None:
    deadline = time.monotonic() + 600
    while cached_versions(stack) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the webhook server cached {cached_versions(stack)} of {count} AgentVersions")
        time.sleep(0.5)


def restart_webhooks(stack: Stack) -> float:
    """A fresh webhook server; seconds until ready (its caches listed everything)."""
    stack.cluster.processes.stop(webhook_service.WEBHOOKS)
    started = time.monotonic()
    webhook_service.start_webhooks(stack.cluster, stack.opa_url, registry_services.OPERATOR_IDENTITY, timeout=600,
                                   register=False)
    return time.monotonic() - started


async def seed(client: Client, first: int, last: int) -> None:
    figures = Figures("seed")

    async def create(n: int) -> tuple[int, str]:
        return await client.create(namespaced("agentversions", TEAM), version(n))

    await load(figures, create, first, last - first, 32)
    if figures.errors:
        raise RuntimeError(f"{figures.errors} AgentVersions were not created")


async def guard_rounds(stack: Stack, client: Client, size: int, pods: int, rounds: int
                       ) -> tuple[dict[str, Figures], float]:
    """Latencies by mode, and the webhook server's own mean time per guard decision (ms)."""
    figures = {"without guard": Figures(f"{size} without"), "with guard": Figures(f"{size} with")}
    own_before = guard_seconds(stack)
    for number in range(rounds):
        for mode in (("without guard", "with guard") if number % 2 == 0 else ("with guard", "without guard")):
            await asyncio.to_thread(stack.set_webhooks, mode == "with guard", version(999_997), TEAM)

            async def create(n: int, prefix: str = f"p{size}-{number}-{mode[:4]}") -> tuple[int, str]:
                return await client.create(f"/api/v1/namespaces/{PROD}/pods", pod(f"{prefix}-{n}"))

            await load(Figures("warm-up"), create, 100_000, 10, 1)
            await load(figures[mode], create, 0, pods, 1)
            await asyncio.to_thread(remove_pods, stack)
    own_after = guard_seconds(stack)
    own = (own_after[0] - own_before[0]) / max(own_after[1] - own_before[1], 1) * 1000
    return figures, own


async def run(stack: Stack, sizes: list[int], pods: int, rounds: int) -> tuple[list[dict], list[dict]]:
    client = Client(stack.cluster)
    guard_rows, memory_rows = [], []
    seeded = 0
    try:
        for size in sizes:
            await asyncio.to_thread(stack.set_webhooks, False, version(999_997), TEAM)
            started = time.monotonic()
            await seed(client, seeded, size)
            print(f"  seeded {size - seeded} AgentVersions in {time.monotonic() - started:.0f}s", file=sys.stderr)
            seeded = size
            await asyncio.to_thread(wait_cached, stack, size + 1)
            grown = rss_mb(stack.webhooks_pid)
            ready_after = await asyncio.to_thread(restart_webhooks, stack)
            fresh = rss_mb(stack.webhooks_pid)
            apiserver = rss_mb(stack.cluster.processes.pid("kube-apiserver") or 0)
            memory_rows.append({"agentversions": size, "webhooks_rss_mb_fresh": round(fresh, 1),
                                "webhooks_rss_mb_after_growth": round(grown, 1),
                                "ready_after_s": round(ready_after, 1), "apiserver_rss_mb": round(apiserver, 1)})
            figures, own = await guard_rounds(stack, client, size, pods, rounds)
            without, with_guard = figures["without guard"].summary(), figures["with guard"].summary()
            guard_rows += [{"agentversions": size, "mode": "without guard", **without},
                           {"agentversions": size, "mode": "with guard", **with_guard,
                            "webhook_own_mean_ms": round(own, 3)},
                           {"agentversions": size, "mode": "ratio", "p50_ms": ratio(with_guard, without, "p50_ms"),
                            "p95_ms": ratio(with_guard, without, "p95_ms"),
                            "p99_ms": ratio(with_guard, without, "p99_ms")}]
            print(f"  size {size} done", file=sys.stderr)
    finally:
        await client.close()
    return guard_rows, memory_rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,10000,100000", help="AgentVersion counts (default: %(default)s)")
    parser.add_argument("--pods", type=int, default=200, help="Pod creates per mode and round")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per size")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    raise_open_files()
    with running_stack() as stack:
        stack.kubectl("create", "namespace", TEAM)
        stack.apply(*[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROD, "labels": {
            labels.TENANT: "bench-tenant-0", labels.ENVIRONMENT: "production"}}}],
            {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": AGENT, "namespace": TEAM},
             "spec": {"displayName": "Benchmark agent", "domain": "bench.scale", "type": "calculator"}},
            *[tenant(n) for n in range(TENANTS)])
        # The version whose image the Pods run, certified (as the operator would record it).
        certified = version(999_999)
        certified["spec"]["image"] = IMAGE
        stack.set_webhooks(False, version(999_997), TEAM)
        stack.apply({**certified, "metadata": {**certified["metadata"], "namespace": TEAM}})
        stack.kubectl("patch", "agentversion", certified["metadata"]["name"], "-n", TEAM, "--subresource=status",
                      "--type=merge", "-p", json.dumps({"status": {"state": "certified"}}))
        guard_rows, memory_rows = asyncio.run(run(stack, sizes, args.pods, args.rounds))
    print_rows(f"Pod creates in a production namespace, {args.rounds} alternating rounds of {args.pods} per mode, "
               f"{TENANTS} TenantPolicies (the ratio must stay flat)", guard_rows,
               ["agentversions", "mode", "n", "errors", "p50_ms", "p95_ms", "p99_ms", "webhook_own_mean_ms"])
    print_rows("Memory with every AgentVersion cached", memory_rows, list(memory_rows[0]))
    write_report("webhook_scale", {"sizes": sizes, "tenants": TENANTS, "pods": args.pods, "rounds": args.rounds,
                                   "image_guard": guard_rows, "memory": memory_rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
