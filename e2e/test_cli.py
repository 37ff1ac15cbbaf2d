"""`gl` against the whole local registry: control plane, operator with webhooks, mirror, S3.

The tests are one user's session in file order: later commands use what earlier ones published.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from e2e import governed as setup
from e2e import registry as reg
from e2e import s3_server, wait
from e2e.governed import TEAM, TENANT, image_of
from e2e.mirror_process import local_postgres, start_with_query_api
from gl_devenv import build, certs

BUCKET = "greenlang-agents"


class Gl:
    def __init__(self, env, endpoint: str, workdir: Path):
        self.env, self.endpoint, self.workdir = env, endpoint, workdir

    def __call__(self, *args: str, user: str | None = None, groups: tuple[str, ...] = ()):
        kubeconfig = self.env.cluster.user_kubeconfig(user, groups) if user else self.env.cluster.kubeconfig
        environment = {**os.environ, "KUBECONFIG": str(kubeconfig), "COLUMNS": "250", "GL_S3_BUCKET": BUCKET,
                       "GL_S3_ENDPOINT": self.endpoint, **s3_server.CREDENTIALS}
        return subprocess.run([sys.executable, "-c", "from gl_cli.main import main; main()", *args],
                              capture_output=True, text=True, env=environment, cwd=self.workdir, timeout=120)


@pytest.fixture(scope="module")
def gl(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cli")
    with setup.running(workdir, "regopy") as env, local_postgres() as postgres, s3_server.running(BUCKET) as endpoint:
        mirror = start_with_query_api(env.cluster, postgres.dsn(), workdir / "mirror.log")
        for user in ("alice", "bob"):
            role = "greenlang-registry:developer" if user == "alice" else "greenlang-registry:promotion-approver"
            env.apply(reg.binding(f"{user}-cli", user, role, TEAM))
        try:
            yield Gl(env, endpoint, workdir)
        finally:
            mirror.stop()


def test_publish_uploads_the_artifact_and_waits_until_accepted(gl):
    artifact = gl.workdir / "cbam-3.0.0.tar.gz"
    artifact.write_bytes(os.urandom(9 * 1024 * 1024))  # above the multipart threshold
    published = gl("agent", "publish", "--name", reg.AGENT, "--version", "3.0.0", "--artifact", str(artifact),
                   "--image", image_of("3.0.0"), "-n", TEAM, user="alice")
    assert published.returncode == 0, published.stderr
    assert published.stdout.strip() == f"{reg.AGENT}@3.0.0"
    assert "artifact uploaded to s3://greenlang-agents/sha256/" in published.stderr
    version = reg.get(gl.env.api, TEAM, "agentversions", f"{reg.AGENT}-3.0.0")
    key = version["spec"]["artifact"]["uri"].removeprefix(f"s3://{BUCKET}/")
    stored = boto3.client("s3", endpoint_url=gl.endpoint).head_object(Bucket=BUCKET, Key=key)
    assert stored["ContentLength"] == artifact.stat().st_size == version["spec"]["artifact"]["sizeBytes"]
    assert version["metadata"]["annotations"]["registry.greenlang.ai/created-by"] == "alice"

    again = gl("agent", "publish", "--name", reg.AGENT, "--version", "3.0.0", "--image", image_of("3.0.0"),
               "-n", TEAM, user="alice")
    assert again.returncode == 1
    assert "is already published in climate-team; a published version never changes" in again.stderr
    assert "Traceback" not in again.stderr


def test_publish_creates_a_missing_agent_and_dry_run_creates_nothing(gl):
    dry = gl("agent", "publish", "--name", "gl-scope3-connector", "--version", "0.1.0", "--domain",
             "sustainability.scope3", "--type", "connector", "--image", image_of("s3-0.1.0"), "--dry-run", "-n", TEAM)
    assert dry.returncode == 0, dry.stderr
    kinds_shown = [d["kind"] for d in yaml.safe_load_all(dry.stdout)]
    assert kinds_shown == ["Agent", "AgentVersion"]
    assert gl.env.kubectl("get", "agent", "gl-scope3-connector", "-n", TEAM).returncode != 0
    missing = gl("agent", "publish", "--name", "gl-new", "--version", "1.0.0", "--image", image_of("gl-new"), "-n", TEAM)
    assert missing.returncode == 1 and "to create it, also give --domain and --type" in missing.stderr


def test_list_get_and_output_formats(gl):
    table = gl("agent", "list", "-A")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()  # as kubectl prints a list: a header line, aligned columns
    assert header.split()[:2] == ["NAMESPACE", "NAME"] and "DISPLAY NAME" in header and "CERTIFIED" in header
    listed = json.loads(gl("agent", "list", "-n", TEAM, "-o", "json").stdout)
    assert listed["kind"] == "AgentList"
    assert {i["name"] for i in listed["items"]} >= {reg.AGENT}
    item = next(i for i in listed["items"] if i["name"] == reg.AGENT)
    row = next(r for r in rows if r.split()[1] == reg.AGENT)
    assert row[header.index("DISPLAY NAME"):].startswith(item["displayName"] + " ")
    assert row[header.index("LATEST"):].split()[0] == item["latestVersion"]
    nothing = gl("agent", "list", "-n", "no-such-namespace")
    assert nothing.returncode == 0 and nothing.stdout == "" and "No resources found" in nothing.stderr
    assert yaml.safe_load(gl("agent", "list", "-n", TEAM, "-o", "yaml").stdout)["kind"] == "AgentList"
    certified = json.loads(gl("agent", "list", "-A", "--state", "certified", "-o", "json").stdout)["items"]
    assert [i["name"] for i in certified] == [reg.AGENT]
    detail = gl("agent", "get", f"{reg.AGENT}@2.3.1", "-n", TEAM)
    assert detail.returncode == 0 and "certified" in detail.stdout and "history" in detail.stdout
    versions = json.loads(gl("agent", "get", reg.AGENT, "-n", TEAM, "-o", "json").stdout)["versions"]
    assert [v["version"] for v in versions][:2] == ["3.0.0", "2.4.0"]
    bad = gl("agent", "get", "gl-cbam@1.0", "-n", TEAM)
    assert bad.returncode == 1 and "is not a Semantic Versioning 2.0 version" in bad.stderr
    unknown = gl("agent", "get", "no-such-agent", "-n", TEAM)
    assert unknown.returncode == 1 and "agent no-such-agent does not exist in namespace climate-team" in unknown.stderr
    wrong = gl("agent", "list", "-o", "xml")
    assert wrong.returncode == 2 and "unknown output format 'xml'" in wrong.stderr


def test_promote_approve_status_rollback_and_deprecate(gl):
    name = f"{reg.AGENT}-3.0.0"
    # Before any Promotion: is it ready? The operator's own checks, as a dry run that creates nothing.
    unready = gl("agent", "promotion-status", f"{reg.AGENT}@3.0.0", "-n", TEAM, user="alice")
    assert unready.returncode == 0, unready.stderr
    assert "draft -> experimental (dry run" in unready.stdout and "✗" in unready.stdout
    assert "not ready yet: evaluation-passed" in unready.stderr
    reg.report_results(gl.env.api, TEAM, name, **reg.GOOD_RESULTS)
    ready = gl("agent", "promotion-status", f"{reg.AGENT}@3.0.0", "-n", TEAM, user="alice")
    assert f"ready: gl agent promote {reg.AGENT}@3.0.0 --to experimental" in ready.stderr, ready.stderr
    assert not [p for p in reg.custom(gl.env.api).list_namespaced_custom_object(
        reg.GROUP, reg.VERSION, TEAM, "promotions")["items"] if p["spec"]["agentVersion"] == f"{reg.AGENT}@3.0.0"]

    to_exp = gl("agent", "promote", f"{reg.AGENT}@3.0.0", "--to", "experimental", "-n", TEAM, user="alice")
    assert to_exp.returncode == 0, to_exp.stderr  # waits for the decision by default
    assert "Succeeded" in to_exp.stdout and "✓" in to_exp.stdout and "evaluation-passed" in to_exp.stdout
    assert f"{reg.AGENT}@3.0.0 is now experimental" in to_exp.stderr
    # Judged with the operator's thresholds (its soak is 0 s here; the registry's default is 7 days).
    to_certified = gl("agent", "promotion-status", f"{reg.AGENT}@3.0.0", "--to", "certified", "-n", TEAM, user="alice")
    assert "experimental -> certified (dry run" in to_certified.stdout and "(needs 0s)" in to_certified.stdout
    assert "ready, once approved" in to_certified.stderr and "someone other than alice" in to_certified.stderr

    to_cert = gl("agent", "promote", f"{reg.AGENT}@3.0.0", "--to", "certified", "--reason", "ready", "--wait",
                 "-n", TEAM, user="alice")
    assert to_cert.returncode == 0 and "AwaitingApproval" in to_cert.stdout and "missing: approval" in to_cert.stderr
    assert "needs an approval by someone other than alice" in to_cert.stderr and "gl agent approve" in to_cert.stderr
    promotion = to_cert.stdout.splitlines()[0]
    self_approval = gl("agent", "approve", promotion, "-n", TEAM, user="alice")
    assert self_approval.returncode == 1 and "four-eyes" in self_approval.stderr
    approved = gl("agent", "approve", promotion, "--comment", "reviewed", "-n", TEAM, user="bob")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == f"approved {promotion} as bob"
    reg.wait_phase(gl.env.api, TEAM, promotion, "Succeeded")
    checklist = gl("agent", "promotion-status", f"{reg.AGENT}@3.0.0", "-n", TEAM)
    assert "Succeeded" in checklist.stdout and "approved by" in checklist.stdout and "bob" in checklist.stdout

    rollback = gl("agent", "rollback", f"{reg.AGENT}@3.0.0", "--reason", "p95 regression", "-n", TEAM, user="alice")
    assert rollback.returncode == 0, rollback.stderr
    reg.wait_phase(gl.env.api, TEAM, rollback.stdout.strip(), "Succeeded")
    assert reg.status(gl.env.api, TEAM, "agentversions", name)["state"] == "experimental"

    deprecate = gl("agent", "deprecate", f"{reg.AGENT}@2.3.1", "--replacement", "3.0.0", "--sunset", "2027-03-01",
                   "-n", TEAM, user="alice")
    assert deprecate.returncode == 0, deprecate.stderr
    waiting = reg.wait_phase(gl.env.api, TEAM, deprecate.stdout.strip(), "Checking")
    assert "is experimental; it must be certified" in reg.checks(waiting)["replacement-certified"][1]
    denied = gl("agent", "promote", f"{reg.AGENT}@2.3.1", "--to", "draft", "-n", TEAM, user="alice")
    assert denied.returncode == 1
    assert "cannot move to draft; allowed from certified: deprecated, experimental" in denied.stderr


def test_search_metrics_check_and_tenants(gl):
    found = wait.until(lambda: (r := gl("agent", "search", "carbon border tax", "-o", "json")).returncode == 0
                       and json.loads(r.stdout)["items"], timeout=60, what="search results")
    assert found[0]["ref"].startswith(f"{reg.AGENT}@")
    metrics = json.loads(gl("agent", "metrics", reg.AGENT, "-n", TEAM, "-o", "json").stdout)["items"]
    assert any(m["requests"] == 1500 for m in metrics)
    check = gl("agent", "check", f"{reg.AGENT}@2.4.0", "-n", TEAM, "--tenant", TENANT, "--environment", "production")
    assert check.returncode == 1 and "✗ deny" in check.stdout
    tenants = json.loads(gl("tenant", "list", "-o", "json").stdout)["items"]
    assert [t["name"] for t in tenants] == [TENANT]
    assert yaml.safe_load(gl("tenant", "get", TENANT).stdout)["metadata"]["name"] == TENANT
    missing = gl("tenant", "get", "nobody")
    assert missing.returncode == 1 and "TenantPolicy nobody does not exist" in missing.stderr
    slo = gl("slo", "status", "--agent", reg.AGENT)
    assert slo.returncode == 1 and "no AgentDeployment runs gl-cbam-calculator-v2" in slo.stderr


def _verdicts(result) -> str:
    """The check's table below its title: what the policies said, row by row."""
    lines = result.stdout.splitlines()
    return "\n".join(lines[next(i for i, line in enumerate(lines) if line.startswith("┏")):])


def test_check_offline_agrees_with_the_webhooks(gl):
    for version, environment, code in (("2.4.0", "production", 1), ("2.4.0", "staging", 0),
                                       ("2.3.1", "production", 0)):
        question = ("agent", "check", f"{reg.AGENT}@{version}", "-n", TEAM, "-t", TENANT, "-e", environment)
        online, offline = gl(*question), gl(*question, "--offline")
        assert online.returncode == offline.returncode == code, (online.stderr, offline.stderr)
        flat_offline, flat_online = (" ".join(r.stdout.split()) for r in (offline, online))  # titles may wrap
        assert "evaluated offline" in flat_offline and "evaluated offline" not in flat_online
        assert _verdicts(offline) == _verdicts(online)
        if code:
            assert "✗ deny" in offline.stdout
            assert (f"agent {reg.AGENT}@2.4.0 is experimental; tenant {TENANT} allows only certified versions in "
                    "production") in offline.stdout
        elif version == "2.3.1":
            assert "✓ allow" in offline.stdout
        else:
            assert "! warn" in offline.stdout and "is experimental: fine for staging" in offline.stdout
    unknown = gl("agent", "check", f"{reg.AGENT}@2.3.1", "-t", TENANT, "-e", "qa", "--offline")
    assert unknown.returncode == 2
    assert f"tenant {TENANT} has no environment 'qa'; it has: dev, staging, production" in unknown.stderr


def test_audit_query_and_verify(gl):
    rows = wait.until(lambda: json.loads(gl("audit", "query", "--actor", "bob", "--event-type", "agent.approved",
                                            "-o", "json").stdout)["items"], timeout=60, what="bob's approval")
    assert (rows[0]["eventType"], rows[0]["operation"], rows[0]["actor"]) == ("agent.approved", "approval", "bob")
    verified = gl("audit", "verify")
    assert verified.returncode == 0 and "audit trail intact" in verified.stdout
    forbidden = gl("audit", "query", user="alice")
    assert forbidden.returncode == 1 and 'User "alice" cannot list resource "auditevents"' in forbidden.stderr


def test_no_cluster_is_one_clear_line(gl, tmp_path):
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "gone",
                                      "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
                                      "clusters": [{"name": "gone", "cluster": {"server": "https://127.0.0.1:1"}}],
                                      "users": [{"name": "u", "user": {"token": "x"}}]}))
    result = subprocess.run([sys.executable, "-c", "from gl_cli.main import main; main()", "agent", "list"],
                            capture_output=True, text=True, env={**os.environ, "KUBECONFIG": str(config)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error:") and len(result.stderr.strip().splitlines()) <= 2


def test_only_the_kubeconfigs_ca_is_trusted(gl, tmp_path):
    """An API server whose certificate the kubeconfig's CA did not sign is refused, as kubectl
    refuses it: gl trusts the kubeconfig's CA alone."""
    config = yaml.safe_load(gl.env.cluster.kubeconfig.read_text())
    (cluster,) = config["clusters"]
    other = certs.ensure_ca(tmp_path, "other-ca", "not-the-cluster-ca")
    cluster["cluster"].pop("certificate-authority", None)
    cluster["cluster"]["certificate-authority-data"] = base64.b64encode(other.cert.read_bytes()).decode()
    wrong = tmp_path / "kubeconfig"
    wrong.write_text(yaml.safe_dump(config))
    refused = subprocess.run([sys.executable, "-c", "from gl_cli.main import main; main()", "agent", "list", "-A"],
                             capture_output=True, text=True, env={**os.environ, "KUBECONFIG": str(wrong)})
    assert refused.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


def test_kubectl_discovers_the_plugin(gl):
    kubectl = str(build.binary("kubernetes", "kubectl"))
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    listed = subprocess.run([kubectl, "plugin", "list"], capture_output=True, text=True, env={**os.environ,
                                                                                              "PATH": path})
    assert "kubectl-gl" in listed.stdout
    run = subprocess.run([kubectl, "gl", "agent", "list", "-n", TEAM, "-o", "json"], capture_output=True, text=True,
                         env={**os.environ, "PATH": path, "KUBECONFIG": str(gl.env.cluster.kubeconfig)})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["kind"] == "AgentList"
    usage = subprocess.run([kubectl, "gl", "--help"], capture_output=True, text=True, env={**os.environ, "PATH": path})
    assert "kubectl gl" in usage.stdout


def test_a_terminal_shows_the_progress_bar_and_the_table(gl):
    """What a person sees: run gl in a real terminal (tmux) and read the screen."""
    tmux = shutil.which("tmux")
    assert tmux, "tmux is needed for the terminal check (.ci/run installs it)"
    artifact = gl.workdir / "cbam-3.1.0.tar.gz"
    artifact.write_bytes(os.urandom(3 * 1024 * 1024))
    environment = {"KUBECONFIG": str(gl.env.cluster.user_kubeconfig("alice")), "GL_S3_BUCKET": BUCKET,
                   "GL_S3_ENDPOINT": gl.endpoint, **s3_server.CREDENTIALS}
    gl_command = f"{sys.executable} -c 'from gl_cli.main import main; main()'"
    script = gl.workdir / "session.sh"
    script.write_text("\n".join([*(f"export {k}={v}" for k, v in environment.items()),
                                 f"{gl_command} agent publish --name {reg.AGENT} --version 3.1.0 --artifact {artifact} "
                                 f"--image {image_of('3.1.0')} -n {TEAM}",
                                 f"{gl_command} agent list -n {TEAM}", "sleep 60", ""]))
    session = f"gl-e2e-{os.getpid()}"
    subprocess.run([tmux, "new-session", "-d", "-s", session, "-x", "180", "-y", "50", f"bash {script}"], check=True)
    try:
        def screen():
            pane = subprocess.run([tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
            return "LATEST" in pane and pane
        pane = wait.until(screen, timeout=60, what="the table on the terminal")
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
    assert f"uploading {artifact.name}" in pane and "━" in pane and "MB" in pane  # the progress bar, finished
    assert f"{reg.AGENT}@3.1.0" in pane
    assert "DISPLAY NAME" in pane and reg.AGENT in pane  # the list, as kubectl prints one
