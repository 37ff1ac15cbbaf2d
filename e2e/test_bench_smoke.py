"""A smoke run of the benchmark harness (`python -m bench`, issue 13): each scenario with tiny data.

Not a timed test: the figures are not judged here (docs/benchmarks.md has them, from real runs on
a quiet machine); this keeps every scenario running end to end on the session's control plane and
writing the fields a reader of its JSON relies on, each figure beside its baseline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gl_devenv.cluster import LocalCluster

REPO = Path(__file__).resolve().parent.parent
FIELDS = {"label", "n", "errors", "p50_ms", "p95_ms", "p99_ms", "per_second", "baseline", "base_n", "base_errors",
          "base_p50_ms", "base_p95_ms", "base_p99_ms", "base_per_second", "ratio_p50", "ratio_p95"}


def bench(cluster, scenario: str, out: Path, own_stack: bool = False) -> dict:
    """Run ``scenario`` at tiny scale: on the session's control plane, or on a stack of its own."""
    if not isinstance(cluster, LocalCluster):
        pytest.skip("the harness runs on the local control plane (LocalCluster)")
    where = [] if own_stack else ["--cluster-dir", str(cluster.workdir)]
    run = subprocess.run([sys.executable, "-m", "bench", scenario, "--scale", "tiny", *where, "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    assert f"wrote {out}" in run.stdout and "p95_ms" in run.stdout  # the table was printed
    report = json.loads(out.read_text())
    assert report["scenario"] == scenario and report["scale"] == "tiny"
    assert {"cpus", "load_average"} <= set(report["machine"]) and report["date"]
    assert report["results"]
    for result in report["results"]:
        assert FIELDS <= set(result), result["label"]
        assert result["n"] > 0 and result["base_n"] > 0, result["label"]
        assert result["errors"] == 0 and result["base_errors"] == 0, result["label"]
    return report


def test_get_against_a_configmap_of_the_same_size(cluster, tmp_path):
    report = bench(cluster, "get", tmp_path / "get.json")
    assert [r["label"] for r in report["results"]] == ["get AgentVersion c=1", "get BareObject c=1",
                                                       "get AgentVersion c=16", "get BareObject c=16"]
    sizes = report["sizes"]
    assert abs(sizes["agentVersionBytes"] - sizes["configMapBytes"]) < 0.1 * sizes["agentVersionBytes"]


def test_cli_startup_against_kubectl(cluster, tmp_path):
    report = bench(cluster, "cli-startup", tmp_path / "cli.json")
    assert {r["baseline"] for r in report["results"]} >= {"python -c pass", "kubectl get agents -A"}
    assert "import floor" in {r["label"] for r in report["results"]}


def test_search_as_a_tenant_user_gives_the_full_scans_pages(cluster, tmp_path):
    report = bench(cluster, "search", tmp_path / "search.json")
    labels = {r["label"] for r in report["results"]}
    assert labels == {f"{kind} {mode}" for kind in ("lexical", "typo", "semantic") for mode in ("api", "in-process")}
    checked = report["agreementWithFullScan"]
    assert checked["queries"] > 0 and checked["samePage"] == checked["queries"], checked["differing"]
    assert report["resources"]["searchTableMb"] > 0


def test_throughput_reads_and_writes_with_and_without_our_admission(cluster, tmp_path):
    # Its own stack: it switches the webhooks and admission policies off and on.
    report = bench(cluster, "throughput", tmp_path / "throughput.json", own_stack=True)
    assert [r["label"] for r in report["results"]] == [
        "get AgentVersion c=4", "create AgentVersion c=4 cel", "create AgentVersion c=4 webhooks"]
    assert [r["baseline"] for r in report["results"]] == [
        "get ConfigMap c=4", "create AgentVersion c=4 api-server", "create AgentVersion c=4 api-server"]
    runs = report["runs"]
    assert all(0 < r["client_cpu_share"] < 2 and r["server_cpu_ms_per_request"] > 0 for r in runs)
    assert {(s["operation"], s["kind"]) for s in report["sustained"]} <= {
        ("read", "AgentVersion"), ("read", "ConfigMap"), ("write", "api-server"), ("write", "cel"),
        ("write", "webhooks")}


def test_publish_end_to_end_until_accepted_and_searchable(cluster, tmp_path):
    # Its own stack: the product's `gl-dev up --no-node`, with the operator and the mirror.
    report = bench(cluster, "publish", tmp_path / "publish.json", own_stack=True)
    labels = [r["label"] for r in report["results"]]
    assert labels == ["publish -> accepted at 2/s", "publish -> searchable at 2/s", "publish -> created at 2/s",
                      "gl agent publish (process)"]
    accepted, searchable, created = (r for r in report["results"][:3])
    # Every publish was accepted and found, and nothing is accepted before it was created.
    assert accepted["n"] == searchable["n"] == created["n"] == 4
    assert accepted["p50_ms"] >= created["p50_ms"]
    assert report["artifactBytes"] == 1024 * 1024


def test_list_and_watch_against_configmaps_with_the_cost_of_each_object(cluster, tmp_path):
    report = bench(cluster, "list-watch", tmp_path / "list-watch.json")
    assert [r["label"] for r in report["results"]] == [
        "list paged AgentVersion", "list cached AgentVersion", "watch AgentVersion"]
    assert report["objects"] == 200
    assert all(stage["errors"] == 0 for key, stage in report["seeded"].items() if key != "empty")
    assert set(report["perObject"]) == {"AgentVersion", "ConfigMap"}


def own_stack_bench(scenario: str, out: Path) -> dict:
    """Run ``scenario`` at tiny scale on the stack it starts itself (`gl-dev up --no-node`)."""
    run = subprocess.run([sys.executable, "-m", "bench", scenario, "--scale", "tiny", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(out.read_text())


def test_publish_cost_per_component_and_request(tmp_path):
    report = own_stack_bench("publish-cost", tmp_path / "publish-cost.json")
    assert report["publishes"] == 5
    # Each publish creates exactly one AgentVersion and the operator accepts it once; the baseline creates none.
    assert report["requestsPerPublish"]["POST agentversions"] == 1.0
    assert report["requestsPerPublish"]["PATCH agentversions/status"] >= 1.0
    assert "POST agentversions" not in report["baselineRequests"]
    assert {"kube-apiserver", "etcd", "gl-operator", "gl-mirror", "postgres"} <= set(report["cpuMsPerPublish"])


def test_memory_with_versions_accepted_and_indexed_beside_the_empty_registry(tmp_path):
    report = own_stack_bench("memory", tmp_path / "memory.json")
    assert report["versions"] == 40 and report["agents"] == 4
    assert report["seeding"]["accepted"] == report["seeding"]["searchable"] == 40  # the real path, every one
    components = {"gl-operator", "gl-webhooks", "gl-mirror", "opa", "postgres", "kube-apiserver", "etcd"}
    assert set(report["emptyMb"]) == set(report["fullMb"]) == set(report["kbPerVersion"]) == components
    assert all(report["emptyMb"][c] > 0 for c in components)
    assert all(report["peakMb"][c] >= report["fullMb"][c] for c in components - {"postgres"})
    restarted = report["operatorRestart"]  # the operator started again on the full registry, and idle
    assert restarted["operatorPeakMb"] >= restarted["operatorMb"] > 0 and restarted["idleAfterSeconds"] > 0
