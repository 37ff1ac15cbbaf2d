"""`gl-dev up` / `status` / `down`: the README's first command, run the way a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from e2e import REPO, wait
from gl_devenv import build, node

GL_DEV = [sys.executable, "-m", "gl_devenv.cli"]


def gl_dev(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GL_DEV, "--home", str(home), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def publish_manifest() -> str:
    return json.dumps({"apiVersion": "registry.greenlang.ai/v1alpha1", "kind": "AgentVersion",
                       "metadata": {"name": "dev-agent-0.2.0"},
                       "spec": {"agent": "dev-agent", "version": "0.2.0",
                                "image": "registry.example.com/dev@sha256:" + "0" * 64}})


def quick_start(home: Path, exports: dict[str, str]) -> None:
    """README's "Try it", command by command, in a shell that evaluated `gl-dev up`'s exports."""
    env = {**os.environ, "COLUMNS": "200", **{k: v for k, v in exports.items() if k != "PATH"},
           "PATH": exports["PATH"].replace("$PATH", os.environ["PATH"])}

    def sh(command: str) -> str:
        result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=REPO,
                                timeout=180)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    sh("kubectl create namespace climate-team")
    assert sh("gl agent publish examples/agents/cbam-calculator -n climate-team").strip() == \
        "gl-cbam-calculator-v2@2.3.1"
    sh("""kubectl patch agentversion gl-cbam-calculator-v2-2.3.1 -n climate-team --subresource=status \
          --type=merge -p '{"status":{"evaluation":{"passed":true,"score":0.95},"securityScan":{"critical":0,"high":0}}}'""")
    sh("kubectl apply -n climate-team -f examples/promotion.yaml")
    wait.until(lambda: "experimental" in sh("kubectl get agentversions -n climate-team"), timeout=30,
               what="2.3.1 to be experimental")
    sh("kubectl apply -f examples/tenant-policy.yaml")
    wait.until(lambda: "customer-abc-123-dev" in sh("kubectl get namespaces"), timeout=30, what="the dev namespace")
    sh("kubectl apply -f examples/agent-deployment-dev.yaml")
    sh("kubectl wait glad/cbam-calculator -n customer-abc-123-dev --for=condition=Available --timeout=120s")
    body = {"cnCode": "72081000", "quantityTonnes": 12.5, "countryOfOrigin": "BR"}
    answer = json.loads(sh("gl agent invoke cbam-calculator calculate-embedded-emissions -n customer-abc-123-dev "
                           f"-d '{json.dumps(body)}'"))
    assert (answer["cnCode"], answer["unit"]) == ("72081000", "tCO2e")
    assert answer["totalEmissions"] == answer["directEmissions"] + answer["indirectEmissions"] > 0
    assert "customer-abc-123-dev/cbam-calculator" in sh(
        "gl slo status --agent gl-cbam-calculator-v2 -n customer-abc-123-dev")


def test_up_runs_the_registry_and_down_stops_it(tmp_path):
    home = tmp_path / "dev"
    try:
        up = gl_dev(home, "up")
        assert up.returncode == 0, up.stderr
        exports = dict(line.removeprefix("export ").split("=", 1) for line in up.stdout.strip().splitlines())
        assert exports["KUBECONFIG"] == str(home / "kubeconfig")
        assert exports["GL_S3_BUCKET"] == "greenlang-agents"
        assert exports["GL_S3_ENDPOINT"].startswith(f"http://{node.NODE_IP}:")  # agent pods fetch artifacts there
        assert exports["PATH"].split(":")[0] == str(build.binary("kubernetes", "kubectl").parent)
        assert "GL_PROMETHEUS_URL" not in exports  # users read metrics through the registry, never Prometheus
        assert "CRDs installed; webhooks at https://127.0.0.1:" in up.stderr
        assert "deciding with OPA at http://127.0.0.1:" in up.stderr
        assert "operator running" in up.stderr
        assert "mirror serving /apis/search.registry.greenlang.ai/v1alpha1" in up.stderr

        status = gl_dev(home, "status")
        assert status.returncode == 0, status.stdout
        lines = dict(line.split(None, 1) for line in status.stdout.strip().splitlines())
        for name in ("etcd", "kube-apiserver", "kwok"):
            assert lines[name].startswith("running"), status.stdout
        assert lines["opa"].endswith(", ready") and lines["gl-webhooks"].endswith(", ready"), status.stdout
        assert lines["gl-operator"].endswith(", healthy, leader"), status.stdout
        assert lines["gl-mirror"].endswith(", ready") and lines["s3"].endswith(", ready"), status.stdout
        assert lines["prometheus"].endswith(", ready") and lines["containerd"].startswith("running"), status.stdout
        assert lines["kubelet"].endswith(f"node {node.NODE_NAME} Ready"), status.stdout

        kubectl = [str(build.binary("kubernetes", "kubectl")), f"--kubeconfig={home / 'kubeconfig'}"]
        every_kind = subprocess.run([*kubectl, "get", "greenlang", "-A"], capture_output=True, text=True)
        assert every_kind.returncode == 0, every_kind.stderr  # the search API beside the CRDs does not break it

        crds = subprocess.run([*kubectl, "get", "crd", "-o", "name"], capture_output=True, text=True, check=True)
        assert "customresourcedefinition.apiextensions.k8s.io/agentversions.registry.greenlang.ai" in crds.stdout

        search = subprocess.run([*kubectl, "get", "--raw",
                                 "/apis/search.registry.greenlang.ai/v1alpha1/agentsearches?q=cbam"],
                                capture_output=True, text=True)
        assert search.returncode == 0 and '"kind": "AgentSearchResultList"' in search.stdout, search.stderr

        artifact = tmp_path / "agent.tar.gz"
        artifact.write_bytes(b"an agent")
        publish = subprocess.run(
            [sys.executable, "-c", "from gl_cli.main import main; main()", "agent", "publish", "--name", "dev-agent",
             "--version", "0.1.0", "--domain", "test.dev", "--type", "validator", "--artifact", str(artifact),
             "--image", "registry.example.com/dev@sha256:" + "0" * 64],
            capture_output=True, text=True, env={**os.environ, **exports})
        assert publish.returncode == 0, publish.stderr
        assert publish.stdout.strip() == "dev-agent@0.1.0"  # accepted by the operator, artifact in the local S3
        listed = subprocess.run([*kubectl, "get", "greenlang", "-A"], capture_output=True, text=True)
        assert listed.returncode == 0 and "agentversion.registry.greenlang.ai/dev-agent-0.1.0" in listed.stdout

        quick_start(home, exports)

        # The webhook server is gone: registry writes fail closed, and status says why.
        pid = (home / "run" / "gl-webhooks.pid").read_text()
        os.kill(int(pid), 9)
        wait.until(lambda: "gl-webhooks" in (s := gl_dev(home, "status").stdout) and "stopped" in s.split(
            "gl-webhooks", 1)[1].splitlines()[0], timeout=10, what="status to show the webhook server stopped")
        refused = subprocess.run([*kubectl, "create", "-n", "default", "-f", "-"], capture_output=True, text=True,
                                 input=publish_manifest())
        assert refused.returncode != 0 and 'failed calling webhook "publish.registry.greenlang.ai"' in refused.stderr

        again = gl_dev(home, "up")  # idempotent: a second `up` finds the rest running and restarts what stopped
        assert again.returncode == 0 and "already running" in again.stderr
        assert gl_dev(home, "status").stdout.count(", ready") == 5
    finally:
        down = gl_dev(home, "down", "--purge")  # also removes the Postgres data kept outside the home
    assert down.returncode == 0
    stopped = gl_dev(home, "status")
    assert stopped.returncode == 1
    assert "running" not in stopped.stdout
