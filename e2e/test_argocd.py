"""GitOps with a real Argo CD: examples/gitops/ synced from a git repository to the real API server.

Argo CD's application controller and repo server run beside the local control plane
(``gl_devenv.argocd``) with the registry's Lua health checks in ``argocd-cm``; the operator runs
as in every e2e test. The repository is a local one read by ``file://`` URL, holding a copy of
examples/gitops/ with this test's namespaces. Every change is a commit that Argo CD's automated
sync applies; nothing here applies a registry object directly, only CI's evaluation results go
through the status subresource, as in production. ``platform/`` (the chart) is not synced, since the
test suite runs the registry's processes itself: its values are rendered with the chart instead.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from e2e import REPO
from e2e import registry as reg
from e2e import wait
from gl_api import GROUP, VERSION
from gl_devenv import argocd, build
from gl_devenv.cluster import LocalCluster

GITOPS = REPO / "examples" / "gitops"
UPSTREAM = "https://git.example.com/platform/greenlang-gitops.git"
FOLDERS = ("tenants", "agents", "promotions", "deployments")
APPLICATIONS = tuple(f"greenlang-{folder}" for folder in FOLDERS)
SYNC_TIMEOUT = 180


@dataclass
class GitOps:
    repo: Path
    team: str
    tenant: str

    @property
    def dev(self) -> str:
        return f"{self.tenant}-dev"

    def localise(self, text: str) -> str:
        """The example's names made this test's: its team namespace and tenant."""
        return text.replace("climate-team", self.team).replace("customer-abc-123", self.tenant)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.repo), *args], check=True, stdout=subprocess.PIPE,
                              text=True).stdout.strip()

    def commit(self, message: str, files: dict[str, str] | None = None) -> str:
        for relative, text in (files or {}).items():
            (self.repo / relative).parent.mkdir(parents=True, exist_ok=True)
            (self.repo / relative).write_text(self.localise(text))
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")


def promotion(version: str, name: str, target: str, reason: str) -> str:
    """A Promotion file as the README tells the platform team to write it."""
    return yaml.safe_dump({"apiVersion": f"{GROUP}/{VERSION}", "kind": "Promotion",
                           "metadata": {"name": name, "namespace": "climate-team"},
                           "spec": {"agentVersion": f"{reg.AGENT}@{version}", "targetState": target,
                                    "reason": reason}}, sort_keys=False)


def application(api, name: str) -> dict[str, Any]:
    return reg.custom(api).get_namespaced_custom_object("argoproj.io", "v1alpha1", argocd.NAMESPACE, "applications",
                                                        name)


def summary(app: dict[str, Any]) -> dict[str, Any]:
    """What `argocd app get` would show, for assertion messages."""
    status = app.get("status") or {}
    return {"sync": status.get("sync", {}).get("status"), "revision": status.get("sync", {}).get("revision"),
            "health": status.get("health", {}).get("status"), "conditions": status.get("conditions"),
            "operation": (status.get("operationState") or {}).get("message"),
            "resources": [(r["kind"], r["name"], r.get("status"), (r.get("health") or {}).get("status"),
                           (r.get("health") or {}).get("message")) for r in status.get("resources") or []]}


def wait_synced(api, revision: str, names: tuple[str, ...] = APPLICATIONS) -> dict[str, dict[str, Any]]:
    """Every Application Synced to ``revision`` and Healthy; on a timeout, what each one says."""
    def probe():
        apps = {name: application(api, name) for name in names}
        done = all(a.get("status", {}).get("sync", {}).get("status") == "Synced"
                   and a["status"]["sync"].get("revision") == revision
                   and a["status"].get("health", {}).get("status") == "Healthy" for a in apps.values())
        return done and apps

    try:
        return wait.until(probe, timeout=SYNC_TIMEOUT, interval=1, what=f"{', '.join(names)} Synced at {revision[:8]}")
    except AssertionError as error:
        raise AssertionError(f"{error}\n" + json.dumps({n: summary(application(api, n)) for n in names}, indent=1)) \
            from None


def resources(apps: dict[str, dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["kind"], r["name"]): r for a in apps.values() for r in a["status"].get("resources") or []}


def condition_message(obj: dict[str, Any], condition: str) -> str:
    return next(c["message"] for c in obj["status"]["conditions"] if c["type"] == condition)


@pytest.fixture(scope="module")
def gitops(cluster, api, operator_process, tmp_path_factory):
    """examples/gitops/ in a fresh git repository, its Applications syncing it with auto-sync on."""
    if not isinstance(cluster, LocalCluster):
        pytest.fail("the Argo CD tests run Argo CD beside the local control plane (GL_E2E_CLUSTER=local)")
    if not operator_process.running():
        operator_process.start()
    suffix = uuid.uuid4().hex[:6]
    state = GitOps(tmp_path_factory.mktemp("gitops") / "repo", f"gitops-team-{suffix}", f"gitops-{suffix}")
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=state.team, labels={"e2e": "true"})))

    state.repo.mkdir()
    state.git("init", "--quiet", "--initial-branch=main")
    state.git("config", "user.email", "platform@example.com")
    state.git("config", "user.name", "Platform Team")
    state.commit("The registry's tenants, agents, promotions and deployments",
                 {str(path.relative_to(GITOPS)): path.read_text()
                  for folder in FOLDERS for path in (GITOPS / folder).glob("*.yaml")})

    try:
        argocd.start(cluster)
        for folder in FOLDERS:
            app = state.localise((GITOPS / "argocd" / f"{folder}.yaml").read_text())
            app = app.replace(UPSTREAM, f"file://{state.repo}")
            result = cluster.kubectl("apply", "--server-side", "-f", "-", input=app, check=False)
            assert result.returncode == 0, result.stderr
        yield state
    finally:
        argocd.stop(cluster)
        cluster.kubectl("delete", "applications.argoproj.io", "-n", argocd.NAMESPACE, "--all", "--wait=false",
                        check=False)
        cluster.kubectl("delete", "agentdeployments", "-n", state.dev, "--all", check=False)
        cluster.kubectl("delete", "tenantpolicy", state.tenant, "--wait=false", check=False)
        # A tenant's namespaces outlive its policy (they are adopted, never owned).
        cluster.kubectl("delete", "namespace", state.team,
                        *[f"{state.tenant}-{env}" for env in ("dev", "staging", "prod")], "--wait=false", check=False)


@pytest.fixture(scope="module")
def synced(gitops, api) -> dict[str, dict[str, Any]]:
    """The first sync, once CI has reported 2.3.1's evaluation (its Promotion waits for it)."""
    name = f"{reg.AGENT}-2.3.1"
    wait.until(lambda: reg.exists(lambda: reg.get(api, gitops.team, "agentversions", name)), timeout=SYNC_TIMEOUT,
               interval=1, what=f"Argo CD to publish {name}")
    reg.report_results(api, gitops.team, name, **reg.GOOD_RESULTS)
    return wait_synced(api, gitops.git("rev-parse", "HEAD"))


def test_every_kind_is_synced_and_healthy_with_the_registry_health_checks(api, gitops, synced, operator):
    found = resources(synced)
    team, dev = gitops.team, gitops.dev
    live = {
        ("TenantPolicy", gitops.tenant): reg.custom(api).get_cluster_custom_object(GROUP, VERSION, "tenantpolicies",
                                                                                   gitops.tenant),
        ("Agent", reg.AGENT): reg.get(api, team, "agents", reg.AGENT),
        ("AgentVersion", f"{reg.AGENT}-2.3.1"): reg.get(api, team, "agentversions", f"{reg.AGENT}-2.3.1"),
        ("AgentVersion", f"{reg.AGENT}-2.4.0"): reg.get(api, team, "agentversions", f"{reg.AGENT}-2.4.0"),
        ("Promotion", f"{reg.AGENT}-2.3.1-to-experimental"):
            reg.get(api, team, "promotions", f"{reg.AGENT}-2.3.1-to-experimental"),
        ("AgentDeployment", "cbam-calculator"): reg.get(api, dev, "agentdeployments", "cbam-calculator"),
    }
    # What each health.lua says for the live object: the operator's own words.
    expected = {
        ("TenantPolicy", gitops.tenant): condition_message(live["TenantPolicy", gitops.tenant], "Ready"),
        ("Agent", reg.AGENT): condition_message(live["Agent", reg.AGENT], "Ready"),
        ("AgentVersion", f"{reg.AGENT}-2.3.1"): f"{reg.AGENT}@2.3.1 is experimental",
        ("AgentVersion", f"{reg.AGENT}-2.4.0"): f"{reg.AGENT}@2.4.0 is draft",
        ("Promotion", f"{reg.AGENT}-2.3.1-to-experimental"):
            condition_message(live["Promotion", f"{reg.AGENT}-2.3.1-to-experimental"], "Succeeded"),
        ("AgentDeployment", "cbam-calculator"):
            condition_message(live["AgentDeployment", "cbam-calculator"], "Available"),
    }
    for key, message in expected.items():
        assert key in found, f"{key} is not among the Applications' resources: {sorted(found)}"
        assert found[key]["status"] == "Synced", found[key]
        health = found[key].get("health") or {}
        assert (health.get("status"), health.get("message")) == ("Healthy", message), found[key]
    assert live["AgentDeployment", "cbam-calculator"]["status"]["resolvedVersion"] == "2.3.1"


def test_a_promotion_and_its_rollback_are_commits(api, gitops, synced, operator):
    version = f"{reg.AGENT}-2.4.0"
    # CI has evaluated 2.4.0 and writes its results, as it does for every release.
    reg.report_results(api, gitops.team, version, **reg.GOOD_RESULTS)
    promoted = gitops.commit("Promote gl-cbam-calculator-v2 2.4.0 to experimental", {
        f"promotions/{version}-to-experimental.yaml":
            promotion("2.4.0", f"{version}-to-experimental", "experimental", "cbam-2026.2 passed")})
    apps = wait_synced(api, promoted)
    assert reg.status(api, gitops.team, "promotions", f"{version}-to-experimental")["phase"] == "Succeeded"
    assert reg.status(api, gitops.team, "agentversions", version)["state"] == "experimental"
    assert resources(apps)["AgentVersion", version]["health"]["message"] == f"{reg.AGENT}@2.4.0 is experimental"
    # dev runs the newest version it admits: the one just promoted, without a change to deployments/.
    wait.until(lambda: (s := reg.status(api, gitops.dev, "agentdeployments", "cbam-calculator"))
               .get("resolvedVersion") == "2.4.0" and s.get("phase") == "Available", timeout=90,
               what="dev to run 2.4.0")

    # The rollback is a commit too: a rollback Promotion, applied by auto-sync like the promotion.
    rolled_back = gitops.commit("Roll back gl-cbam-calculator-v2 2.4.0: error rate above the SLO in dev", {
        f"promotions/{version}-rollback.yaml":
            promotion("2.4.0", f"{version}-rollback", "draft", "error rate above the SLO in dev")})
    apps = wait_synced(api, rolled_back)
    assert reg.status(api, gitops.team, "promotions", f"{version}-rollback")["phase"] == "Succeeded"
    history = reg.status(api, gitops.team, "agentversions", version)
    assert history["state"] == "draft"
    assert history["stateHistory"][-1]["reason"] == "error rate above the SLO in dev"
    assert resources(apps)["AgentVersion", version]["health"]["message"] == f"{reg.AGENT}@2.4.0 is draft"
    wait.until(lambda: (s := reg.status(api, gitops.dev, "agentdeployments", "cbam-calculator"))
               .get("resolvedVersion") == "2.3.1" and s.get("phase") == "Available", timeout=90,
               what="dev back on 2.3.1")
    wait_synced(api, rolled_back)


def test_nothing_drifts_once_the_operator_has_reconciled(api, gitops, synced, operator):
    """Argo CD keeps comparing (every reconciliation timeout) while the operator writes status and
    labels: no Application and no resource may turn OutOfSync, and no sync may be needed."""
    head = gitops.git("rev-parse", "HEAD")
    wait_synced(api, head)
    before = {name: (application(api, name)["status"].get("operationState") or {}).get("startedAt")
              for name in APPLICATIONS}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for name in APPLICATIONS:
            app = application(api, name)
            drifted = [(r["kind"], r["name"]) for r in app["status"].get("resources") or []
                       if r.get("status") != "Synced"]
            assert app["status"]["sync"]["status"] == "Synced" and not drifted, \
                f"{name} drifted: {json.dumps(summary(app), indent=1)}"
        time.sleep(1)
    after = {name: (application(api, name)["status"].get("operationState") or {}).get("startedAt")
             for name in APPLICATIONS}
    assert after == before, "Argo CD synced again although nothing changed in git"


def test_removing_a_promotion_from_git_does_not_roll_back(api, gitops, synced, operator):
    """What the README warns about: the state lives in the version's status, so deleting the file of a
    decided Promotion (a `git revert` of its commit) changes no state; with prune off, Argo CD shows the
    Promotion as to be pruned instead of deleting the record."""
    name, version = f"{reg.AGENT}-2.3.1-to-experimental", f"{reg.AGENT}-2.3.1"
    assert reg.status(api, gitops.team, "agentversions", version)["state"] == "experimental"
    gitops.git("rm", "--quiet", f"promotions/{name}.yaml")
    removed = gitops.commit(f"Remove the Promotion {name}")

    def to_prune():
        app = application(api, "greenlang-promotions")
        sync = app.get("status", {}).get("sync", {})
        flagged = [r for r in app["status"].get("resources") or [] if r["name"] == name and r.get("requiresPruning")]
        return sync.get("revision") == removed and sync.get("status") == "OutOfSync" and flagged

    wait.until(to_prune, timeout=SYNC_TIMEOUT, interval=1, what=f"{name} OutOfSync, to be pruned")
    assert reg.exists(lambda: reg.get(api, gitops.team, "promotions", name))
    assert reg.status(api, gitops.team, "agentversions", version)["state"] == "experimental"
    # Putting the file back (reverting the removal) brings the Application back in sync, with no change.
    gitops.git("revert", "--quiet", "--no-edit", "HEAD")
    restored = gitops.git("rev-parse", "HEAD")
    wait_synced(api, restored, ("greenlang-promotions",))


def test_platform_values_render_with_the_chart():
    """argocd/platform.yaml renders the chart with platform/values.yaml: the values must pass the chart's
    schema and give what they promise (cert-manager certificates, an external database, the health checks)."""
    build.ensure(("helm",))
    platform = yaml.safe_load((GITOPS / "argocd" / "platform.yaml").read_text())
    chart = platform["spec"]["sources"][0]
    assert (chart["path"], chart["helm"]["valueFiles"]) == ("helm/greenlang-registry", ["$values/platform/values.yaml"])
    result = subprocess.run([str(build.binary("helm")), "template", "greenlang-registry", str(REPO / chart["path"]),
                             "--namespace=greenlang-system", f"--values={GITOPS / 'platform' / 'values.yaml'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    kinds = {doc["kind"] for doc in rendered}
    assert {"CustomResourceDefinition", "Certificate", "ServiceMonitor", "PrometheusRule"} <= kinds, kinds
    assert "StatefulSet" not in kinds, "the bundled Postgres is rendered although an external DSN is set"
    health = next(doc for doc in rendered
                  if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-argocd-health"))
    assert set(health["data"]) == set(argocd.health_customizations())
