"""How long one policy decision takes per engine, without Kubernetes, beside what surrounds it.

For the OPA server (over HTTP, keep-alive, as the webhook server asks it) and the embedded regopy
interpreter, on realistic inputs of three decisions (publish, deployment, images). Baselines in
the same run: an HTTP round trip to OPA that evaluates nothing (`/health`), and regopy the way it
used to be asked (the modules queried directly, which recompiles them on every query).
Target: OPA p99 < 5 ms.

    .venv/bin/python bench/decision_time.py [--decisions 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from harness import REPO, Figures, print_rows, write_report

from gl_devenv import webhook_service
from gl_devenv.cluster import LocalCluster
from gl_policy import engines, inputs, policy_files, views


def _examples() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for path in sorted((REPO / "examples").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text())}


def cases() -> dict[str, dict[str, Any]]:
    ex = _examples()
    version = copy.deepcopy(ex["AgentVersion"])
    version["metadata"]["namespace"] = "climate-team"
    version["status"] = {"state": "certified"}
    user = {"username": "alice@abc.example.com", "groups": ["system:authenticated", "cbam-team"]}
    deployment = copy.deepcopy(ex["AgentDeployment"])
    deployment["metadata"]["namespace"] = "customer-abc-123-prod"
    pod = {"kind": "Pod", "metadata": {"name": "web"},
           "spec": {"containers": [{"name": "agent", "image": version["spec"]["image"]}]}}
    cached = views.Version.of(version)
    return {
        "publish": inputs.publish(version, user, "CREATE", views.agent(ex["Agent"]), [views.tenant(ex["TenantPolicy"])]),
        "deployment": inputs.deployment(deployment, user, "CREATE", views.agent(ex["Agent"]), cached.as_input(), None,
                                        views.tenant(ex["TenantPolicy"]), 1),
        "images": inputs.images(pod, "customer-abc-123-prod", views.tenant(ex["TenantPolicy"]),
                                {cached.digest or "": [cached]}),
    }


async def opa_figures(url: str, token: str, count: int) -> list[Figures]:
    engine = engines.OpaServerEngine(url, token=token)
    await engine.start()
    result = []
    try:
        async with aiohttp.ClientSession() as session:
            health = Figures("OPA: HTTP round trip, no policy (/health)")
            for _ in range(count):
                start = time.perf_counter()
                async with session.get(f"{url}/health") as reply:
                    await reply.read()
                health.samples.append(time.perf_counter() - start)
            result.append(health)
        for decision, data in cases().items():
            figures = Figures(f"OPA server: {decision}")
            for _ in range(count):
                start = time.perf_counter()
                await engine.decide(decision, data)
                figures.samples.append(time.perf_counter() - start)
            result.append(figures)
    finally:
        await engine.close()
    return result


def regopy_figures(count: int) -> list[Figures]:
    from regopy import Input, Interpreter

    engine = engines.RegoEngine()
    result = []
    for decision, data in cases().items():
        figures = Figures(f"regopy, compiled once: {decision}")
        for _ in range(count):
            start = time.perf_counter()
            engine.evaluate(decision, data)
            figures.samples.append(time.perf_counter() - start)
        result.append(figures)
    # Before: every query compiled the modules again.
    interpreter = Interpreter()
    for path in policy_files():
        interpreter.add_module(str(path.relative_to(path.parents[1])), path.read_text())
    before = Figures("regopy, modules queried directly (before): publish")
    for _ in range(max(20, count // 20)):
        start = time.perf_counter()
        interpreter.set_input(Input(cases()["publish"]))
        interpreter.query('x := data.greenlang.publish.decision')
        before.samples.append(time.perf_counter() - start)
    result.append(before)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=2000, help="decisions per engine and case")
    args = parser.parse_args()
    home = LocalCluster(Path(tempfile.mkdtemp(prefix="gl-bench-opa-")))  # a process directory; no cluster
    url = webhook_service.start_opa(home)
    try:
        figures = asyncio.run(opa_figures(url, webhook_service.opa_token_file(home).read_text(), args.decisions)) + regopy_figures(args.decisions)
    finally:
        home.processes.stop(webhook_service.OPA)
    rows = [f.summary() for f in figures]
    print_rows(f"One decision, {args.decisions} per case (target: OPA p99 < 5 ms)", rows,
               ["label", "n", "p50_ms", "p95_ms", "p99_ms", "mean_ms"])
    write_report("decision_time", {"decisions": args.decisions, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
