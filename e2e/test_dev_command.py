"""`gl-dev up` / `status` / `down`: the README's first command, run the way a user runs it."""

from __future__ import annotations

import json
import os
import re
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


QUICK_START, README = REPO / "docs" / "quickstart.md", REPO / "README.md"


def quick_start_commands() -> list[str]:
    """The quick start's commands, verbatim: the second ``sh`` block of docs/quickstart.md (the first
    is `make dev`), comments and blank lines left out. README.md carries the same block."""
    blocks = re.findall(r"```sh\n(.*?)```", QUICK_START.read_text(), re.S)
    script = blocks[1]
    assert script in README.read_text(), "README.md's quick start differs from docs/quickstart.md"
    return [line for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# What a user reads of each command's output (by its first words): (exit status, check of stdout, stderr).
def _expect(command: str, rc: int, out: str, err: str) -> None:
    if command.startswith("gl agent check"):
        assert rc == 1 and "✗ deny" in out, "production admits certified versions only"
        return
    assert rc == 0
    if command.startswith("kubectl apply -f examples/tenant-policy.yaml"):
        assert "tenantpolicy.registry.greenlang.ai/customer-abc-123" in out
    elif command.startswith("kubectl wait"):
        assert "condition met" in out
    elif command.startswith("gl agent publish"):
        assert out.strip() == "gl-cbam-calculator-v2@2.3.1" and "agent id gl-cbam-calculator-v2 (--id)" in err
    elif command.startswith("gl agent promotion-status") and "ready:" not in err:
        assert "draft -> experimental (dry run" in out and "not ready yet: evaluation-passed, security-scan" in err
    elif command.startswith("gl agent promotion-status"):
        assert "gl agent promote gl-cbam-calculator-v2@2.3.1 --to experimental" in err
    elif command.startswith("gl agent promote"):
        assert "Succeeded" in out and "gl-cbam-calculator-v2@2.3.1 is now experimental" in err
    elif command.startswith("kubectl apply -f examples/manifests/"):
        assert "agentdeployment.registry.greenlang.ai/gl-cbam-calculator-v2 created" in out
    elif command.startswith("gl agent invoke"):
        answer = json.loads(out)
        assert (answer["cnCode"], answer["unit"]) == ("72081000", "tCO2e")
        assert answer["totalEmissions"] == answer["directEmissions"] + answer["indirectEmissions"] > 0
    elif command.startswith("gl agent metrics"):
        assert "measured by Prometheus" in out and "gl-cbam-calculator-v2@2.3.1" in out
    elif command.startswith("gl slo status"):
        assert "customer-abc-123-dev/gl-cbam-calculator-v2" in out
    elif command.startswith("gl audit query"):
        assert "agent.promoted" in out and "gl-cbam-calculator-v2-2.3.1" in out


def quick_start(home: Path, exports: dict[str, str], workdir: Path) -> None:
    """docs/quickstart.md, command for command, in one shell that evaluated `gl-dev up`'s exports;
    each command's output checked as a user would read it."""
    env = {**os.environ, "COLUMNS": "250", **{k: v for k, v in exports.items() if k != "PATH"},
           "PATH": exports["PATH"].replace("$PATH", os.environ["PATH"])}
    commands = quick_start_commands()
    # One shell, so `cd` and the context's namespace carry over; each command's output to its own files.
    lines = ["set -u"]
    for i, command in enumerate(commands):
        lines.append(f"{{ {command}\n}} >{workdir}/{i}.out 2>{workdir}/{i}.err; echo $? >{workdir}/{i}.rc")
    script = workdir / "quickstart.sh"
    script.write_text("\n".join(lines) + "\n")
    subprocess.run(["bash", str(script)], env=env, cwd=REPO, timeout=900, check=True)
    for i, command in enumerate(commands):
        rc, out, err = (int((workdir / f"{i}.rc").read_text()), (workdir / f"{i}.out").read_text(),
                        (workdir / f"{i}.err").read_text())
        try:
            _expect(command, rc, out, err)
        except (AssertionError, ValueError) as error:
            raise AssertionError(f"quick start step {i + 1}: {command}\nexit {rc}\n{out}\n{err}") from error


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

        (tmp_path / "quickstart").mkdir()
        quick_start(home, exports, tmp_path / "quickstart")

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
