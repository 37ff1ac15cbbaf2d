from datetime import datetime, timedelta, timezone

import pytest

from gl_api.promotion_checks import (EVALUATION_ERROR, VERSION_NOT_FOUND, ApprovalVerdict, Outcome, PromotionPolicy,
                                     cannot_evaluate, decide, enforce_deadline)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
POLICY = PromotionPolicy()


def _ts(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def version(state="draft", **status):
    history = [{"to": "draft", "at": _ts(NOW - timedelta(days=30))}]
    if state in ("experimental", "certified"):
        history.append({"from": "draft", "to": "experimental", "at": _ts(NOW - timedelta(days=8))})
    return {"metadata": {"name": "cbam-2.3.1"}, "spec": {"agent": "cbam", "version": "2.3.1"},
            "status": {"state": state, "stateHistory": history, **status}}


GOOD = dict(evaluation={"passed": True, "score": 0.95, "suite": "cbam-2026.1"},
            securityScan={"critical": 0, "high": 0, "scanner": "trivy"},
            usage={"requests": 1500, "errorRate": 0.002})


def promotion(target, **spec):
    return {"metadata": {"name": "p"}, "spec": {"agentVersion": "cbam@2.3.1", "targetState": target, **spec}}


def run(target, ver, verdicts=(), replacement=None, **spec):
    return decide(promotion=promotion(target, **spec), version=ver, replacement=replacement, verdicts=list(verdicts),
                  requester="alice", policy=POLICY, now=NOW)


def checks(decision):
    return {c.name: (c.passed, c.message) for c in decision.checks}


def test_experimental_passes_with_evaluation_and_clean_scan():
    decision = run("experimental", version(**GOOD))
    assert decision.outcome is Outcome.ready
    assert checks(decision)["evaluation-passed"] == (True, "cbam-2026.1 passed")


@pytest.mark.parametrize("status, name, message", [
    ({"evaluation": None}, "evaluation-passed", "no evaluation result yet"),
    ({"evaluation": {"passed": False, "suite": "s1"}}, "evaluation-passed", "s1 failed"),
    ({"securityScan": {"critical": 2}}, "security-scan", "2 critical findings; 0 are allowed"),
    ({"securityScan": None}, "security-scan", "no security scan yet"),
])
def test_experimental_waits_with_the_failing_check(status, name, message):
    decision = run("experimental", version(**{**GOOD, **status}))
    assert decision.outcome is Outcome.waiting
    passed, text = checks(decision)[name]
    assert not passed and message in text


def test_high_findings_allowed_for_experimental_not_for_certified():
    scan = {"securityScan": {"critical": 0, "high": 3}}
    assert run("experimental", version(**{**GOOD, **scan})).outcome is Outcome.ready
    decision = run("certified", version("experimental", **{**GOOD, **scan}),
                   [ApprovalVerdict("bob", True, "ok")])
    assert checks(decision)["security-scan"] == (False, "3 high findings; certified allows 0 critical and 0 high")


@pytest.mark.parametrize("override, name, fragment", [
    ({"evaluation": {"passed": True, "score": 0.85}}, "evaluation-score", "score 0.85 is below 0.90"),
    ({"usage": {"requests": 412, "errorRate": 0}}, "usage-requests", "412 requests; certified needs at least 1000"),
    ({"usage": {"requests": 5000, "errorRate": 0.025}}, "error-rate", "error rate 2.50% is not below 1.00%"),
])
def test_certification_criteria(override, name, fragment):
    decision = run("certified", version("experimental", **{**GOOD, **override}), [ApprovalVerdict("bob", True, "")])
    assert decision.outcome is Outcome.waiting
    assert not checks(decision)[name][0] and fragment in checks(decision)[name][1]


def test_soak_time_counts_from_entering_experimental():
    fresh = version("experimental", **GOOD)
    fresh["status"]["stateHistory"][-1]["at"] = _ts(NOW - timedelta(days=2))
    decision = run("certified", fresh, [ApprovalVerdict("bob", True, "")])
    passed, message = checks(decision)["soak-time"]
    assert not passed and message.startswith("experimental for 2d0h; needs 7d0h (certifiable from 2026-12-01")


def test_certification_waits_for_approval_and_explains_ignored_ones():
    decision = run("certified", version("experimental", **GOOD),
                   [ApprovalVerdict("alice", False, "the requester cannot approve their own Promotion")])
    assert decision.outcome is Outcome.awaiting_approval
    passed, message = checks(decision)["approval"]
    assert not passed
    assert "other than the requester alice" in message
    assert "approval by alice does not count: the requester cannot approve" in message
    approved = run("certified", version("experimental", **GOOD), [ApprovalVerdict("bob", True, "")])
    assert approved.outcome is Outcome.ready and approved.approved_by == ["bob"]


def test_fast_track_skips_soak_and_usage_but_not_the_scan():
    rushed = version("experimental", evaluation=GOOD["evaluation"], securityScan={"critical": 1})
    rushed["status"]["stateHistory"][-1]["at"] = _ts(NOW - timedelta(hours=1))
    decision = run("certified", rushed, [ApprovalVerdict("bob", True, "")],
                   fastTrack={"justification": "CVE fix", "incident": "INC-1234"})
    result = checks(decision)
    assert result["soak-time"] == (True, "skipped: fast track for incident INC-1234")
    assert result["usage-requests"][0] and result["error-rate"][0]
    assert result["security-scan"][0] is False
    assert decision.outcome is Outcome.waiting


def test_invalid_transition_is_rejected_listing_allowed_targets():
    decision = run("certified", version("draft", **GOOD))
    assert decision.outcome is Outcome.rejected
    assert checks(decision)["transition"] == (False, "cannot move from draft to certified; allowed from draft: experimental")


def test_deprecation_needs_a_certified_replacement():
    deprecation = {"replacement": "2.4.0"}
    missing = run("deprecated", version("certified", **GOOD), deprecation=deprecation)
    assert missing.outcome is Outcome.waiting
    assert "replacement cbam@2.4.0 does not exist" in checks(missing)["replacement-certified"][1]
    experimental = {"status": {"state": "experimental"}}
    assert "is experimental; it must be certified" in checks(
        run("deprecated", version("certified"), replacement=experimental, deprecation=deprecation))["replacement-certified"][1]
    certified = {"status": {"state": "certified"}}
    assert run("deprecated", version("certified"), replacement=certified, deprecation=deprecation).outcome is Outcome.ready


def test_rollback_needs_a_reason():
    assert run("experimental", version("certified")).outcome is Outcome.rejected
    decision = run("experimental", version("certified"), reason="p95 regression in production")
    assert decision.outcome is Outcome.ready
    assert checks(decision)["reason"] == (True, "reason recorded: p95 regression in production")


def test_rolling_back_a_deprecation_needs_a_reason_and_a_second_person():
    deprecated = version("deprecated", deprecation={"replacement": "2.4.0", "sunsetAt": _ts(NOW + timedelta(days=9))})
    assert run("certified", deprecated).outcome is Outcome.rejected
    waiting = run("certified", deprecated, reason="2.4.0 breaks EU filings")
    assert waiting.outcome is Outcome.awaiting_approval
    assert "waiting for an approval by a user other than the requester alice" in checks(waiting)["approval"][1]
    self_approved = run("certified", deprecated, [ApprovalVerdict("alice", False, "the requester cannot approve")],
                        reason="2.4.0 breaks EU filings")
    assert self_approved.outcome is Outcome.awaiting_approval
    approved = run("certified", deprecated, [ApprovalVerdict("bob", True, "holds the approve verb")],
                   reason="2.4.0 breaks EU filings")
    assert (approved.outcome, approved.approved_by) == (Outcome.ready, ["bob"])


def test_a_retired_version_is_never_rolled_back():
    decision = run("certified", version("retired"), [ApprovalVerdict("bob", True, "ok")], reason="too late")
    assert decision.outcome is Outcome.rejected
    assert "retired is final" in checks(decision)["transition"][1]


def test_missing_or_unaccepted_version_cannot_be_evaluated():
    missing = run("experimental", None)
    assert (missing.outcome, missing.unevaluable) == (Outcome.waiting, VERSION_NOT_FOUND)
    unaccepted = version()
    unaccepted["status"] = {}
    assert checks(run("experimental", unaccepted))["agent-version-accepted"][0] is False
    assert run("experimental", version(**GOOD)).unevaluable is None


DEADLINE = timedelta(hours=1)


def test_unevaluable_checks_wait_until_the_deadline_then_fail():
    since = NOW - timedelta(minutes=59)
    waiting = enforce_deadline(run("experimental", None), since, NOW, DEADLINE)
    assert waiting.outcome is Outcome.waiting
    assert checks(waiting)["agent-version-exists"][1].endswith(
        "; the Promotion fails at 2026-11-26T12:01:00Z if this persists")
    failed = enforce_deadline(run("experimental", None), since, NOW + timedelta(minutes=1), DEADLINE)
    assert (failed.outcome, failed.unevaluable) == (Outcome.failed, VERSION_NOT_FOUND)
    assert "gave up after 1h0m (promotion.checkDeadlineSeconds is 1h0m)" in checks(failed)["agent-version-exists"][1]


def test_an_evaluation_error_fails_past_the_deadline_with_the_error():
    error = cannot_evaluate(RuntimeError("subjectaccessreviews is forbidden"))
    assert (error.outcome, error.unevaluable) == (Outcome.waiting, EVALUATION_ERROR)
    failed = enforce_deadline(error, NOW - DEADLINE, NOW, DEADLINE)
    assert failed.outcome is Outcome.failed
    assert checks(failed)["evaluation"][1].startswith(
        "the checks could not be evaluated: subjectaccessreviews is forbidden; gave up after 1h0m")


def test_waiting_on_results_that_may_still_come_is_not_bounded():
    slow = run("certified", version("experimental", **{**GOOD, "usage": None}), reason="r")
    assert slow.outcome is Outcome.waiting
    assert enforce_deadline(slow, NOW - timedelta(days=30), NOW, DEADLINE) is slow
