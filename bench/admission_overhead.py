"""What the registry's admission costs a write, against the same writes without it, in one run.

Creates AgentVersions and Promotions through the API server in three modes, alternated round by
round so all see the same machine:

- ``api-server``: no admission of ours at all (every admission policy of ours unbound, no webhooks);
- ``cel``: the admission policies inside the API server (identity stamping and checks, the
  promotion-identity rules, the release records an AgentVersion create is checked against) — the
  baseline the target is measured against;
- ``webhooks``: those plus the registry's webhooks (``publish`` and ``promotion``, deciding with OPA).

at 1 and at 16 concurrent clients. Target: webhooks/cel p50 <= 1.5 and p99 <= 2.5 at both.

    .venv/bin/python bench/admission_overhead.py [--requests 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from harness import (Client, CpuMeter, Figures, Stack, digest, load, namespaced, print_rows, raise_open_files,
                     ratio, running_stack, write_report)

from gl_api import API_VERSION

NAMESPACE = "bench-admission"
AGENT = "gl-bench-agent"
MODES = ("api-server", "cel", "webhooks")
CONCURRENCY = (1, 16)


def version(text: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "AgentVersion", "metadata": {"name": f"{AGENT}-{text}"},
            "spec": {"agent": AGENT, "version": text,
                     "artifact": {"uri": f"s3://greenlang-agents/sha256/{digest(text)[7:]}", "digest": digest(text)},
                     "image": f"registry.example.com/bench@{digest('image' + text)}",
                     "capabilities": [{"name": "calculate", "description": "a benchmark capability"}]}}


def promotion(name: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "Promotion", "metadata": {"name": name},
            "spec": {"agentVersion": f"{AGENT}@1.0.0", "targetState": "experimental", "reason": "benchmark"}}


def set_mode(stack: Stack, mode: str) -> None:
    probe = version("0.0.1")
    del probe["spec"]["capabilities"]  # the publish webhook warns about that: a sign it was asked
    stack.set_policies(mode != "api-server", probe, NAMESPACE)
    stack.set_webhooks(mode == "webhooks", probe, NAMESPACE)


async def measure(stack: Stack, requests: int, rounds: int) -> dict[tuple[str, int, str], Figures]:
    client = Client(stack.cluster)
    figures = {(kind, c, m): Figures(f"{kind} c={c} {m}") for kind in ("AgentVersion", "Promotion")
               for c in CONCURRENCY for m in MODES}
    serial = 0
    try:
        for concurrency in CONCURRENCY:
            for number in range(rounds):
                order = MODES[number % 3:] + MODES[:number % 3]  # no mode always first or last
                for mode in order:
                    await asyncio.to_thread(set_mode, stack, mode)
                    serial += 1
                    prefix = serial

                    async def create_version(n: int) -> tuple[int, str]:
                        return await client.create(namespaced("agentversions", NAMESPACE), version(f"{prefix}.0.{n}"))

                    async def create_promotion(n: int) -> tuple[int, str]:
                        return await client.create(namespaced("promotions", NAMESPACE), promotion(f"p{prefix}-{n}"))

                    warmup = Figures("warm-up")
                    await load(warmup, create_version, 100_000, 2 * concurrency, concurrency)
                    await load(warmup, create_promotion, 100_000, 2 * concurrency, concurrency)
                    await load(figures[("AgentVersion", concurrency, mode)], create_version, 0, requests, concurrency)
                    await load(figures[("Promotion", concurrency, mode)], create_promotion, 0, requests, concurrency)
                    print(f"  c={concurrency} round {number + 1}/{rounds} {mode} done", file=sys.stderr)
    finally:
        await client.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="creates per kind, mode and round "
                                                                  "(default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per concurrency "
                                                             "(default: %(default)s)")
    args = parser.parse_args()
    raise_open_files()
    with running_stack() as stack:
        stack.kubectl("create", "namespace", NAMESPACE)
        stack.apply({"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": AGENT, "namespace": NAMESPACE},
                     "spec": {"displayName": "Benchmark agent", "domain": "bench.admission", "type": "calculator"}},
                    {**version("1.0.0"), "metadata": {"name": f"{AGENT}-1.0.0", "namespace": NAMESPACE}})
        with CpuMeter() as client_cpu:
            figures = asyncio.run(measure(stack, args.requests, args.rounds))
    rows, ratios = [], []
    for kind in ("AgentVersion", "Promotion"):
        for concurrency in CONCURRENCY:
            summaries = {m: figures[(kind, concurrency, m)].summary() for m in MODES}
            rows += [{"kind": kind, "clients": concurrency, "mode": m, **summaries[m]} for m in MODES]
            ratios.append({"kind": kind, "clients": concurrency,
                           "p50 webhooks/cel": ratio(summaries["webhooks"], summaries["cel"], "p50_ms"),
                           "p99 webhooks/cel": ratio(summaries["webhooks"], summaries["cel"], "p99_ms"),
                           "p50 webhooks/api-server": ratio(summaries["webhooks"], summaries["api-server"], "p50_ms"),
                           "p99 webhooks/api-server": ratio(summaries["webhooks"], summaries["api-server"], "p99_ms")})
    print_rows(f"Creates through the API server, {args.rounds} alternating rounds of {args.requests} per mode "
               f"(client used {client_cpu.share:.0%} of a core)", rows,
               ["kind", "clients", "mode", "n", "errors", "p50_ms", "p95_ms", "p99_ms", "per_second"])
    print_rows("Ratios (target: p50 webhooks/cel <= 1.5, p99 webhooks/cel <= 2.5)", ratios, list(ratios[0]))
    write_report("admission_overhead", {"requests": args.requests, "rounds": args.rounds,
                                        "client_cpu_share": round(client_cpu.share, 3), "rows": rows,
                                        "ratios": ratios})
    return 0


if __name__ == "__main__":
    sys.exit(main())
