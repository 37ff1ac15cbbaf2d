"""`python -m bench cli-startup`: `gl --help` and `gl agent list -A` against `kubectl get agents -A`.

Each command runs as a fresh process, as a user types it, alternated with its baseline round by
round; wall time and the CPU time the process used (less sensitive to a busy machine) are both
reported. Baselines: `kubectl get` of the same objects, and `python -c pass` (the interpreter's
own start) for `gl --help`; and, beside kubectl, the floor of a Python CLI on these libraries
(a process that only imports typer, ssl, http.client, json and yaml). Targets (issue 13): `gl --help` < 300 ms, `gl agent list` <= 1.5x `kubectl get`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import Figures
from bench.scenarios import common
from gl_api import API_VERSION
from gl_devenv import build

SCALES = {"tiny": {"agents": 3, "runs": 3}, "full": {"agents": 100, "runs": 20}}
NAMESPACE = "bench-cli"
IMPORT_FLOOR = "python: import typer, ssl, http.client, json, yaml"


def gl() -> list[str]:
    installed = Path(sys.executable).with_name("gl")
    return [str(installed)] if installed.exists() else [sys.executable, "-c", "from gl_cli.main import main; main()"]


def seed(cluster: Any, count: int) -> None:
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    agents = [{"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": f"bench-agent-{n}", "namespace": NAMESPACE},
               "spec": {"displayName": f"Bench Agent {n}", "domain": "sustainability.cbam", "type": "calculator",
                        "description": "an agent for the start-up benchmark"}} for n in range(count)]
    applied = cluster.kubectl("apply", "--server-side", "-f", "-", check=False,
                              input=json.dumps({"apiVersion": "v1", "kind": "List", "items": agents}))
    if applied.returncode != 0:
        raise RuntimeError(f"creating the Agents failed: {applied.stderr.strip()}")


def once(argv: list[str], env: dict[str, str], wall: Figures, cpu: Figures) -> None:
    before = common.cpu_seconds_of_children()
    start = time.perf_counter()
    ran = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if ran.returncode != 0:
        wall.errors += 1
        print(f"  {' '.join(argv)}: exit {ran.returncode}: {ran.stderr[-300:]}", file=sys.stderr)
        return
    wall.samples.append(elapsed)
    wall.seconds += elapsed
    cpu.samples.append(common.cpu_seconds_of_children() - before)
    cpu.seconds += elapsed


def run(args: argparse.Namespace) -> None:
    scale = SCALES[args.scale]
    with common.control_plane(args.cluster_dir) as cluster:
        seed(cluster, scale["agents"])
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "COLUMNS": "160"}
        commands = {
            "gl --help": [*gl(), "--help"],
            "python -c pass": [sys.executable, "-c", "pass"],
            "gl agent list -A": [*gl(), "agent", "list", "-A"],
            "kubectl get agents -A": [str(build.binary("kubernetes", "kubectl")), "get", "agents.registry.greenlang.ai", "-A"],
            # The floor for any Python CLI built on the project's libraries: the interpreter and the
            # imports a list needs before its first byte (the CLI framework, TLS, HTTP, kubeconfig).
            IMPORT_FLOOR: [sys.executable, "-c", "import typer, ssl, http.client, json, yaml"],
        }
        wall = {name: Figures(name) for name in commands}
        cpu = {name: Figures(f"{name} (cpu)") for name in commands}
        for name, argv in commands.items():  # warm the page cache once, unmeasured
            subprocess.run(argv, env=env, capture_output=True)

        def one(name: str) -> None:
            once(commands[name], env, wall[name], cpu[name])

        common.alternate(scale["runs"], list(commands), one)
    results = [common.compare("gl --help", wall["gl --help"], wall["python -c pass"], "python -c pass"),
               common.compare("gl agent list -A", wall["gl agent list -A"], wall["kubectl get agents -A"],
                              "kubectl get agents -A"),
               common.compare("gl --help (cpu)", cpu["gl --help"], cpu["python -c pass"], "python -c pass (cpu)"),
               common.compare("gl agent list -A (cpu)", cpu["gl agent list -A"], cpu["kubectl get agents -A"],
                              "kubectl get agents -A (cpu)"),
               common.compare("import floor", wall[IMPORT_FLOOR], wall["kubectl get agents -A"],
                              "kubectl get agents -A")]
    common.report("cli-startup", args, results, objects=scale["agents"],
                  targets={"gl --help p50_ms": 300, "gl agent list ratio_p50": 1.5})


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench cli-startup", description=__doc__.splitlines()[0])
    common.add_common_arguments(parser, SCALES)
    run(parser.parse_args(argv))
