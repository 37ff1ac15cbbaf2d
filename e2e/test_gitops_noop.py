"""GitOps without drift: applying a Git repository's manifests again, once the operator has
reconciled them, writes nothing, and `kubectl diff` (what Argo CD compares) finds nothing.

Argo CD applies again whenever it sees a difference, so anything the registry writes by itself
(the identity annotations the API server stamps, the webhook's defaults, the operator's
bookkeeping) that a repeated apply or its dry run would rewrite is endless churn. Everything
that writes runs (webhook server, with the embedded policy engine, and operator, on a control
plane of their own); a platform admin applies the TenantPolicy, a tenant developer the rest, both as Argo CD's field
manager, with a server-side apply (Argo CD's `ServerSideApply=true`) or a client-side one (its
default).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from e2e import REPO
from e2e import governed as setup
from e2e import registry as reg
from e2e import wait
from gl_api import GROUP, VERSION, naming

ARGOCD = "argocd-controller"  # the field manager Argo CD applies with
PLATFORM_ADMIN = "pat"
DEVELOPER = "alice@abc.example.com"  # a developer of the tenant in examples/tenant-policy.yaml
VERSION_NAME = naming.object_name(reg.AGENT, "2.3.1")
PROMOTION = "gl-cbam-calculator-v2-2.3.1-to-experimental"  # examples/promotion.yaml


@pytest.fixture(scope="module")
def governed(tmp_path_factory):
    with setup.running(tmp_path_factory.mktemp("gitops"), "regopy") as env:
        granted = env.apply(reg.binding(f"{PLATFORM_ADMIN}-platform-admin", PLATFORM_ADMIN,
                                        "greenlang-registry:platform-admin"))
        assert granted.returncode == 0, granted.stderr
        yield env


def _example(name: str) -> dict:
    return yaml.safe_load((REPO / "examples" / name).read_text())


def _repository(root: Path, tenant: str) -> dict[str, Path]:
    """A GitOps repository from the examples, one file per sync wave, for a tenant of its own."""
    policy = _example("tenant-policy.yaml")
    policy["metadata"]["name"] = tenant
    del policy["spec"]["teamNamespaces"]  # each run's tenant is a new one; climate-team can have one owner
    for environment in policy["spec"]["environments"]:
        environment["namespace"] = f"{tenant}-{environment['name']}"
    dev = f"{tenant}-dev"
    agent, version = (dict(d, metadata={**d["metadata"], "namespace": dev})
                      for d in yaml.safe_load_all((REPO / "examples" / "cbam-calculator.yaml").read_text()))
    promotion = _example("promotion.yaml")
    promotion["metadata"]["namespace"] = dev
    deployment = _example("agent-deployment-dev.yaml")
    deployment["metadata"]["namespace"] = dev
    deployment["spec"]["agent"] = f"{dev}/{reg.AGENT}"
    waves = {"tenant": [policy], "catalogue": [agent, version], "promotion": [promotion], "deployment": [deployment]}
    root.mkdir()
    files = {}
    for wave, manifests in waves.items():
        files[wave] = root / f"{wave}.yaml"
        files[wave].write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    return files


def _user(wave: str) -> str:
    return PLATFORM_ADMIN if wave == "tenant" else DEVELOPER


def _apply(env, mode: str, wave: str, path: Path):
    server_side = ["--server-side"] if mode == "server-side" else []
    return env.kubectl("apply", *server_side, f"--field-manager={ARGOCD}", "-f", str(path), as_user=_user(wave))


def _drift(env, mode: str, files: dict[str, Path]) -> dict[str, str]:
    """What `kubectl diff` (a dry run of the same apply) finds, by wave; nothing when in sync."""
    server_side = ["--server-side"] if mode == "server-side" else []
    found = {}
    for wave, path in files.items():
        diff = env.kubectl("diff", *server_side, f"--field-manager={ARGOCD}", "-f", str(path), as_user=_user(wave))
        if (diff.returncode, diff.stdout) != (0, ""):
            found[wave] = f"exit {diff.returncode}\n{diff.stdout}{diff.stderr}"
    return found


def _versions(env, files: dict[str, Path]) -> dict[str, str]:
    """Every object's resourceVersion, by kind/namespace/name."""
    versions = {}
    for path in files.values():
        listed = env.kubectl("get", "-f", str(path), "-o", "json")
        assert listed.returncode == 0, listed.stderr
        found = json.loads(listed.stdout)
        for obj in found.get("items", [found]):
            meta = obj["metadata"]
            versions[f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"] = meta["resourceVersion"]
    return versions


def _condition(obj: dict, kind: str) -> str | None:
    found = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind]
    return found[0]["status"] if found else None


def _settled(env, files: dict[str, Path], quiet: float = 3.0) -> dict[str, str]:
    """The resourceVersions once nothing has written to the objects for ``quiet`` seconds: the
    operator (resyncing every second) has finished with them."""
    previous: dict[str, str] = {}

    def unchanged():
        nonlocal previous
        current = _versions(env, files)
        same, previous = current == previous, current
        return same and current

    return wait.until(unchanged, timeout=90, interval=quiet, what="the operator to stop writing")


@pytest.mark.parametrize("mode", ["server-side", "client-side"])
def test_a_repeated_apply_after_reconciliation_changes_nothing(governed, tmp_path, mode):
    env, tenant = governed, f"gitops-{mode}"
    dev = f"{tenant}-dev"
    files = _repository(tmp_path / "repo", tenant)

    # First sync, wave by wave (as sync waves order them), each reconciled before the next.
    assert (applied := _apply(env, mode, "tenant", files["tenant"])).returncode == 0, applied.stderr
    wait.until(lambda: _condition(reg.custom(env.api).get_cluster_custom_object(
        GROUP, VERSION, "tenantpolicies", tenant), "Ready") == "True", what=f"TenantPolicy {tenant} Ready")
    # Kubernetes refuses objects under a quota until the quota controller has counted usage.
    wait.until(lambda: "requests.cpu" in env.kubectl("get", "resourcequota", "greenlang-tenant-quota", "-n", dev,
                                                     "-o", "jsonpath={.status.used}").stdout,
               what=f"the tenant quota in {dev} to be counted")
    assert (applied := _apply(env, mode, "catalogue", files["catalogue"])).returncode == 0, applied.stderr
    reg.wait_state(env.api, dev, VERSION_NAME, "draft")
    reg.report_results(env.api, dev, VERSION_NAME, **reg.GOOD_RESULTS)  # CI's evaluation, through status
    assert (applied := _apply(env, mode, "promotion", files["promotion"])).returncode == 0, applied.stderr
    reg.wait_phase(env.api, dev, PROMOTION, "Succeeded")
    reg.wait_state(env.api, dev, VERSION_NAME, "experimental")
    wait.until(lambda: reg.status(env.api, dev, "agents", reg.AGENT).get("latestVersion") == "2.3.1",
               what="the Agent's summary")
    assert (applied := _apply(env, mode, "deployment", files["deployment"])).returncode == 0, applied.stderr
    wait.until(lambda: _condition(reg.get(env.api, dev, "agentdeployments", "cbam-calculator"),
                                  "Available") == "True", what="the AgentDeployment Available")
    reconciled = _settled(env, files)

    # Argo CD compares, then syncs the whole repository again: neither may find or write anything.
    assert _drift(env, mode, files) == {}
    for wave, path in files.items():
        assert (applied := _apply(env, mode, wave, path)).returncode == 0, applied.stderr
    assert _versions(env, files) == reconciled
    assert _drift(env, mode, files) == {}
