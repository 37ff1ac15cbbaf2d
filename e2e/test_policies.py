"""The Rego policies: `opa test` passes, the OPA server and regopy decide every case alike, through the
cached views as on full objects, and an engine without the policies refuses instead of allowing."""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest
import yaml

from e2e import REPO
from gl_devenv import build, webhook_service
from gl_devenv.cluster import LocalCluster
from gl_api import labels
from gl_policy import DECISIONS, REVISION_FILE, engines, inputs, revision_module, views

POLICIES = REPO / "policies"


def _opa(*args: str) -> subprocess.CompletedProcess[str]:
    build.ensure(["opa"])
    return subprocess.run([str(build.binary("opa")), *args], capture_output=True, text=True)


def test_opa_test_passes():
    result = _opa("test", str(POLICIES), "-v")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    assert "PASS:" in result.stdout


def test_policies_are_strict_v1_and_formatted():
    assert _opa("check", "--strict", str(POLICIES)).returncode == 0
    unformatted = _opa("fmt", "--list", str(POLICIES))
    assert unformatted.stdout.strip() == "", f"run `opa fmt -w policies`: {unformatted.stdout}"


def test_every_decision_defines_deny_and_warn():
    for decision in DECISIONS:
        text = (POLICIES / decision / "policy.rego").read_text()
        assert "deny contains" in text and "warn contains" in text, decision
        assert 'decision := {"deny": deny, "warn": warn}' in text, decision
        assert (POLICIES / decision / "policy_test.rego").exists()


class Engines:
    """Both engines on one event loop, asked synchronously by the tests."""

    def __init__(self, opa_url: str, token: str):
        self.loop = asyncio.new_event_loop()
        self.engines: list[engines.Engine] = [engines.RegoEngine(), engines.OpaServerEngine(opa_url, token=token)]
        for engine in self.engines:
            self.loop.run_until_complete(engine.start())

    def decide(self, decision: str, data: dict) -> list[engines.Verdict]:
        return [self.loop.run_until_complete(engine.decide(decision, data)) for engine in self.engines]

    def close(self) -> None:
        for engine in self.engines:
            self.loop.run_until_complete(engine.close())
        self.loop.close()


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory):
    home = LocalCluster(tmp_path_factory.mktemp("opa"))  # only its process directory: no cluster is started
    both = Engines(webhook_service.start_opa(home), webhook_service.opa_token_file(home).read_text())
    yield both
    both.close()
    home.processes.stop(webhook_service.OPA)


def _examples() -> dict[str, dict]:
    docs = {}
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


def _cases() -> list[tuple[str, str, dict, list[str], list[str]]]:
    ex = _examples()
    agent, version, tenant = ex["Agent"], copy.deepcopy(ex["AgentVersion"]), ex["TenantPolicy"]
    version["metadata"]["namespace"] = "climate-team"
    promotion = copy.deepcopy(ex["Promotion"])
    promotion["metadata"]["namespace"] = "climate-team"
    deployment = copy.deepcopy(ex["AgentDeployment"])
    user = {"username": "alice@abc.example.com", "groups": ["system:authenticated"]}

    def versioned(state, **status):
        v = copy.deepcopy(version)
        v["status"] = {"state": state, **status}
        return v

    def deploy(namespace, state, **extra):
        d = copy.deepcopy(deployment)
        d["metadata"]["namespace"] = namespace
        return {"operation": "CREATE", "user": user, "object": d, "agent": agent, "version": versioned(state),
                "versionChanged": True, "tenant": tenant, "usage": {"deployments": 0}, **extra}

    quoted = copy.deepcopy(promotion)
    quoted["spec"]["reason"] = 'rollout "phase 2" approved; see \\\\wiki'
    quoted["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": '{"kind":"Promotion"}'}
    def images_input(state):
        digest = "sha256:" + "1" * 64
        return {"kind": "Pod", "name": "web", "namespace": "customer-abc-123-prod", "tenant": tenant,
                "images": [{"image": f"r.example.com/cbam@{digest}", "digest": digest,
                            "versions": [{"ref": "gl-cbam-calculator-v2@2.4.0", "state": state}]}]}

    def runtime_input(state, artifact="sha256:" + "2" * 64, overrides=()):
        digest = "sha256:" + "ab" * 32
        return {**images_input(state), "images": [
            {"image": f"localhost/greenlang/agent-runtime@{digest}", "digest": digest, "runtime": True,
             "artifact": artifact, "overrides": list(overrides),
             "versions": [{"ref": "gl-cbam-calculator-v2@2.4.0", "state": state}] if state and artifact else []}]}

    bare = copy.deepcopy(version)
    del bare["spec"]["artifact"], bare["spec"]["image"]
    return [
        ("publish ok", "publish", {"operation": "CREATE", "user": user, "object": version, "agent": agent,
                                   "tenants": [tenant]}, [], []),
        ("publish without agent or digests", "publish", {"operation": "CREATE", "user": user, "object": bare,
                                                         "agent": None, "tenants": []},
         ["rule publish.agent_exists", "rule publish.artifact_digest"],
         ["no TenantPolicy owns namespace"]),
        ("promotion ok", "promotion", {"operation": "CREATE", "user": user, "object": promotion,
                                       "version": versioned("draft"), "tenants": [tenant]}, [], []),
        ("quotes in user text", "promotion", {"operation": "CREATE", "user": user, "object": quoted,
                                              "version": versioned("retired"), "tenants": [tenant]},
         ["cannot move to experimental"], []),
        ("promotion skipping a state", "promotion",
         {"operation": "CREATE", "user": user, "object": {**promotion, "spec": {**promotion["spec"],
                                                                                "targetState": "certified"}},
          "version": versioned("draft"), "tenants": [tenant]}, ["allowed from draft: experimental"], []),
        ("fast track by a developer", "promotion",
         {"operation": "CREATE", "user": user, "version": versioned("experimental"), "tenants": [tenant],
          "object": {**promotion, "spec": {**promotion["spec"], "targetState": "certified",
                                           "fastTrack": {"justification": "CVE", "incident": "INC-1"}}}},
         ["may not fast-track"], []),
        ("certified in production", "deployment", deploy("customer-abc-123-prod", "certified"), [], []),
        ("experimental in production", "deployment", deploy("customer-abc-123-prod", "experimental"),
         ["is experimental; tenant customer-abc-123 allows only certified versions in production"], []),
        ("experimental in staging", "deployment", deploy("customer-abc-123-staging", "experimental"), [],
         ["fine for staging"]),
        ("quota reached", "deployment", deploy("customer-abc-123-prod", "certified", usage={"deployments": 20}),
         ["spec.quotas.maxDeployments"], []),
        ("outside any tenant", "deployment", deploy("elsewhere", "certified", tenant=None),
         ["rule deployment.tenant_environment"], []),
        ("user writes state", "status_write",
         {"user": user, "operator": "system:serviceaccount:greenlang-system:greenlang-registry-operator",
          "kind": "AgentVersion", "oldObject": versioned("draft"), "object": versioned("certified")},
         ["can only be changed by the registry operator"], []),
        ("evaluator writes results", "status_write",
         {"user": user, "operator": "op", "kind": "AgentVersion", "oldObject": versioned("draft"),
          "object": versioned("draft", evaluation={"passed": True})}, [], []),
        ("certified image in production", "images", images_input("certified"), [], []),
        ("experimental image in production", "images", images_input("experimental"),
         ["belongs to gl-cbam-calculator-v2@2.4.0 (experimental), which is not certified"], []),
        ("unpinned image", "images", {**images_input("certified"), "images": [
            {"image": "nginx:latest", "digest": None, "versions": []}]}, ["rule images.pinned"], []),
        ("runtime with a certified artifact", "images", runtime_input("certified"), [], []),
        ("runtime with an experimental artifact", "images", runtime_input("experimental"),
         ["runs artifact sha256:2222", "of gl-cbam-calculator-v2@2.4.0 (experimental), which is not certified",
          "rule images.allowed_state"], []),
        ("runtime with an unregistered artifact", "images", runtime_input(None),
         ["runs artifact sha256:2222", "which belongs to no AgentVersion", "rule images.registered"], []),
        ("runtime without an artifact", "images", runtime_input("certified", artifact=None),
         ["rule images.runtime_artifact"], []),
        ("runtime with its command replaced", "images", runtime_input("certified", overrides=("command", "args")),
         ["changes what it runs (command, args)", "rule images.runtime_entrypoint"], []),
        ("tenant claims new namespaces", "tenancy", inputs.tenancy(tenant, {}, {}), [], []),
        ("tenant claims kube-system and another tenant's namespace", "tenancy",
         inputs.tenancy({**tenant, "spec": {"environments": [{"name": "dev", "namespace": "kube-system"},
                                                             {"name": "prod", "namespace": "beta-prod"}]}},
                        {"beta-prod": {"metadata": {"name": "beta-prod", "labels": {labels.TENANT: "beta"}}}},
                        {"beta-prod": "beta"}),
         ["claims namespace kube-system, which belongs to the cluster", "which TenantPolicy beta already claims"], []),
        ("tenant adopts a marked namespace", "tenancy",
         inputs.tenancy({**tenant, "spec": {"environments": [{"name": "dev", "namespace": "payments"}]}},
                        {"payments": {"metadata": {"name": "payments",
                                                   "annotations": {labels.ADOPTABLE: "true"}}}}, {}),
         [], ["adopts the existing namespace payments"]),
        ("self approval", "approval", {"user": user, "requester": user["username"],
                                       "added": [{"user": user["username"]}], "subjectAccessReview": {"allowed": True}},
         ["rule approval.four_eyes"], []),
        ("forged approval", "approval", {"user": user, "requester": "bob", "added": [{"user": "carol"}],
                                         "subjectAccessReview": {"allowed": False}},
         ["approval in the name of carol refused", "rule approval.verb"], []),
    ]


def _through_views(decision: str, data: dict) -> dict:
    """The input as the webhook server builds it from its caches: views of the looked-up objects."""
    slim = copy.deepcopy(data)
    if slim.get("version"):
        slim["version"] = views.Version.of(slim["version"]).as_input()
    if slim.get("agent"):
        slim["agent"] = views.agent(slim["agent"])
    if isinstance(slim.get("tenant"), dict):  # the tenancy decision names its tenant; the others carry it
        slim["tenant"] = views.tenant(slim["tenant"])
    if slim.get("tenants"):
        slim["tenants"] = [views.tenant(t) for t in slim["tenants"]]
    for key in ("object", "oldObject"):
        if slim.get(key):
            slim[key] = views.trimmed(slim[key])
    return slim


@pytest.mark.parametrize("name, decision, data, denies, warns", _cases(), ids=[c[0] for c in _cases()])
def test_opa_server_and_regopy_decide_alike(both_engines, name, decision, data, denies, warns):
    verdicts = both_engines.decide(decision, data) + both_engines.decide(decision, _through_views(decision, data))
    assert verdicts[0] == verdicts[1], f"{name}: regopy {verdicts[0]} != OPA {verdicts[1]}"
    assert verdicts[2:] == verdicts[:2], f"{name}: the cached views change the decision: {verdicts}"
    verdict = verdicts[0]
    assert len(verdict.deny) == len(denies) if not denies else all(
        any(fragment in message for message in verdict.deny) for fragment in denies), verdict
    assert all(any(fragment in message for message in verdict.warn) for fragment in warns), verdict
    if not denies:
        assert verdict.deny == []


def _check_ready_with(home: LocalCluster, policy_dir) -> None:
    url = webhook_service.start_opa(home, policy_dir=policy_dir)
    loop = asyncio.new_event_loop()
    opa = engines.OpaServerEngine(url, token=webhook_service.opa_token_file(home).read_text())
    try:
        loop.run_until_complete(opa.start())
        loop.run_until_complete(engines.check_ready(opa))
    finally:
        loop.run_until_complete(opa.close())
        loop.close()
        home.processes.stop(webhook_service.OPA)


def test_an_engine_without_the_policies_refuses(tmp_path):
    """No policy loaded is no decision: both engines fail closed instead of finding no denials."""
    home = LocalCluster(tmp_path)
    empty = tmp_path / "no-policies"
    empty.mkdir()
    url = webhook_service.start_opa(home, policy_dir=empty)
    loop = asyncio.new_event_loop()
    opa = engines.OpaServerEngine(url, token=webhook_service.opa_token_file(home).read_text())
    try:
        loop.run_until_complete(opa.start())
        with pytest.raises(engines.PolicyError, match="gave no decision"):
            loop.run_until_complete(opa.decide("publish", {}))
        loop.run_until_complete(opa.close())
    finally:
        loop.close()
        home.processes.stop(webhook_service.OPA)
    with pytest.raises(engines.PolicyError, match="serves policies of revision None"):
        _check_ready_with(home, empty)
    with pytest.raises(engines.PolicyError, match="gave no decision"):
        engines.RegoEngine(empty).evaluate("publish", {})


def test_a_stale_or_partial_bundle_is_not_ready(tmp_path):
    """Every decision answers, yet the policies are not this release's: the engine is not ready."""
    home = LocalCluster(tmp_path)
    stale = tmp_path / "stale"
    shutil.copytree(POLICIES, stale, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    # Another release's policies: one message differs, and so does the revision they were built with.
    policy = stale / "publish" / "policy.rego"
    policy.write_text(policy.read_text().replace("rule publish.agent_exists", "rule publish.agent_present"))
    (stale / REVISION_FILE).write_text(revision_module(stale))
    with pytest.raises(engines.PolicyError, match="stale or partial bundle"):
        _check_ready_with(home, stale)
    # This release's revision, but a decision package missing.
    shutil.copyfile(POLICIES / "publish" / "policy.rego", policy)
    shutil.copyfile(POLICIES / REVISION_FILE, stale / REVISION_FILE)
    shutil.rmtree(stale / "images")
    with pytest.raises(engines.PolicyError, match="greenlang.images gave no decision"):
        _check_ready_with(home, stale)
    _check_ready_with(home, POLICIES)  # this release's policies: ready


def test_opa_answers_only_the_holder_of_its_token(tmp_path):
    home = LocalCluster(tmp_path)
    url = webhook_service.start_opa(home)
    token = webhook_service.opa_token_file(home).read_text()
    try:
        def post(headers: dict) -> int:
            request = urllib.request.Request(f"{url}/v1/data/greenlang/publish/decision", method="POST",
                                             data=json.dumps({"input": {}}).encode(),
                                             headers={"Content-Type": "application/json", **headers})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        assert post({}) == 401
        assert post({"Authorization": "Bearer not-the-token"}) == 401
        assert post({"Authorization": f"Bearer {token}"}) == 200
        assert oct(webhook_service.opa_token_file(home).stat().st_mode & 0o777) == "0o600"
    finally:
        home.processes.stop(webhook_service.OPA)
