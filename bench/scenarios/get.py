"""`python -m bench get`: one AgentVersion read through the API server, against a ConfigMap of the same size.

All are GETs of one object by name, as the cluster admin, over one keep-alive client: the
difference is what a custom resource costs the API server (its CRD handler, JSON in etcd where
built-in kinds keep protobuf, the structural schema's pruning and defaulting on the way out)
beside a built-in kind. A third object, of a bare CRD with the same content and no schema beyond
``x-kubernetes-preserve-unknown-fields``, tells what any custom resource pays from what the
registry's own schema adds. Targets (issue 13): AgentVersion p95 < 50 ms and within 1.2x the
ConfigMap's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from bench.harness import Figures, digest
from bench.scenarios import common
from gl_api import API_VERSION, GROUP, VERSION

SCALES = {"tiny": {"requests": 40, "rounds": 1}, "small": {"requests": 500, "rounds": 3},
          "full": {"requests": 3000, "rounds": 3}}
NAMESPACE = "bench-get"
AGENT = "gl-bench-get"
CONCURRENCY = (1, 16)


def agent_version() -> dict[str, Any]:
    """An AgentVersion of a realistic size: a dozen described capabilities."""
    return {"apiVersion": API_VERSION, "kind": "AgentVersion",
            "metadata": {"name": f"{AGENT}-1.0.0", "namespace": NAMESPACE},
            "spec": {"agent": AGENT, "version": "1.0.0",
                     "artifact": {"uri": f"s3://greenlang-agents/sha256/{digest('get')[7:]}", "digest": digest("get")},
                     "image": f"registry.example.com/bench@{digest('image')}",
                     "capabilities": [{"name": f"capability-{n}", "description": "calculates embedded emissions of "
                                       f"imported goods under the EU CBAM, variant {n}, with default values"}
                                      for n in range(12)]}}


def config_map(size: int) -> dict[str, Any]:
    """A ConfigMap whose JSON, as served, is about ``size`` bytes."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench-get-same-size", "namespace": NAMESPACE},
            "data": {"object": "x" * max(0, size - 350)}}


BARE_GROUP = "bench.greenlang.ai"


def bare_crd() -> dict[str, Any]:
    """A CRD with no schema to speak of: what a custom resource costs before any schema of ours."""
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"bareobjects.{BARE_GROUP}"},
            "spec": {"group": BARE_GROUP, "scope": "Namespaced",
                     "names": {"plural": "bareobjects", "singular": "bareobject", "kind": "BareObject"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}}


def seed(cluster: Any) -> tuple[str, str, str, int, int]:
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    version = agent_version()
    applied = cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(version), check=False)
    if applied.returncode != 0:
        raise RuntimeError(f"creating the AgentVersion failed: {applied.stderr.strip()}")
    served = cluster.kubectl("get", "--raw", f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/agentversions/"
                                             f"{version['metadata']['name']}").stdout
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(config_map(len(served))))
    same = cluster.kubectl("get", "--raw", f"/api/v1/namespaces/{NAMESPACE}/configmaps/bench-get-same-size").stdout
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(bare_crd()))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/bareobjects.{BARE_GROUP}", "--timeout=60s")
    bare = {**version, "apiVersion": f"{BARE_GROUP}/v1", "kind": "BareObject"}
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(bare))
    return (f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/agentversions/{version['metadata']['name']}",
            f"/api/v1/namespaces/{NAMESPACE}/configmaps/bench-get-same-size",
            f"/apis/{BARE_GROUP}/v1/namespaces/{NAMESPACE}/bareobjects/{version['metadata']['name']}",
            len(served), len(same))


async def measure(cluster: Any, paths: dict[str, str], requests: int, rounds: int) -> dict[tuple[str, int], Figures]:
    http = common.Http(cluster.kubeconfig)
    figures = {(mode, c): Figures(f"{mode} c={c}") for mode in paths for c in CONCURRENCY}
    try:
        for concurrency in CONCURRENCY:
            await common.harness.load(Figures("warm-up"), lambda n: http.get(paths["AgentVersion"]), 0, 20, 4)
            for number in range(rounds):
                order = list(paths) if number % 2 == 0 else list(reversed(paths))
                for mode in order:
                    path = paths[mode]
                    await common.harness.load(figures[(mode, concurrency)], lambda n, p=path: http.get(p), 0,
                                              requests, concurrency)
    finally:
        await http.close()
    return figures


def run(args: argparse.Namespace) -> None:
    scale = SCALES[args.scale]
    with common.control_plane(args.cluster_dir) as cluster:
        version_path, config_map_path, bare_path, version_bytes, config_map_bytes = seed(cluster)
        figures = asyncio.run(measure(cluster, {"AgentVersion": version_path, "ConfigMap": config_map_path,
                                                "BareObject": bare_path}, scale["requests"], scale["rounds"]))
        cluster.kubectl("delete", "crd", f"bareobjects.{BARE_GROUP}", "--ignore-not-found", check=False)
    results = [common.compare(f"get {kind} c={c}", figures[(kind, c)], figures[("ConfigMap", c)],
                              f"get ConfigMap c={c}") for c in CONCURRENCY for kind in ("AgentVersion", "BareObject")]
    common.report("get", args, results, sizes={"agentVersionBytes": version_bytes, "configMapBytes": config_map_bytes},
                  targets={"p95_ms": 50, "ratio_p95": 1.2})


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench get", description=__doc__.splitlines()[0])
    common.add_common_arguments(parser, SCALES)
    run(parser.parse_args(argv))
