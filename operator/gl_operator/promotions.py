"""Reconcile one Promotion: gather facts, decide, apply the transition once, record everything.

Safe to run any number of times, from a handler, the resync loop or a restarted operator:
the transition is written with a resourceVersion precondition, and a transition already in
the version's stateHistory for this Promotion is recognised instead of repeated.

When the facts cannot be had (no such version, or a read or SubjectAccessReview fails) the
Promotion says so in its ``Evaluated`` condition and is retried on every resync; past
``promotion.checkDeadlineSeconds`` it ends ``Failed`` instead of waiting forever.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import datetime
from typing import Any

from kubernetes import client

from gl_api import conditions, kinds, labels, naming
from gl_api.lifecycle import State
from gl_api.models import PromotionPhase
from gl_kube import events, objects
from gl_api import promotion_checks
from gl_operator import approvals, failpoints, metrics, transitions
from gl_operator.config import OperatorConfig
from gl_api.promotion_checks import Check, Decision, Outcome, decide

log = logging.getLogger(__name__)
TERMINAL = {PromotionPhase.succeeded.value, PromotionPhase.rejected.value, PromotionPhase.failed.value}
SUCCEEDED = PromotionPhase.succeeded.value  # also the condition type and the Event reason
# Whether the checks could be evaluated at all; while False, its lastTransitionTime starts the deadline.
EVALUATED = "Evaluated"
# Event reasons (and the Succeeded condition's reason) for the phases a Promotion waits in or ends with.
REASONS = {PromotionPhase.rejected.value: "Rejected", PromotionPhase.checking.value: "ChecksPending",
           PromotionPhase.awaiting_approval.value: "AwaitingApproval", PromotionPhase.failed.value: "Failed"}
WARNINGS = {PromotionPhase.rejected.value, PromotionPhase.checking.value, PromotionPhase.failed.value}
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)


def reconcile_promotion(api: client.ApiClient, config: OperatorConfig, namespace: str, name: str) -> None:
    with _locks[(namespace, name)]:
        objects.retry_on_conflict(lambda: _reconcile(api, config, namespace, name))


def _reconcile(api: client.ApiClient, config: OperatorConfig, namespace: str, name: str) -> None:
    promotion = objects.get(api, kinds.PROMOTION, namespace, name)
    if promotion is None or promotion["metadata"].get("deletionTimestamp"):
        return
    status = promotion.get("status") or {}
    if status.get("phase") in TERMINAL:
        return
    spec, meta = promotion["spec"], promotion["metadata"]
    ref = naming.AgentVersionRef.parse(spec["agentVersion"])
    now = conditions.now()
    created = conditions.parse_timestamp(meta["creationTimestamp"])
    requester = (meta.get("annotations") or {}).get(labels.CREATED_BY, "")
    version: dict[str, Any] | None = None
    try:
        version = objects.get(api, kinds.AGENT_VERSION, namespace, ref.object_name)
        applied = version is not None and transitions.already_applied(version.get("status") or {}, name, created)
        decision = None if applied else _decide(api, config, promotion, version, ref.agent, requester, now)
    except client.ApiException as error:
        log.warning("Promotion %s/%s: checks could not be evaluated: %s", namespace, name, error)
        decision = promotion_checks.cannot_evaluate(_api_error(error))
    except Exception as error:  # the facts made no sense: retried until the deadline like a failed read
        log.warning("Promotion %s/%s: checks could not be evaluated: %s", namespace, name, error)
        decision = promotion_checks.cannot_evaluate(error)
    if decision is None:
        # An earlier run changed the state and stopped before recording it here.
        assert version is not None
        _finish(api, promotion, version, Decision(Outcome.ready, list(_previous_checks(status))), now)
        return
    decision = promotion_checks.enforce_deadline(decision, _unevaluable_since(status, now), now,
                                                 config.promotion.check_deadline)

    if decision.outcome is Outcome.ready:
        assert version is not None
        _apply(api, config, promotion, version, decision, requester, now)
        failpoints.hit("after-transition")
        _finish(api, promotion, version, decision, now)
    else:
        _record(api, promotion, decision, now)


def _decide(api: client.ApiClient, config: OperatorConfig, promotion: dict[str, Any], version: dict[str, Any] | None,
            agent: str, requester: str, now: datetime) -> Decision:
    spec, meta = promotion["spec"], promotion["metadata"]
    replacement = None
    if spec["targetState"] == State.deprecated.value:
        replacement = objects.get(api, kinds.AGENT_VERSION, meta["namespace"],
                                  naming.object_name(agent, spec["deprecation"]["replacement"]))
    verdicts = (approvals.verdicts(api, promotion, requester)
                if spec["targetState"] == State.certified.value else [])
    return decide(promotion=promotion, version=version, replacement=replacement, verdicts=verdicts,
                  requester=requester, policy=config.promotion, now=now)


def _api_error(error: client.ApiException) -> Exception:
    """The API server's own message (e.g. which permission is missing), not the whole HTTP exchange."""
    return RuntimeError(f"the API server answered {error.status}: {objects.explain(error)}")


def _unevaluable_since(status: dict[str, Any], now: datetime) -> datetime:
    evaluated = conditions.get_condition(status.get("conditions"), EVALUATED)
    if evaluated is not None and evaluated.get("status") == "False":
        return conditions.parse_timestamp(evaluated["lastTransitionTime"])
    return now


def _evaluated(previous: list[dict[str, Any]] | None, decision: Decision, generation: int,
               now: datetime) -> list[dict[str, Any]]:
    if decision.unevaluable is None:
        return conditions.set_condition(previous, EVALUATED, True, "Evaluated", "every check could be evaluated",
                                        generation, now)
    return conditions.set_condition(previous, EVALUATED, False, decision.unevaluable, decision.summary, generation,
                                    now)


def _previous_checks(status: dict[str, Any]) -> list[Check]:
    return [Check(c["name"], c["passed"], c.get("message", "")) for c in status.get("checks") or []]


def _apply(api: client.ApiClient, config: OperatorConfig, promotion: dict[str, Any], version: dict[str, Any],
           decision: Decision, requester: str, now: datetime) -> None:
    spec = promotion["spec"]
    target = State(spec["targetState"])
    reason = (spec.get("reason") or "").strip() or f"promoted to {target.value}"
    if decision.approved_by:
        reason = f"{reason} (approved by {', '.join(decision.approved_by)})"
    change = transitions.Transition(
        to=target, by=requester or "unknown", reason=reason, promotion=promotion["metadata"]["name"],
        fast_track=(spec.get("fastTrack") or {}).get("incident"),
        replacement=(spec.get("deprecation") or {}).get("replacement"),
        sunset_at=transitions.sunset_at((spec.get("deprecation") or {}).get("sunsetAt"),
                                        config.promotion.default_sunset, now) if target is State.deprecated else None,
    )
    status = version.get("status") or {}
    updated = objects.patch_status(api, kinds.AGENT_VERSION, version,
                                transitions.transition_status(status, change, version["metadata"].get("generation", 1),
                                                              now), guard=True)
    objects.patch_labels(api, kinds.AGENT_VERSION, updated, {labels.STATE: target.value})
    metrics.TRANSITIONS.labels(to=target.value).inc()
    ref = f"{version['spec']['agent']}@{version['spec']['version']}"
    fast = f" on the fast track (incident {change.fast_track})" if change.fast_track else ""
    events.record(api, updated, events.NORMAL, "StateChanged",
                  f"{ref}: {status.get('state')} -> {target.value}{fast} by Promotion "
                  f"{promotion['metadata']['name']}: {change.reason}")


def _finish(api: client.ApiClient, promotion: dict[str, Any], version: dict[str, Any], decision: Decision,
            now: datetime) -> None:
    generation = promotion["metadata"].get("generation", 1)
    previous = promotion.get("status") or {}
    message = f"{promotion['spec']['agentVersion']} is now {promotion['spec']['targetState']}"
    objects.patch_status(api, kinds.PROMOTION, promotion, {
        "phase": SUCCEEDED, "observedGeneration": generation, "checks": [c.to_status() for c in decision.checks],
        "conditions": conditions.set_condition(_evaluated(previous.get("conditions"), decision, generation, now),
                                               SUCCEEDED, True, "Applied", message, generation, now),
    }, guard=True)
    metrics.PROMOTIONS.labels(result=SUCCEEDED, target_state=promotion["spec"]["targetState"]).inc()
    events.record(api, promotion, events.NORMAL, SUCCEEDED, message)


def _record(api: client.ApiClient, promotion: dict[str, Any], decision: Decision, now: datetime) -> None:
    """Write the phase and checks; post an Event only when they changed."""
    generation = promotion["metadata"].get("generation", 1)
    previous = promotion.get("status") or {}
    phase = decision.outcome.value
    checks = [c.to_status() for c in decision.checks]
    if previous.get("phase") == phase and previous.get("checks") == checks \
            and previous.get("observedGeneration") == generation:
        return
    reason = REASONS[phase]
    # A failure names why the checks could not be evaluated (VersionNotFound, EvaluationError, ...).
    condition_reason = (decision.unevaluable or reason) if phase == PromotionPhase.failed.value else reason
    objects.patch_status(api, kinds.PROMOTION, promotion, {
        "phase": phase, "observedGeneration": generation, "checks": checks,
        "conditions": conditions.set_condition(_evaluated(previous.get("conditions"), decision, generation, now),
                                               SUCCEEDED, False, condition_reason, decision.summary, generation, now),
    }, guard=True)
    if phase in (PromotionPhase.rejected.value, PromotionPhase.failed.value):
        metrics.PROMOTIONS.labels(result=phase, target_state=promotion["spec"]["targetState"]).inc()
    events.record(api, promotion, events.WARNING if phase in WARNINGS else events.NORMAL, reason, decision.summary)
