"""Reconcile one Promotion: gather facts, decide, apply the transition once, record everything.

Safe to run any number of times, from a handler, the resync loop or a restarted operator:
the transition is written with a resourceVersion precondition, and a transition already in
the version's stateHistory for this Promotion is recognised instead of repeated.
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
from gl_operator import approvals, failpoints, metrics, transitions
from gl_operator.config import OperatorConfig
from gl_operator.promotion_checks import Check, Decision, Outcome, decide

log = logging.getLogger(__name__)
TERMINAL = {PromotionPhase.succeeded.value, PromotionPhase.rejected.value, PromotionPhase.failed.value}
SUCCEEDED = PromotionPhase.succeeded.value  # also the condition type and the Event reason
# Event reasons (and the Succeeded condition's reason) for the phases a Promotion waits in or ends with.
REASONS = {PromotionPhase.rejected.value: "Rejected", PromotionPhase.checking.value: "ChecksPending",
           PromotionPhase.awaiting_approval.value: "AwaitingApproval"}
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
    version = objects.get(api, kinds.AGENT_VERSION, namespace, ref.object_name)
    now = conditions.now()
    created = conditions.parse_timestamp(meta["creationTimestamp"])

    if version is not None and transitions.already_applied(version.get("status") or {}, name, created):
        # An earlier run changed the state and stopped before recording it here.
        _finish(api, promotion, version, Decision(Outcome.ready, list(_previous_checks(status))), now)
        return

    requester = (meta.get("annotations") or {}).get(labels.CREATED_BY, "")
    replacement = None
    if spec["targetState"] == State.deprecated.value:
        replacement = objects.get(api, kinds.AGENT_VERSION, namespace,
                               naming.object_name(ref.agent, spec["deprecation"]["replacement"]))
    verdicts = (approvals.verdicts(api, promotion, requester)
                if spec["targetState"] == State.certified.value else [])
    decision = decide(promotion=promotion, version=version, replacement=replacement, verdicts=verdicts,
                      requester=requester, policy=config.promotion, now=now)

    if decision.outcome is Outcome.ready:
        assert version is not None
        _apply(api, config, promotion, version, decision, requester, now)
        failpoints.hit("after-transition")
        _finish(api, promotion, version, decision, now)
    else:
        _record(api, promotion, decision, now)


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
        "conditions": conditions.set_condition(previous.get("conditions"), SUCCEEDED, True, "Applied", message,
                                               generation, now),
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
    objects.patch_status(api, kinds.PROMOTION, promotion, {
        "phase": phase, "observedGeneration": generation, "checks": checks,
        "conditions": conditions.set_condition(previous.get("conditions"), SUCCEEDED, False, reason,
                                               decision.summary, generation, now),
    }, guard=True)
    if phase == PromotionPhase.rejected.value:
        metrics.PROMOTIONS.labels(result=phase, target_state=promotion["spec"]["targetState"]).inc()
    kind = events.WARNING if phase in (PromotionPhase.rejected.value, PromotionPhase.checking.value) else events.NORMAL
    events.record(api, promotion, kind, reason, decision.summary)
