"""The lifecycle operator, running as a real process against the real API server."""

from __future__ import annotations

import contextlib
import json
import signal
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from e2e import registry as reg
from e2e import wait
from e2e import REPO
from e2e.operator_process import TEST_CONFIG
from gl_api import GROUP, VERSION, labels, naming
from gl_devenv.cluster import LocalCluster
from gl_operator import agent_status, failpoints


@pytest.fixture
def team(cluster, namespace, operator):
    """A team namespace with users granted and the CBAM Agent published."""
    reg.grant_users(cluster, namespace)
    reg.publish_agent(cluster, namespace)
    return namespace


def to_experimental(cluster, api, namespace, version):
    name = reg.publish_version(cluster, namespace, version)
    reg.wait_state(api, namespace, name, "draft")
    reg.report_results(api, namespace, name, **reg.GOOD_RESULTS)
    reg.promote(cluster, namespace, f"exp-{version}", version, "experimental")
    reg.wait_phase(api, namespace, f"exp-{version}", "Succeeded")
    return name


def to_certified(cluster, api, namespace, version):
    """Certify quickly: fast track (skips the soak), approved by bob."""
    name = to_experimental(cluster, api, namespace, version)
    reg.promote(cluster, namespace, f"cert-{version}", version, "certified", reason="setup",
                fastTrack={"justification": "test setup", "incident": "INC-0"})
    reg.wait_phase(api, namespace, f"cert-{version}", "AwaitingApproval")
    assert reg.approve(cluster, namespace, f"cert-{version}", "bob").returncode == 0
    reg.wait_phase(api, namespace, f"cert-{version}", "Succeeded")
    return name


def test_publish_starts_in_draft_and_agent_summary_follows(cluster, api, team):
    name = reg.publish_version(cluster, team, "2.3.1")
    status = reg.wait_state(api, team, name, "draft")
    assert status["stateHistory"][0]["to"] == "draft"
    accepted = {c["type"]: c for c in status["conditions"]}["Accepted"]
    assert (accepted["status"], accepted["reason"]) == ("True", "Published")
    selected = wait.until(lambda: cluster.kubectl("get", "agentversions", "-n", team, "-l", f"{labels.STATE}=draft",
                                                  "-o", "name").stdout.split(), what="the state label")
    assert selected == [f"agentversion.registry.greenlang.ai/{name}"]
    assert reg.wait_event(api, team, name, "Normal", "Published") == \
        f"{reg.AGENT}@2.3.1 accepted into the registry as draft"

    reg.publish_version(cluster, team, "2.4.0-rc.1")
    agent = wait.until(lambda: (s := reg.status(api, team, "agents", reg.AGENT)).get("versionCounts", {})
                       .get("draft") == 2 and s, what="Agent status to count two drafts")
    assert agent["latestVersion"] == "2.4.0-rc.1"
    assert "certifiedVersion" not in agent


def test_an_agent_deleted_while_its_summary_is_computed_is_left_deleted(cluster, api, namespace):
    """A version event races the Agent's deletion: the operator must neither crash nor bring it back."""
    reg.publish_agent(cluster, namespace)
    stale = reg.custom(api).get_namespaced_custom_object(GROUP, VERSION, namespace, "agents", reg.AGENT)
    reg.custom(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, "agents", reg.AGENT)
    wait.until(lambda: not reg.custom(api).list_namespaced_custom_object(GROUP, VERSION, namespace, "agents")["items"],
               what="the Agent to be gone")
    agent_status.write_summary(api, stale, agent_status.summarize([]))
    assert reg.custom(api).list_namespaced_custom_object(GROUP, VERSION, namespace, "agents")["items"] == []


def test_a_state_label_edited_by_hand_is_put_right(cluster, api, team):
    """The operator's own label writes are not changes to it (essence.py); a hand edit is still undone."""
    name = reg.publish_version(cluster, team, "2.3.1")
    reg.wait_state(api, team, name, "draft")
    edited = cluster.kubectl("label", "agentversion", name, "-n", team, f"{labels.STATE}=certified", "--overwrite",
                             check=False)
    assert edited.returncode == 0, edited.stderr
    wait.until(lambda: cluster.kubectl("get", "agentversion", name, "-n", team, "-o",
                                       "jsonpath={.metadata.labels.registry\\.greenlang\\.ai/state}").stdout == "draft",
               timeout=30, what="the state label to say draft again")


def _operator_lists(operator) -> dict[str, float]:
    """LIST requests the operator's reconcilers have made, by resource (its own request counter)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as reply:
        families = text_string_to_metric_families(reply.read().decode())
    return {sample.labels["resource"]: sample.value for family in families
            if family.name == "greenlang_registry_operator_api_requests" for sample in family.samples
            if sample.name.endswith("_total") and sample.labels["verb"] == "list"}


def test_a_burst_of_publishes_lists_nothing(cluster, api, namespace, operator):
    """Each version event reads the agent's versions and its open Promotions from the operator's
    watch-backed indexes: a burst of publishes costs no LIST (it was two per event, quadratic)."""
    saved = operator.config.read_text(), dict(operator.env)
    operator.stop()
    operator.reconfigure({**TEST_CONFIG, "resyncSeconds": 3600}, saved[1])  # its LISTs are not the handlers'
    try:
        operator.start()
        reg.grant_users(cluster, namespace)
        reg.publish_agent(cluster, namespace)
        wait.until(lambda: "versionCounts" in reg.status(api, namespace, "agents", reg.AGENT), what="Agent summary")
        wait.until(lambda: _operator_lists(operator).get("tenantpolicies"), what="the first resync pass")
        # A Promotion waiting for the first version of the burst (it fails if unseen for 8 s).
        reg.promote(cluster, namespace, "exp-3-0-0", "3.0.0", "experimental")
        before = _operator_lists(operator)
        names = [reg.publish_version(cluster, namespace, f"3.0.{n}") for n in range(12)]
        for name in names:
            reg.wait_state(api, namespace, name, "draft")
        wait.until(lambda: reg.status(api, namespace, "agents", reg.AGENT).get("versionCounts", {}).get("draft") == 12,
                   what="the Agent summary to count the burst")
        promotion = reg.status(api, namespace, "promotions", "exp-3-0-0")
        checks = reg.checks(promotion)  # judged on the version now found
        assert checks.get("transition", (False,))[0] and "agent-version-exists" not in checks, promotion
        after = _operator_lists(operator)
        assert {r: after.get(r, 0) - before.get(r, 0) for r in ("agentversions", "promotions")} == \
            {"agentversions": 0, "promotions": 0}
    finally:
        operator.stop()  # the operator fixture starts it again, as it was, for the next test
        operator.config.write_text(saved[0])


def test_version_without_agent_is_not_accepted_until_the_agent_exists(cluster, api, namespace, operator):
    name = reg.publish_version(cluster, namespace, "1.0.0")

    def not_accepted():
        conditions = {c["type"]: c for c in reg.status(api, namespace, "agentversions", name).get("conditions", [])}
        return conditions.get("Accepted", {}).get("reason") == "AgentNotFound" and conditions["Accepted"]

    condition = wait.until(not_accepted, what="Accepted=False AgentNotFound")
    assert condition["status"] == "False"
    assert f"Agent {reg.AGENT} does not exist in namespace {namespace}" in condition["message"]
    reg.wait_event(api, namespace, name, "Warning", "AgentNotFound")
    reg.publish_agent(cluster, namespace)
    reg.wait_state(api, namespace, name, "draft")


def test_promotion_to_experimental_reports_each_check(cluster, api, team):
    name = reg.publish_version(cluster, team, "2.3.1")
    reg.wait_state(api, team, name, "draft")
    reg.promote(cluster, team, "to-exp", "2.3.1", "experimental")
    pending = reg.wait_phase(api, team, "to-exp", "Checking")
    assert reg.checks(pending)["evaluation-passed"] == (
        False, "no evaluation result yet; the evaluation framework reports it in status.evaluation")
    assert reg.checks(pending)["security-scan"] == (False, "no security scan yet; CI reports it in status.securityScan")

    reg.report_results(api, team, name, evaluation={"passed": False, "suite": "cbam-2026.1"},
                       securityScan={"critical": 2, "high": 0, "scanner": "trivy 0.58"})
    failing = wait.until(lambda: (c := reg.checks(reg.status(api, team, "promotions", "to-exp")))
                         .get("evaluation-passed", (None,))[0] is False and "failed" in c["evaluation-passed"][1] and c,
                         what="the failed evaluation to be reported")
    assert failing["evaluation-passed"][1].startswith("cbam-2026.1 failed")
    assert failing["security-scan"] == (False, "2 critical findings (trivy 0.58); 0 are allowed")
    assert reg.status(api, team, "agentversions", name)["state"] == "draft"

    reg.report_results(api, team, name, evaluation={"passed": True, "suite": "cbam-2026.1"},
                       securityScan={"critical": 0, "high": 1, "scanner": "trivy 0.58"})
    done = reg.wait_phase(api, team, "to-exp", "Succeeded")
    assert all(passed for passed, _ in reg.checks(done).values())
    version = reg.wait_state(api, team, name, "experimental")
    assert version["stateHistory"][-1] | {"at": None} == {
        "from": "draft", "to": "experimental", "by": "alice", "promotion": "to-exp",
        "reason": "promoted to experimental", "at": None}
    reg.wait_event(api, team, name, "Normal", "StateChanged")


def test_invalid_transition_is_rejected_with_the_allowed_targets(cluster, api, team):
    name = reg.publish_version(cluster, team, "2.3.1")
    reg.wait_state(api, team, name, "draft")
    reg.promote(cluster, team, "skip-ahead", "2.3.1", "certified")
    rejected = reg.wait_phase(api, team, "skip-ahead", "Rejected")
    assert reg.checks(rejected)["transition"] == (
        False, "cannot move from draft to certified; allowed from draft: experimental")
    assert "cannot move from draft to certified" in reg.wait_event(api, team, "skip-ahead", "Warning", "Rejected")


def test_certification_waits_for_an_authorised_second_person(cluster, api, team, operator):
    name = to_experimental(cluster, api, team, "2.3.1")
    reg.report_results(api, team, name, usage={"requests": 200, "errorRate": 0.0, "window": "1d"})
    reg.promote(cluster, team, "certify", "2.3.1", "certified", reason="ready for production")
    waiting = reg.wait_phase(api, team, "certify", "Checking")
    assert reg.checks(waiting)["usage-requests"] == (False, "200 requests in 1d; certified needs at least 1000")

    reg.report_results(api, team, name, usage=reg.GOOD_RESULTS["usage"])
    awaiting = reg.wait_phase(api, team, "certify", "AwaitingApproval", timeout=30)  # after the 10s soak
    assert reg.checks(awaiting)["soak-time"][0] is True
    assert "waiting for an approval by a user other than the requester alice" in reg.checks(awaiting)["approval"][1]

    by_requester = reg.approve(cluster, team, "certify", "alice")
    assert by_requester.returncode != 0
    assert "four-eyes rule: the requester of a Promotion cannot approve it" in by_requester.stderr
    without_verb = reg.approve(cluster, team, "certify", "carol")
    assert without_verb.returncode != 0
    assert 'user carol may not approve promotions in namespace' in without_verb.stderr
    assert 'needs the RBAC verb "approve"' in without_verb.stderr
    forged = cluster.kubectl("patch", "promotion", "certify", "-n", team, "--type=json", "--as=carol", "-p",
                             '[{"op":"add","path":"/spec/approvals","value":[{"user":"bob"}]}]', check=False)
    assert forged.returncode != 0 and "an approval must be given in your own name" in forged.stderr
    assert reg.status(api, team, "promotions", "certify")["phase"] == "AwaitingApproval"

    assert reg.approve(cluster, team, "certify", "bob").returncode == 0
    done = reg.wait_phase(api, team, "certify", "Succeeded")
    assert reg.checks(done)["approval"] == (True, "approved by bob")
    version = reg.wait_state(api, team, name, "certified")
    assert version["stateHistory"][-1]["reason"] == "ready for production (approved by bob)"
    agent = wait.until(lambda: (s := reg.status(api, team, "agents", reg.AGENT)).get("certifiedVersion") and s,
                       what="Agent certifiedVersion")
    assert agent["certifiedVersion"] == "2.3.1"
    assert 'greenlang_registry_promotions_total{result="Succeeded",target_state="certified"}' in operator.metrics()


def test_fast_track_skips_soak_and_usage_never_the_scan(cluster, api, team):
    name = to_experimental(cluster, api, team, "2.3.2")
    reg.report_results(api, team, name, usage=None, securityScan={"critical": 1, "high": 0, "scanner": "trivy"})
    reg.promote(cluster, team, "hotfix", "2.3.2", "certified", reason="CVE-2026-1234 fix",
                fastTrack={"justification": "actively exploited", "incident": "INC-4711"})
    blocked = reg.wait_phase(api, team, "hotfix", "Checking")
    found = reg.checks(blocked)
    assert found["soak-time"] == (True, "skipped: fast track for incident INC-4711")
    assert found["usage-requests"] == (True, "skipped: fast track for incident INC-4711")
    assert found["security-scan"] == (False, "1 critical findings (trivy); 0 are allowed")

    reg.report_results(api, team, name, securityScan={"critical": 0, "high": 0, "scanner": "trivy"})
    reg.wait_phase(api, team, "hotfix", "AwaitingApproval")
    assert reg.approve(cluster, team, "hotfix", "bob").returncode == 0
    reg.wait_phase(api, team, "hotfix", "Succeeded")
    history = reg.wait_state(api, team, name, "certified")["stateHistory"][-1]
    assert history["reason"] == "CVE-2026-1234 fix (approved by bob) [fast track: incident INC-4711]"


def test_deprecation_needs_a_certified_replacement(cluster, api, team):
    old = to_certified(cluster, api, team, "2.3.1")
    reg.promote(cluster, team, "deprecate", "2.3.1", "deprecated", reason="superseded",
                deprecation={"replacement": "2.4.0"})
    waiting = reg.wait_phase(api, team, "deprecate", "Checking")
    assert reg.checks(waiting)["replacement-certified"] == (
        False, f"replacement {reg.AGENT}@2.4.0 does not exist; publish and certify it first")

    to_experimental(cluster, api, team, "2.4.0")
    still = wait.until(lambda: "is experimental" in reg.checks(reg.status(api, team, "promotions", "deprecate"))
                       .get("replacement-certified", (None, ""))[1] and reg.status(api, team, "promotions", "deprecate"),
                       what="the replacement's state to be reported")
    assert reg.checks(still)["replacement-certified"][1].endswith("is experimental; it must be certified")
    assert reg.status(api, team, "agentversions", old)["state"] == "certified"


def test_deprecation_warns_deployments_then_sunset_retires(cluster, api, team):
    old = to_certified(cluster, api, team, "2.3.1")
    to_certified(cluster, api, team, "2.4.0")
    deployment = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentDeployment", "metadata": {"name": "cbam"},
                  "spec": {"agent": f"{team}/{reg.AGENT}", "version": "2.3.1", "replicas": 1}}
    assert reg.apply(cluster, team, deployment).returncode == 0

    sunset = (datetime.now(timezone.utc) + timedelta(seconds=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reg.promote(cluster, team, "deprecate", "2.3.1", "deprecated", reason="2.4.0 fixes rounding",
                deprecation={"replacement": "2.4.0", "sunsetAt": sunset})
    reg.wait_phase(api, team, "deprecate", "Succeeded")
    deprecated = reg.wait_state(api, team, old, "deprecated")
    assert deprecated["deprecation"]["replacement"] == "2.4.0"
    assert deprecated["deprecation"]["sunsetAt"] == sunset
    assert deprecated["deprecation"]["announcedAt"]

    def warned():
        conditions = {c["type"]: c for c in reg.status(api, team, "agentdeployments", "cbam").get("conditions", [])}
        return conditions.get("VersionDeprecated", {}).get("status") == "True" and conditions["VersionDeprecated"]

    condition = wait.until(warned, what="the deployment to be warned")
    assert f"{reg.AGENT}@2.3.1 is deprecated; replacement 2.4.0" in condition["message"]
    reg.wait_event(api, team, "cbam", "Warning", "DeprecatedVersion")

    retired = reg.wait_state(api, team, old, "retired", timeout=30)
    last = retired["stateHistory"][-1]
    assert (last["from"], last["to"], last["reason"]) == ("deprecated", "retired", f"sunset {sunset} reached")
    assert last["by"].startswith("system:serviceaccount:")
    reg.wait_event(api, team, old, "Normal", "Retired")


def test_default_sunset_is_ninety_days(cluster, api, team):
    old = to_certified(cluster, api, team, "2.3.1")
    to_certified(cluster, api, team, "2.4.0")
    reg.promote(cluster, team, "deprecate", "2.3.1", "deprecated", deprecation={"replacement": "2.4.0"})
    reg.wait_phase(api, team, "deprecate", "Succeeded")
    deprecation = reg.status(api, team, "agentversions", old)["deprecation"]
    announced = datetime.fromisoformat(deprecation["announcedAt"].replace("Z", "+00:00"))
    sunset = datetime.fromisoformat(deprecation["sunsetAt"].replace("Z", "+00:00"))
    assert sunset - announced == timedelta(days=90)


def test_rollback_undoes_certification_with_a_recorded_reason(cluster, api, team):
    name = to_certified(cluster, api, team, "2.3.1")
    reg.promote(cluster, team, "no-reason", "2.3.1", "experimental")
    rejected = reg.wait_phase(api, team, "no-reason", "Rejected")
    assert reg.checks(rejected)["reason"][1].startswith("a rollback or withdrawal needs spec.reason")

    reg.promote(cluster, team, "rollback", "2.3.1", "experimental", reason="p95 latency regression in production")
    reg.wait_phase(api, team, "rollback", "Succeeded")
    version = reg.wait_state(api, team, name, "experimental")
    last = version["stateHistory"][-1]
    assert (last["from"], last["to"], last["reason"]) == ("certified", "experimental",
                                                          "p95 latency regression in production")
    agent = wait.until(lambda: (s := reg.status(api, team, "agents", reg.AGENT)).get("versionCounts", {})
                       .get("certified") == 0 and s, what="the Agent to count no certified version")
    assert "certifiedVersion" not in agent


def test_operator_killed_mid_promotion_resumes_without_a_second_transition(cluster, api, team, operator):
    name = reg.publish_version(cluster, team, "2.3.1")
    reg.wait_state(api, team, name, "draft")
    reg.report_results(api, team, name, **reg.GOOD_RESULTS)
    operator.stop()
    # Crash right after the state change is written, before the Promotion records success.
    operator.start(env={"GL_FAILPOINTS": "after-transition"})
    reg.promote(cluster, team, "crashy", "2.3.1", "experimental")
    assert operator.process is not None
    assert operator.process.wait(timeout=30) == failpoints.EXIT_CODE
    assert reg.status(api, team, "agentversions", name)["state"] == "experimental"
    assert reg.status(api, team, "promotions", "crashy").get("phase") != "Succeeded"

    operator.start()
    reg.wait_phase(api, team, "crashy", "Succeeded")
    history = reg.status(api, team, "agentversions", name)["stateHistory"]
    assert [entry["to"] for entry in history] == ["draft", "experimental"]

    # A request made while the operator is down (killed hard) is handled when it comes back.
    operator.stop(signal.SIGKILL)
    reg.promote(cluster, team, "withdraw", "2.3.1", "draft", reason="found a rounding bug")
    operator.start()
    reg.wait_phase(api, team, "withdraw", "Succeeded")
    history = reg.status(api, team, "agentversions", name)["stateHistory"]
    assert [entry["to"] for entry in history] == ["draft", "experimental", "draft"]


def test_only_the_status_subresource_carries_results(cluster, api, team):
    """Evaluators write results with their own role; the published spec stays out of their reach."""
    name = reg.publish_version(cluster, team, "2.3.1")
    reg.wait_state(api, team, name, "draft")
    evaluator = reg.binding("ci-evaluator", "ci-bot", "greenlang-registry:evaluator", team)
    assert reg.apply(cluster, team, evaluator).returncode == 0
    ok = cluster.kubectl("patch", "agentversion", name, "-n", team, "--subresource=status", "--type=merge",
                         "--as=ci-bot", "-p", '{"status":{"evaluation":{"passed":true,"score":0.97}}}', check=False)
    assert ok.returncode == 0, ok.stderr
    denied = cluster.kubectl("patch", "agentversion", name, "-n", team, "--type=merge", "--as=ci-bot",
                             "-p", '{"metadata":{"labels":{"x":"y"}}}', check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr
    assert reg.status(api, team, "agentversions", name)["evaluation"]["score"] == 0.97
    assert client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, team, "agentversions", naming.object_name(reg.AGENT, "2.3.1"))["status"]["state"] == "draft"


def test_certification_without_a_recorded_requester_is_never_approved(cluster, api, team):
    """A careless admin removed the identity policy: a Promotion without requester is never certified."""
    to_experimental(cluster, api, team, "2.3.1")
    anonymous = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Promotion", "metadata": {"name": "who-asked"},
                 "spec": {"agentVersion": f"{reg.AGENT}@2.3.1", "targetState": "certified", "reason": "x",
                          "fastTrack": {"justification": "test", "incident": "INC-1"}}}
    identity = REPO / "crds" / "admission_identity.yaml"
    for kind in ("mutatingadmissionpolicybinding", "validatingadmissionpolicybinding"):
        cluster.kubectl("delete", kind, "identity.registry.greenlang.ai")
    try:
        wait.until(lambda: reg.identity_stamped(cluster, team, anonymous) is False,
                   what="the identity policy to be gone")
        assert reg.apply(cluster, team, anonymous).returncode == 0
    finally:
        cluster.kubectl("apply", "-f", str(identity))
        wait.until(lambda: reg.identity_stamped(cluster, team, {**anonymous, "metadata": {"name": "probe"}}),
                   what="the identity policy to be back")
    reg.wait_phase(api, team, "who-asked", "AwaitingApproval")
    assert reg.approve(cluster, team, "who-asked", "bob").returncode == 0
    message = wait.until(lambda: "does not count" in (m := reg.checks(reg.status(api, team, "promotions", "who-asked"))
                                                      ["approval"][1]) and m, what="the approval to be judged")
    assert "approval by bob does not count: the Promotion has no recorded requester" in message
    assert reg.status(api, team, "promotions", "who-asked")["phase"] == "AwaitingApproval"


def test_rolling_back_a_deprecation_needs_a_reason_and_a_second_person(cluster, api, team):
    """deprecated -> certified is allowed until retirement, with a reason and an approval, in Rego and operator alike."""
    old = to_certified(cluster, api, team, "2.3.1")
    to_certified(cluster, api, team, "2.4.0")
    reg.promote(cluster, team, "deprecate", "2.3.1", "deprecated", deprecation={"replacement": "2.4.0"})
    reg.wait_phase(api, team, "deprecate", "Succeeded")
    reg.wait_state(api, team, old, "deprecated")

    reg.promote(cluster, team, "undeprecate", "2.3.1", "certified", reason="2.4.0 breaks EU filings")
    waiting = reg.wait_phase(api, team, "undeprecate", "AwaitingApproval")
    assert reg.checks(waiting)["transition"] == (True, "deprecated -> certified is allowed")
    assert "waiting for an approval by a user other than the requester alice" in reg.checks(waiting)["approval"][1]
    assert reg.status(api, team, "agentversions", old)["state"] == "deprecated"

    assert reg.approve(cluster, team, "undeprecate", "bob").returncode == 0
    reg.wait_phase(api, team, "undeprecate", "Succeeded")
    version = reg.wait_state(api, team, old, "certified")
    last = version["stateHistory"][-1]
    assert (last["from"], last["to"], last["reason"]) == ("deprecated", "certified",
                                                          "2.4.0 breaks EU filings (approved by bob)")
    assert "deprecation" not in version  # no sunset left to retire it


def test_a_promotion_whose_version_never_comes_fails_after_the_deadline(cluster, api, team):
    reg.promote(cluster, team, "ghost", "9.9.9", "experimental")
    waiting = reg.wait_phase(api, team, "ghost", "Checking")
    assert "if this persists" in reg.checks(waiting)["agent-version-exists"][1]

    failed = reg.wait_phase(api, team, "ghost", "Failed", timeout=30)  # checkDeadlineSeconds is 8 in TEST_CONFIG
    passed, message = reg.checks(failed)["agent-version-exists"]
    assert not passed and message.startswith(f"AgentVersion {reg.AGENT}@9.9.9 does not exist in this namespace")
    assert "gave up after" in message and "create a new Promotion once it can be evaluated" in message
    conditions = {c["type"]: c for c in failed["conditions"]}
    assert (conditions["Succeeded"]["status"], conditions["Succeeded"]["reason"]) == ("False", "VersionNotFound")
    assert (conditions["Evaluated"]["status"], conditions["Evaluated"]["reason"]) == ("False", "VersionNotFound")
    assert "does not exist" in reg.wait_event(api, team, "ghost", "Warning", "Failed")

    # Failed is final: the version appearing later does not revive the request.
    reg.publish_version(cluster, team, "9.9.9")
    reg.wait_state(api, team, naming.object_name(reg.AGENT, "9.9.9"), "draft")
    assert reg.status(api, team, "promotions", "ghost")["phase"] == "Failed"


OPERATOR_ROLE = "greenlang-registry:component:operator"


@contextlib.contextmanager
def _operator_role_without_access_reviews(cluster):
    """The operator's own role (crds/rbac_operator.yaml) minus the rule that lets it ask the authorizer
    (subjectaccessreviews): the approvals of a certification cannot be checked."""
    if not isinstance(cluster, LocalCluster):
        pytest.fail("this test changes the role the local operator runs with (GL_E2E_CLUSTER=local)")
    role = json.loads(cluster.kubectl("get", "clusterrole", OPERATOR_ROLE, "-o", "json").stdout)
    limited = [rule for rule in role["rules"] if "subjectaccessreviews" not in rule["resources"]]
    assert len(limited) == len(role["rules"]) - 1

    def set_rules(rules: list) -> None:
        cluster.kubectl("patch", "clusterrole", OPERATOR_ROLE, "--type=merge", "-p", json.dumps({"rules": rules}))

    set_rules(limited)
    try:
        yield
    finally:
        set_rules(role["rules"])


def test_checks_that_cannot_be_evaluated_fail_the_promotion_past_the_deadline(cluster, api, team, operator):
    to_experimental(cluster, api, team, "2.3.1")
    reg.promote(cluster, team, "certify", "2.3.1", "certified", reason="ready",
                fastTrack={"justification": "test", "incident": "INC-7"})
    reg.wait_phase(api, team, "certify", "AwaitingApproval")

    operator.stop()
    with _operator_role_without_access_reviews(cluster):
        operator.start()
        try:
            assert reg.approve(cluster, team, "certify", "bob").returncode == 0
            failed = reg.wait_phase(api, team, "certify", "Failed", timeout=40)
        finally:
            operator.stop()  # the operator fixture starts it again, with its whole role, for the next test
    passed, message = reg.checks(failed)["evaluation"]
    assert not passed and message.startswith("the checks could not be evaluated: the API server answered 403")
    assert "subjectaccessreviews" in message and "gave up after" in message
    conditions = {c["type"]: c for c in failed["conditions"]}
    assert conditions["Succeeded"]["reason"] == "EvaluationError"
    reg.wait_event(api, team, "certify", "Warning", "Failed")
    assert reg.status(api, team, "agentversions", naming.object_name(reg.AGENT, "2.3.1"))["state"] == "experimental"
