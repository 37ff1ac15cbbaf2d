"""Decide a Promotion from facts: the named checks, each with a message a person can act on.

The operator decides every Promotion with these; `gl agent promotion-status` runs the same checks
as a dry run, with the thresholds the operator publishes (:data:`POLICY_CONFIGMAP`).

Pure functions: the caller gathers the AgentVersion, the replacement version and the verdicts
on approvals (SubjectAccessReviews); this module says what passes, what is missing and what
the Promotion's phase is. Checks that cannot be evaluated at all (no such version, or the facts
could not be gathered) wait at most ``promotion.checkDeadlineSeconds``, then the Promotion fails.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gl_api import lifecycle
from gl_api.conditions import parse_timestamp, timestamp
from gl_api.lifecycle import State, check_transition
from gl_api.models import PromotionPhase

DAY = 86400
# Where the operator publishes its thresholds (greenlang-system), readable by every authenticated
# user, so a dry run judges with the numbers the operator will use.
POLICY_CONFIGMAP = "greenlang-registry-promotion-policy"
POLICY_KEY = "policy.json"

class PromotionPolicy(BaseModel):
    """The operator's promotion thresholds and timing (its settings file's ``promotion:``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    min_evaluation_score: float = Field(0.9, ge=0, le=1, description="Lowest evaluation score for certified.")
    min_requests: int = Field(1000, ge=0, description="Requests served while experimental before certified.")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="Error rate must stay below this for certified.")
    soak_seconds: float = Field(7 * DAY, ge=0, description="Time in experimental before certified.")
    default_sunset_seconds: float = Field(90 * DAY, gt=0, description="Deprecation to retirement, by default.")
    check_deadline_seconds: float = Field(3600, gt=0, description="How long a Promotion whose checks cannot be "
                                                                  "evaluated (no such version, or its facts cannot "
                                                                  "be read) waits before it fails.")

    @property
    def soak(self) -> timedelta:
        return timedelta(seconds=self.soak_seconds)

    @property
    def default_sunset(self) -> timedelta:
        return timedelta(seconds=self.default_sunset_seconds)

    @property
    def check_deadline(self) -> timedelta:
        return timedelta(seconds=self.check_deadline_seconds)


# Why checks cannot be evaluated (the reason of the Evaluated=False condition, and of Failed).
VERSION_NOT_FOUND = "VersionNotFound"
VERSION_NOT_ACCEPTED = "VersionNotAccepted"
EVALUATION_ERROR = "EvaluationError"


class Outcome(str, enum.Enum):
    rejected = PromotionPhase.rejected.value  # can never succeed as asked; the user must change something
    waiting = PromotionPhase.checking.value  # criteria not met yet; re-checked as results arrive
    awaiting_approval = PromotionPhase.awaiting_approval.value
    failed = PromotionPhase.failed.value  # the checks could not be evaluated before the deadline
    ready = "Ready"                  # apply the transition now


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    message: str

    def to_status(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message}


@dataclass(frozen=True)
class ApprovalVerdict:
    """An approval and whether it counts (four eyes, and the approve verb per SubjectAccessReview)."""

    user: str
    counts: bool
    why: str


@dataclass
class Decision:
    outcome: Outcome
    checks: list[Check] = field(default_factory=list)
    approved_by: list[str] = field(default_factory=list)
    unevaluable: str | None = None  # set when the checks cannot be evaluated: one of the reasons above

    @property
    def summary(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        if not failed:
            return "all checks passed"
        return "; ".join(f"{c.name}: {c.message}" for c in failed)


def _duration(delta: timedelta) -> str:
    seconds = int(max(delta.total_seconds(), 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def entered_state_at(status: dict[str, Any], state: State) -> datetime | None:
    for entry in reversed(status.get("stateHistory") or []):
        if entry.get("to") == state.value:
            return parse_timestamp(entry["at"])
    return None


def _evaluation_passed(status: dict[str, Any]) -> Check:
    evaluation = status.get("evaluation")
    if not evaluation:
        return Check("evaluation-passed", False, "no evaluation result yet; the evaluation framework reports it "
                                                 "in status.evaluation")
    suite = evaluation.get("suite") or "the evaluation suite"
    if evaluation.get("passed"):
        return Check("evaluation-passed", True, f"{suite} passed")
    return Check("evaluation-passed", False, f"{suite} failed; fix the agent and publish a new version, "
                                             "or re-run the evaluation")


def _security_scan(status: dict[str, Any], *, allow_high: bool) -> Check:
    scan = status.get("securityScan")
    if not scan:
        return Check("security-scan", False, "no security scan yet; CI reports it in status.securityScan")
    critical, high = scan.get("critical", 0), scan.get("high", 0)
    scanner = f" ({scan['scanner']})" if scan.get("scanner") else ""
    if critical:
        return Check("security-scan", False, f"{critical} critical findings{scanner}; 0 are allowed")
    if high and not allow_high:
        return Check("security-scan", False, f"{high} high findings{scanner}; certified allows 0 critical and 0 high")
    allowed = "0 critical findings" if allow_high else "0 critical and 0 high findings"
    return Check("security-scan", True, f"{allowed}{scanner}")


def _evaluation_score(status: dict[str, Any], policy: PromotionPolicy) -> Check:
    score = (status.get("evaluation") or {}).get("score")
    if score is None:
        return Check("evaluation-score", False, f"no evaluation score yet; certified needs at least "
                                                f"{policy.min_evaluation_score:.2f}")
    if score >= policy.min_evaluation_score:
        return Check("evaluation-score", True, f"score {score:.2f} >= {policy.min_evaluation_score:.2f}")
    return Check("evaluation-score", False, f"score {score:.2f} is below {policy.min_evaluation_score:.2f}")


def _usage(status: dict[str, Any], policy: PromotionPolicy, fast_track: str | None) -> list[Check]:
    if fast_track:
        skipped = f"skipped: fast track for incident {fast_track}"
        return [Check("usage-requests", True, skipped), Check("error-rate", True, skipped)]
    usage = status.get("usage")
    if not usage:
        missing = "no usage reported yet in status.usage"
        return [Check("usage-requests", False, f"{missing}; certified needs {policy.min_requests} requests"),
                Check("error-rate", False, f"{missing}; certified needs an error rate below "
                                           f"{policy.max_error_rate:.2%}")]
    requests, error_rate = usage.get("requests", 0), usage.get("errorRate", 0.0)
    window = f" in {usage['window']}" if usage.get("window") else ""
    checks = [
        Check("usage-requests", True, f"{requests} requests{window} >= {policy.min_requests}")
        if requests >= policy.min_requests else
        Check("usage-requests", False, f"{requests} requests{window}; certified needs at least {policy.min_requests}"),
    ]
    if error_rate < policy.max_error_rate:
        checks.append(Check("error-rate", True, f"error rate {error_rate:.2%} < {policy.max_error_rate:.2%}"))
    else:
        checks.append(Check("error-rate", False, f"error rate {error_rate:.2%} is not below "
                                                 f"{policy.max_error_rate:.2%}"))
    return checks


def _soak(status: dict[str, Any], policy: PromotionPolicy, fast_track: str | None, now: datetime) -> Check:
    if fast_track:
        return Check("soak-time", True, f"skipped: fast track for incident {fast_track}")
    since = entered_state_at(status, State.experimental)
    if since is None:
        return Check("soak-time", False, "no record of entering experimental in status.stateHistory")
    soaked = now - since
    if soaked >= policy.soak:
        return Check("soak-time", True, f"experimental for {_duration(soaked)} (needs {_duration(policy.soak)})")
    return Check("soak-time", False, f"experimental for {_duration(soaked)}; needs {_duration(policy.soak)} "
                                     f"(certifiable from {timestamp(since + policy.soak)})")


def _approval(verdicts: list[ApprovalVerdict], requester: str) -> tuple[Check, list[str]]:
    counting = [v.user for v in verdicts if v.counts]
    if counting:
        return Check("approval", True, "approved by " + ", ".join(counting)), counting
    ignored = "; ".join(f"approval by {v.user} does not count: {v.why}" for v in verdicts)
    waiting = (f"waiting for an approval by a user other than the requester {requester or '(unknown)'} "
               "who holds the approve verb (gl agent approve)")
    return Check("approval", False, f"{waiting}; {ignored}" if ignored else waiting), []


def decide(*, promotion: dict[str, Any], version: dict[str, Any] | None, replacement: dict[str, Any] | None,
           verdicts: list[ApprovalVerdict], requester: str, policy: PromotionPolicy, now: datetime) -> Decision:
    spec = promotion["spec"]
    if version is None:
        return Decision(Outcome.waiting, [Check("agent-version-exists", False,
                                                f"AgentVersion {spec['agentVersion']} does not exist in this "
                                                "namespace (yet)")], unevaluable=VERSION_NOT_FOUND)
    status = version.get("status") or {}
    if not status.get("state"):
        return Decision(Outcome.waiting, [Check("agent-version-accepted", False,
                                                f"{spec['agentVersion']} has not been accepted by the registry yet")],
                        unevaluable=VERSION_NOT_ACCEPTED)
    current, target = State(status["state"]), State(spec["targetState"])
    problem = check_transition(current, target)
    if problem:
        return Decision(Outcome.rejected, [Check("transition", False, problem)])
    checks = [Check("transition", True, f"{current.value} -> {target.value} is allowed")]
    fast_track = (spec.get("fastTrack") or {}).get("incident")

    if lifecycle.is_backward(current, target):
        reason = (spec.get("reason") or "").strip()
        checks.append(Check("reason", bool(reason), f"reason recorded: {reason}" if reason else
                            "a rollback or withdrawal needs spec.reason, recorded in the state history"))
        if not reason:
            return Decision(Outcome.rejected, checks)
        if not lifecycle.needs_approval(target):
            return Decision(Outcome.ready, checks)
        # Back to certified (a rolled-back deprecation): four eyes, as for a certification.
        approval, approved_by = _approval(verdicts, requester)
        return Decision(Outcome.ready if approval.passed else Outcome.awaiting_approval, [*checks, approval],
                        approved_by)

    if target is State.experimental:
        checks += [_evaluation_passed(status), _security_scan(status, allow_high=True)]
    elif target is State.certified:
        checks += [_evaluation_score(status, policy), _security_scan(status, allow_high=False),
                   *_usage(status, policy, fast_track), _soak(status, policy, fast_track, now)]
    elif target is State.deprecated:
        checks.append(_replacement(spec, version, replacement))
    elif target is State.retired:
        sunset = (status.get("deprecation") or {}).get("sunsetAt")
        reached = sunset is not None and parse_timestamp(sunset) <= now
        checks.append(Check("sunset-reached", reached, f"sunset {sunset} has passed" if reached else
                            f"sunset is {sunset or 'not set'}; the operator retires the version then"))

    criteria_met = all(c.passed for c in checks)
    if not lifecycle.needs_approval(target):
        return Decision(Outcome.ready if criteria_met else Outcome.waiting, checks)

    approval, approved_by = _approval(verdicts, requester)
    checks.append(approval)
    if not criteria_met:
        return Decision(Outcome.waiting, checks, approved_by)
    return Decision(Outcome.ready if approval.passed else Outcome.awaiting_approval, checks, approved_by)


def _replacement(spec: dict[str, Any], version: dict[str, Any], replacement: dict[str, Any] | None) -> Check:
    wanted = (spec.get("deprecation") or {}).get("replacement", "")
    agent = version["spec"]["agent"]
    if wanted == version["spec"]["version"]:
        return Check("replacement-certified", False, "a version cannot replace itself; name a newer certified one")
    if replacement is None:
        return Check("replacement-certified", False, f"replacement {agent}@{wanted} does not exist; publish and "
                                                     "certify it first")
    state = (replacement.get("status") or {}).get("state")
    if state != State.certified.value:
        return Check("replacement-certified", False, f"replacement {agent}@{wanted} is {state or 'not accepted'}; "
                                                     "it must be certified")
    return Check("replacement-certified", True, f"replacement {agent}@{wanted} is certified")


def cannot_evaluate(error: Exception) -> Decision:
    """The facts could not be gathered (a read or a SubjectAccessReview failed): retried until the deadline."""
    return Decision(Outcome.waiting, [Check("evaluation", False, f"the checks could not be evaluated: {error}")],
                    unevaluable=EVALUATION_ERROR)


def enforce_deadline(decision: Decision, since: datetime, now: datetime, deadline: timedelta) -> Decision:
    """Checks that cannot be evaluated since ``since`` fail the Promotion once ``deadline`` has passed.

    Waiting on results that may still come (usage, soak, an approval) is not bounded here: those
    checks are evaluated, they just do not pass yet.
    """
    if decision.unevaluable is None:
        return decision
    *earlier, last = decision.checks
    gives_up = since + deadline
    if now < gives_up:
        note = f"{last.message}; the Promotion fails at {timestamp(gives_up)} if this persists"
        return Decision(decision.outcome, [*earlier, Check(last.name, False, note)], decision.approved_by,
                        decision.unevaluable)
    note = (f"{last.message}; gave up after {_duration(now - since)} (promotion.checkDeadlineSeconds is "
            f"{_duration(deadline)}): create a new Promotion once it can be evaluated")
    return Decision(Outcome.failed, [*earlier, Check(last.name, False, note)], decision.approved_by,
                    decision.unevaluable)
