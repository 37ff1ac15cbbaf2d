"""The image guard's own work, in-process, against caches of growing size: does a lookup cost more
when the registry holds 100,000 AgentVersions than when it holds none?

No Kubernetes and no network: the webhook server's handler (`Admission.images`) with its real
caches filled directly (as their informers would fill them) and the embedded regopy engine, so
only the handler's lookups and the decision are timed. The baseline is the same handler with
empty caches, in the same run.

    .venv/bin/python bench/guard_handler.py [--sizes 0,10000,100000] [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from harness import Figures, print_rows, write_report

from gl_policy import engines, views
from gl_webhooks.admission import Admission, Request
from gl_webhooks.caches import Caches

PROD = "bench-prod"
CERTIFIED = 10**9


def version(n: int) -> views.Version:
    return views.Version.of({
        "metadata": {"name": f"gl-bench-agent-1.{n // 1000}.{n % 1000}", "namespace": "bench-team"},
        "spec": {"agent": "gl-bench-agent", "version": f"1.{n // 1000}.{n % 1000}",
                 "image": f"registry.example.com/bench@sha256:{n:064x}"},
        "status": {"state": "certified"}})


def caches(size: int, tenants: int = 100) -> Caches:
    filled = Caches(api=None)  # informers never started: the stores are filled here instead
    filled.tenants.store.replace({("", f"t{n}"): views.tenant({"metadata": {"name": f"t{n}"}, "spec": {
        "environments": [{"name": "production", "namespace": PROD if n == 0 else f"t{n}-prod"}]}})
        for n in range(tenants)})
    filled.versions.store.replace({("bench-team", f"v{n}"): version(n) for n in [*range(size), CERTIFIED]})
    return filled


async def measure(size: int, requests: int, engine: engines.Engine) -> Figures:
    admission = Admission(caches(size), engine, None, "operator")
    request = Request.of({"request": {"uid": "bench", "operation": "CREATE", "namespace": PROD,
                                      "userInfo": {"username": "bench"}, "object": {
                                          "kind": "Pod", "metadata": {"name": "web"},
                                          "spec": {"containers": [{"name": "agent", "image": version(CERTIFIED).image}]}}}})
    figures = Figures(f"{size} AgentVersions cached")
    for _ in range(requests):
        start = time.perf_counter()
        answer = await admission.answer("images-pods", request)
        figures.samples.append(time.perf_counter() - start)
        assert answer.allowed, answer.message
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,10000,100000")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    engine = engines.RegoEngine()
    rows = [asyncio.run(measure(int(size), args.requests, engine)).summary() for size in args.sizes.split(",")]
    print_rows(f"The image guard handler in-process, {args.requests} decisions per size (baseline: size 0)", rows,
               ["label", "n", "p50_ms", "p95_ms", "p99_ms", "mean_ms"])
    write_report("guard_handler", {"requests": args.requests, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
