"""The rollout state machine of an AgentDeployment (pure: the reconciler supplies what it observed).

``plan`` takes the spec, the current status, the version to run (resolved), the owned Deployments
as the cluster reports them and the latest SLO verdicts, and returns the Deployments wanted per
version (name, version, replicas), the Service's selector and the next status, with the Events
to post. Everything it remembers lives in ``status`` (and the earlier stable versions, which
SLO breaches roll back to, in an annotation on the serving Deployment), so a restarted operator
continues where the last one stopped.

- **First version**: deployed at once, whatever the strategy; it becomes ``stableVersion``.
- **RollingUpdate**: one Deployment; its own rolling update moves to the new version (step 0),
  then the new version is analysed for ``analysis.windowSeconds`` (step 1) and promoted.
- **BlueGreen**: a second Deployment runs the new version at full size behind ``<glad>-preview``
  (step 0), is analysed once Available (step 1), and the Service switches to it only when the
  analysis passes. The previous Deployment stays ``rollbackWindowSeconds`` after the switch.
- **Canary**: stable and canary Deployments behind one Service; at each step the canary runs
  ``ceil(total × weight / 100)`` replicas and the stable the rest (at least 1 until 100 %; with
  Gateway API, ``canary_traffic_weight`` is the HTTPRoute's split too);
  each step waits ``pauseSeconds`` (default the analysis window, counted from the step's start,
  and for the canary's replicas to be ready) and is analysed. After the last step the canary
  becomes stable and the old Deployment is deleted.
- **Analysis**: a failed measurement counts (``failedAnalyses``); ``analysis.failureLimit`` of
  them roll back to the stable version. Inconclusive (too few requests, Prometheus unreachable)
  keeps waiting, never rolls back. Without Prometheus (analysis disabled) steps advance on time.
- **Breach after a full rollout**: ``failureLimit`` consecutive failed measurements of the
  stable version roll back to the last earlier version that met its SLOs (was stable).
- **No flapping**: a rolled-back version joins ``rolledBackVersions`` and is not rolled out
  again (resolution skips it; an exact ``spec.version`` naming it stays on the older version,
  Degraded) until a newer version appears or the retry annotation changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gl_api import conditions
from gl_api.models import DeploymentPhase, StrategyType
from gl_api.slo import Verdict
from gl_operator import workloads

NORMAL, WARNING = "Normal", "Warning"
HISTORY_MAX = 10
ROLLED_BACK_MAX = 50
PROGRESSING, AVAILABLE = "Progressing", "Available"


@dataclass(frozen=True)
class Observed:
    """One owned Deployment as the API server reports it."""

    name: str
    version: str | None
    replicas: int | None = None   # spec.replicas
    ready: int = 0
    updated: int = 0
    total: int = 0                # status.replicas: pods of every revision
    current: bool = True          # status.observedGeneration caught up with metadata.generation
    quota_message: str | None = None
    history: tuple[str, ...] = ()


@dataclass(frozen=True)
class Want:
    name: str
    version: str
    replicas: int | None
    history: tuple[str, ...] = ()


@dataclass
class Plan:
    deployments: list[Want]
    service_version: str | None       # BlueGreen selects one version; None selects every pod
    preview_version: str | None
    autoscaler_target: str | None
    status: dict[str, Any]
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def names(self) -> set[str]:
        return {want.name for want in self.deployments}


def strategy(spec: Mapping[str, Any]) -> dict[str, Any]:
    return dict(spec.get("strategy") or {"type": StrategyType.rolling_update.value})


def analysis(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"windowSeconds": 60, "minRequests": 20, "failureLimit": 1, **(strategy(spec).get("analysis") or {})}


def per_version(spec: Mapping[str, Any]) -> bool:
    return strategy(spec).get("type", StrategyType.rolling_update.value) != StrategyType.rolling_update.value


def name_for(glad_name: str, spec: Mapping[str, Any], version: str) -> str:
    return workloads.deployment_name(glad_name, version if per_version(spec) else None)


def analysed_version(status: Mapping[str, Any]) -> str | None:
    """The version measured this round: the one being rolled out, else the stable one."""
    return status.get("canaryVersion") or status.get("stableVersion")


def total_replicas(spec: Mapping[str, Any], stable: Observed | None) -> int:
    if spec.get("replicas") is not None:
        return int(spec["replicas"])
    scaling = spec.get("autoscaling")
    if scaling:
        return max(1, int(scaling.get("minReplicas", 1)), (stable.replicas or 0) if stable else 0)
    return 1


def canary_split(total: int, weight: int) -> tuple[int, int]:
    """(canary, stable) replicas at ``weight`` percent: the canary rounded up, at least 1 stable below 100 %."""
    canary = math.ceil(total * weight / 100)
    if weight >= 100:
        return total, 0
    stable = total - canary
    if total > 0:
        stable = max(stable, 1)
    return canary, stable


def canary_traffic_weight(spec: Mapping[str, Any], status: Mapping[str, Any]) -> int:
    """The canary's percentage of routed traffic (HTTPRoute weights) after a round with ``status``:
    the current step's weight (100 at the last step until promotion) once at least one canary
    replica is ready, else 0 (no canary; or its pods still starting, so none of the traffic meets
    a backend without endpoints)."""
    if status.get("canaryVersion") is None or int((status.get("replicas") or {}).get("canary") or 0) < 1:
        return 0
    steps = strategy(spec).get("steps") or [{"weight": 100}]
    return int(steps[min(int(status.get("currentStep") or 0), len(steps) - 1)]["weight"])


def _seconds_since(text: str | None, now: datetime) -> float:
    if not text:
        return math.inf
    return (now - conditions.parse_timestamp(text)).total_seconds()


def _dedupe(versions: list[str], without: set[str]) -> tuple[str, ...]:
    result: list[str] = []
    for version in versions:
        if version and version not in without and version not in result:
            result.append(version)
    return tuple(result[:HISTORY_MAX])


class _Machine:
    def __init__(self, glad: Mapping[str, Any], target: str | None, rolled_back: list[str],
                 observed: Mapping[str, Observed], verdicts: Mapping[str, Verdict | None], analysis_enabled: bool,
                 now: datetime, held_back: bool):
        self.glad, self.spec = glad, glad["spec"]
        self.name = glad["metadata"]["name"]
        self.generation = glad["metadata"].get("generation")
        self.previous: dict[str, Any] = dict(glad.get("status") or {})
        self.target, self.observed, self.verdicts = target, observed, verdicts
        self.enabled, self.now, self.held_back = analysis_enabled, now, held_back
        self.rolled_back = list(rolled_back)
        self.stable: str | None = self.previous.get("stableVersion")
        self.canary: str | None = self.previous.get("canaryVersion")
        self.step: int | None = self.previous.get("currentStep")
        self.started: str | None = self.previous.get("stepStartedAt")
        self.failed: int = int(self.previous.get("failedAnalyses") or 0)
        self.last_breach = self.previous.get("lastBreach")
        self.rolling_back = self.previous.get("phase") == DeploymentPhase.rolling_back.value
        self.events: list[tuple[str, str, str]] = []
        self.kind = strategy(self.spec).get("type", StrategyType.rolling_update.value)
        self.settings = analysis(self.spec)
        self.message = ""
        self.ref = self.spec["agent"].split("/", 1)[1]
        # The serving Deployment keeps the history; RollingUpdate's one Deployment may already run the new version.
        stable_obs = self.observed.get(self.name_of(self.stable)) if self.stable else None
        self.history: tuple[str, ...] = stable_obs.history if stable_obs else ()
        self.total = total_replicas(self.spec, stable_obs)
        self.autoscaled = bool(self.spec.get("autoscaling"))
        self.keep_previous: str | None = None
        self.switched_to: str | None = None

    # --- helpers --------------------------------------------------------------------------------
    def name_of(self, version: str) -> str:
        return name_for(self.name, self.spec, version)

    def obs(self, version: str | None) -> Observed | None:
        if version is None:
            return None
        found = self.observed.get(self.name_of(version))
        return found if found is not None and found.version == version else None

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def at(self, version: str) -> str:
        return f"{self.ref}@{version}"

    def restart_clock(self) -> None:
        self.started = conditions.timestamp(self.now)

    def verdict(self, version: str | None) -> Verdict | None:
        return self.verdicts.get(version) if version else None

    # --- transitions ----------------------------------------------------------------------------
    def start(self, version: str) -> None:
        self.canary, self.step, self.failed = version, 0, 0
        self.restart_clock()
        how = {"RollingUpdate": "rolling update", "BlueGreen": "blue-green", "Canary": "canary"}[self.kind]
        self.event(NORMAL, "RolloutStarted", f"{how} from {self.at(self.stable or '-')} to {self.at(version)}")

    def promote(self) -> None:
        assert self.canary is not None
        old = self.stable
        self.history = _dedupe([old or "", *self.history], {self.canary})
        if self.kind == StrategyType.blue_green.value and old:
            self.keep_previous = old
        self.stable, self.canary, self.step, self.failed = self.canary, None, None, 0
        self.restart_clock()
        self.event(NORMAL, "Promoted", f"{self.at(self.stable)} is stable (was {old or 'none'})")

    def rollback(self, bad: str, to: str, verdict: Verdict) -> None:
        if bad not in self.rolled_back:
            self.rolled_back = [*self.rolled_back, bad][-ROLLED_BACK_MAX:]
        self.last_breach = {"version": bad, "at": conditions.timestamp(self.now), "message": verdict.message[:4096],
                            "rolledBackTo": to}
        self.event(WARNING, "RolledBack", f"rolled back from {self.at(bad)} to {self.at(to)}: {verdict.message}")
        self.rolling_back, self.failed, self.step = True, 0, None
        self.restart_clock()

    def count_failure(self, version: str, verdict: Verdict) -> bool:
        """Record one failed measurement; True when the failure limit is reached."""
        self.failed += 1
        limit = int(self.settings["failureLimit"])
        self.event(WARNING, "SLOBreach", f"{self.at(version)} breached its SLOs ({self.failed}/{limit}): "
                                         f"{verdict.message}")
        return self.failed >= limit

    # --- the rounds -----------------------------------------------------------------------------
    def run(self) -> None:
        if self.stable is None:
            if self.target is None or self.target in self.rolled_back:
                return
            self.stable, self.canary, self.step, self.failed = self.target, None, None, 0
            self.restart_clock()
            self.event(NORMAL, "RolloutStarted", f"deploying {self.at(self.target)}")
            return
        wanted = self.target if self.target not in self.rolled_back else None
        if self.canary is not None and wanted != self.canary:
            aborted = self.canary
            self.canary, self.step, self.failed = None, None, 0
            self.event(NORMAL, "RolloutAborted", f"stopped rolling out {self.at(aborted)}: the spec now selects "
                                                 f"{self.at(self.target) if self.target else 'no version'}")
        if self.canary is None and wanted is not None and wanted != self.stable and not self.rolling_back:
            self.start(wanted)
            return
        if self.canary is not None:
            {"RollingUpdate": self.rolling_round, "BlueGreen": self.blue_green_round,
             "Canary": self.canary_round}[self.kind]()
        else:
            self.steady_round()

    def judge(self, version: str, ready: bool, wait: float) -> str:
        """'advance', 'rollback', or 'wait', after this round's measurement of ``version``."""
        verdict = self.verdict(version)
        if self.enabled and verdict is not None and verdict.failed:
            if self.count_failure(version, verdict):
                assert self.stable is not None
                self.rollback(version, self.stable, verdict)
                self.canary = None
                return "rollback"
            return "wait"
        if not ready or _seconds_since(self.started, self.now) < wait:
            return "wait"
        if not self.enabled or (verdict is not None and verdict.passed):
            return "advance"
        return "wait"

    def rolling_round(self) -> None:
        assert self.canary is not None
        obs = self.obs(self.canary)
        done = obs is not None and obs.current and obs.updated >= self.total and obs.ready >= self.total \
            and obs.total <= self.total
        if self.step in (None, 0):
            if not done:
                self.message = (f"rolling update to {self.canary}: {obs.updated if obs else 0}/{self.total} updated, "
                                f"{obs.ready if obs else 0} ready")
                return
            self.step = 1
            self.restart_clock()
        window = float(self.settings["windowSeconds"])
        outcome = self.judge(self.canary, done, window)
        if outcome == "advance":
            self.promote()
        elif outcome == "wait":
            self.message = f"analysing {self.canary} after the rolling update ({self._why_waiting()})"

    def blue_green_round(self) -> None:
        assert self.canary is not None
        obs = self.obs(self.canary)
        ready = obs is not None and obs.current and obs.ready >= self.total
        if self.step in (None, 0):
            if not ready:
                self.message = f"starting {self.canary} beside {self.stable}: {obs.ready if obs else 0}/" \
                               f"{self.total} ready"
                return
            self.step = 1
            self.restart_clock()
        outcome = self.judge(self.canary, ready, float(self.settings["windowSeconds"]))
        if outcome == "advance":
            self.switched_to = self.canary
            self.promote()
        elif outcome == "wait":
            self.message = f"analysing {self.canary} before switching traffic from {self.stable} " \
                           f"({self._why_waiting()})"

    def canary_round(self) -> None:
        assert self.canary is not None
        steps = strategy(self.spec).get("steps") or [{"weight": 100}]
        index = min(self.step or 0, len(steps) - 1)
        self.step = index
        weight = int(steps[index]["weight"])
        canary_n, _ = canary_split(self.total, weight)
        obs = self.obs(self.canary)
        ready = obs is not None and obs.current and obs.ready >= canary_n
        pause = steps[index].get("pauseSeconds")
        wait = float(pause if pause is not None else self.settings["windowSeconds"])
        outcome = self.judge(self.canary, ready, wait)
        if outcome == "advance":
            if index + 1 < len(steps):
                self.step = index + 1
                self.restart_clock()
                self.event(NORMAL, "StepAdvanced", f"{self.at(self.canary)} passed step {index + 1}/{len(steps)} "
                                                   f"({weight}%); now step {index + 2} "
                                                   f"({steps[index + 1]['weight']}%)")
            else:
                self.promote()
        elif outcome == "wait":
            self.message = (f"canary {self.canary} at step {index + 1}/{len(steps)} ({weight}%): "
                            f"{obs.ready if obs else 0}/{canary_n} ready ({self._why_waiting()})")

    def steady_round(self) -> None:
        assert self.stable is not None
        obs = self.obs(self.stable)
        if self.rolling_back and obs is not None and obs.current and obs.ready >= self.total:
            self.rolling_back = False
        verdict = self.verdict(self.stable)
        if not (self.enabled and verdict is not None) or self.rolling_back:
            return
        if verdict.passed:
            self.failed = 0
            return
        if not verdict.failed:
            return
        if not self.count_failure(self.stable, verdict):
            return
        previous = next((v for v in self.history if v not in self.rolled_back and v != self.stable), None)
        if previous is None:
            self.failed = min(self.failed, int(self.settings["failureLimit"]))
            self.message = f"{self.stable} breaches its SLOs and no earlier version met them to roll back to"
            return
        bad = self.stable
        self.rollback(bad, previous, verdict)
        self.stable = previous
        self.history = tuple(v for v in self.history[self.history.index(previous) + 1:])

    def _why_waiting(self) -> str:
        if not self.enabled:
            return "analysis disabled: waiting for the pause to end"
        verdict = self.verdict(self.canary)
        if verdict is None:
            return "not measured yet"
        return verdict.message or verdict.outcome.value

    # --- result ---------------------------------------------------------------------------------
    def wants(self) -> tuple[list[Want], str | None, str | None, str | None]:
        """Deployments, service version, preview version, autoscaler target."""
        if self.stable is None:
            return [], None, None, None
        fixed = None if self.autoscaled else self.total
        stable_name = self.name_of(self.stable)
        if self.canary is None:
            wants = [Want(stable_name, self.stable, fixed, self.history)]
            service_version = self.stable if self.kind == StrategyType.blue_green.value else None
            if self.kind == StrategyType.blue_green.value:
                previous = self.keep_previous or (self.history[0] if self.history else None)
                if previous and previous != self.stable and previous not in self.rolled_back \
                        and _seconds_since(self.started, self.now) < float(
                            strategy(self.spec).get("rollbackWindowSeconds", 600)) \
                        and (self.keep_previous or self.obs(previous) is not None):
                    prev_obs = self.obs(previous)
                    wants.append(Want(self.name_of(previous), previous,
                                      prev_obs.replicas if prev_obs and prev_obs.replicas is not None else self.total))
            return wants, service_version, None, stable_name
        canary_name = self.name_of(self.canary)
        if self.kind == StrategyType.rolling_update.value:
            return [Want(stable_name, self.canary, fixed, self.history)], None, None, stable_name
        if self.kind == StrategyType.blue_green.value:
            return ([Want(stable_name, self.stable, fixed, self.history), Want(canary_name, self.canary, self.total)],
                    self.stable, self.canary, stable_name)
        steps = strategy(self.spec).get("steps") or [{"weight": 100}]
        weight = int(steps[min(self.step or 0, len(steps) - 1)]["weight"])
        canary_n, stable_n = canary_split(self.total, weight)
        return ([Want(stable_name, self.stable, None if self.autoscaled else stable_n, self.history),
                 Want(canary_name, self.canary, canary_n)], None, None, stable_name)

    def status(self, wants: list[Want]) -> dict[str, Any]:
        observed = {w.name: self.observed.get(w.name) for w in wants}

        def ready_of(version: str | None) -> int:
            return sum(o.ready for w in wants if w.version == version and (o := observed[w.name]) is not None
                       and o.version == version)

        stable_ready = ready_of(self.stable)
        canary_ready = ready_of(self.canary) if self.canary else 0
        all_ready = stable_ready >= self.total and all(
            (o := observed[w.name]) is not None and o.current and o.ready >= (w.replicas or 0)
            for w in wants)
        settling = stable_ready >= self.total and all(
            (o := observed[w.name]) is not None and o.ready >= (w.replicas or 0) for w in wants)
        quota = next((o.quota_message for w in wants if (o := observed[w.name]) and o.quota_message), None)
        # Degraded while it runs the version a breach sent it back to; a later successful rollout
        # (even of a version below the held-back one) makes it healthy again.
        on_rollback_target = not self.last_breach or self.last_breach.get("rolledBackTo") in (None, self.stable)
        degraded_by_rollback = on_rollback_target and (
            self.held_back or (self.target is not None and self.target in self.rolled_back))
        before = self.previous.get("phase")
        if self.stable is None:
            phase = DeploymentPhase.pending.value
        elif self.canary is not None:
            phase = DeploymentPhase.progressing.value
        elif self.rolling_back:
            phase = DeploymentPhase.rolling_back.value
        elif degraded_by_rollback:
            phase = DeploymentPhase.degraded.value
        elif not all_ready and settling and before in (DeploymentPhase.available.value,
                                                        DeploymentPhase.progressing.value):
            phase = before  # every pod ready; a Deployment has not observed our last write yet
        elif not all_ready:
            phase = (DeploymentPhase.progressing.value if before in (None, DeploymentPhase.pending.value,
                                                                    DeploymentPhase.progressing.value)
                     and not self.history and not self.last_breach else DeploymentPhase.degraded.value)
        else:
            phase = DeploymentPhase.available.value
        conds = self.previous.get("conditions")
        gen = self.generation
        serving = self.stable or "-"
        if quota:
            conds = conditions.set_condition(conds, AVAILABLE, False, "QuotaExceeded", quota, gen, self.now)
        elif self.stable is None:
            conds = conditions.set_condition(conds, AVAILABLE, False, "NoVersion", "no version deployed yet", gen,
                                             self.now)
        elif stable_ready > 0:
            if degraded_by_rollback and self.last_breach:
                conds = conditions.set_condition(
                    conds, AVAILABLE, True, "RolledBack",
                    f"running {self.at(serving)} ({stable_ready}/{self.total} ready) after "
                    f"{self.last_breach['version']} was rolled back: {self.last_breach['message']}", gen, self.now)
            else:
                conds = conditions.set_condition(conds, AVAILABLE, True, "MinimumReplicasAvailable",
                                                 f"{stable_ready}/{self.total} replicas of {self.at(serving)} ready",
                                                 gen, self.now)
        elif self.total == 0:
            conds = conditions.set_condition(conds, AVAILABLE, False, "ScaledToZero", "spec.replicas is 0", gen,
                                             self.now)
        else:
            conds = conditions.set_condition(conds, AVAILABLE, False, "ReplicasNotReady",
                                             f"0/{self.total} replicas of {self.at(serving)} ready", gen, self.now)
        if self.canary is not None:
            conds = conditions.set_condition(conds, PROGRESSING, True, "RolloutInProgress", self.message or
                                             f"rolling out {self.at(self.canary)}", gen, self.now)
        elif self.rolling_back:
            conds = conditions.set_condition(conds, PROGRESSING, True, "RollingBack",
                                             f"rolling back to {self.at(serving)}: {stable_ready}/{self.total} ready",
                                             gen, self.now)
        elif self.stable is not None and phase == DeploymentPhase.progressing.value:
            conds = conditions.set_condition(conds, PROGRESSING, True, "Deploying",
                                             f"deploying {self.at(serving)}: {stable_ready}/{self.total} ready", gen,
                                             self.now)
        elif self.stable is not None:
            conds = conditions.set_condition(conds, PROGRESSING, False, "RolloutComplete",
                                             self.message or f"running {self.at(serving)}", gen, self.now)
        status: dict[str, Any] = {
            "phase": phase, "stableVersion": self.stable, "canaryVersion": self.canary, "currentStep": self.step,
            "stepStartedAt": self.started, "failedAnalyses": self.failed,
            "replicas": {"desired": self.total, "ready": sum((o.ready for o in observed.values() if o), 0),
                         "stable": stable_ready, "canary": canary_ready},
            "rolledBackVersions": self.rolled_back or None, "lastBreach": self.last_breach, "conditions": conds,
        }
        if self.generation is not None:
            status["observedGeneration"] = self.generation
        return status


def plan(glad: Mapping[str, Any], target: str | None, rolled_back: list[str], observed: Mapping[str, Observed],
         verdicts: Mapping[str, Verdict | None], *, analysis_enabled: bool, now: datetime,
         held_back: bool = False) -> Plan:
    """One round of the state machine (module doc). ``target`` None keeps what runs (resolution failed)."""
    machine = _Machine(glad, target, rolled_back, observed, verdicts, analysis_enabled, now, held_back)
    machine.run()
    wants, service_version, preview_version, scaler_target = machine.wants()
    return Plan(wants, service_version, preview_version, scaler_target, machine.status(wants), machine.events)

