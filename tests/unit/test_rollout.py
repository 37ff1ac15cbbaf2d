"""The rollout state machine (pure): every strategy's steps, breaches at each stage, no flapping."""

from datetime import datetime, timedelta, timezone

import pytest

from gl_api.slo import Outcome, Verdict
from gl_operator import rollout
from gl_operator.rollout import Observed

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
PASS = Verdict(Outcome.passed, message="objectives met (100 requests, p95 120 ms)")
FAIL = Verdict(Outcome.failed, ["p95 742 ms > 500 ms"], "p95 742 ms > 500 ms (100 requests, p95 742 ms)")
UNSURE = Verdict(Outcome.inconclusive, message="3 requests in the window; at least 20 are needed to judge")


class Sim:
    """A cluster whose Deployments become ready at once, and a clock."""

    def __init__(self, strategy=None, replicas=4, analysis=None, **spec):
        strategy = dict(strategy or {"type": "RollingUpdate"})
        if analysis:
            strategy["analysis"] = analysis
        self.glad = {"metadata": {"name": "cbam", "namespace": "prod", "uid": "u", "generation": 1},
                     "spec": {"agent": "team/cbam", "channel": "certified", "replicas": replicas,
                              "strategy": strategy, **spec}, "status": {}}
        self.observed: dict[str, Observed] = {}
        self.now = T0
        self.rolled_back: list[str] = []
        self.events: list[tuple[str, str, str]] = []
        self.plan = None
        self.ready = True

    def round(self, target, verdict=None, enabled=True, advance=1.0, held_back=False):
        self.now += timedelta(seconds=advance)
        version = rollout.analysed_version(self.glad["status"])
        verdicts = {version: verdict} if verdict is not None and version else {}
        plan = rollout.plan(self.glad, target, self.rolled_back, self.observed, verdicts, analysis_enabled=enabled,
                            now=self.now, held_back=held_back)
        self.plan = plan
        self.glad["status"] = {k: v for k, v in plan.status.items() if v is not None}
        self.rolled_back = list(plan.status.get("rolledBackVersions") or [])
        self.events += plan.events
        # the cluster: wanted Deployments exist and (if self.ready) are ready; others are deleted
        self.observed = {w.name: Observed(w.name, w.version, w.replicas,
                                          ready=(w.replicas if w.replicas is not None else 4) if self.ready else 0,
                                          updated=w.replicas or 0, total=w.replicas or 0, history=w.history)
                         for w in plan.deployments}
        return plan

    @property
    def status(self):
        return self.glad["status"]

    def reasons(self):
        return [reason for _, reason, _ in self.events]

    def replicas(self):
        return {w.version: w.replicas for w in self.plan.deployments}


def deployed(sim, version="2.3.1"):
    sim.round(version)
    sim.round(version)
    assert sim.status["phase"] == "Available" and sim.status["stableVersion"] == version
    sim.events.clear()
    return sim


def test_first_version_is_deployed_at_once():
    sim = Sim()
    plan = sim.round("2.3.1")
    assert [(w.name, w.version, w.replicas) for w in plan.deployments] == [("cbam", "2.3.1", 4)]
    assert sim.status["phase"] == "Progressing" and sim.status["stableVersion"] == "2.3.1"
    sim.round("2.3.1")
    assert sim.status["phase"] == "Available"
    available = {c["type"]: c for c in sim.status["conditions"]}["Available"]
    assert (available["status"], available["reason"]) == ("True", "MinimumReplicasAvailable")
    assert available["observedGeneration"] == 1
    assert sim.reasons() == ["RolloutStarted"]


def test_rolling_update_rolls_then_analyses_then_promotes():
    sim = deployed(Sim(analysis={"windowSeconds": 30}))
    plan = sim.round("2.4.0")
    assert sim.status["canaryVersion"] == "2.4.0" and sim.status["currentStep"] == 0
    assert [(w.name, w.version) for w in plan.deployments] == [("cbam", "2.4.0")]
    sim.round("2.4.0", PASS)                     # rollout complete: analysis starts now
    assert sim.status["currentStep"] == 1 and sim.status["phase"] == "Progressing"
    sim.round("2.4.0", PASS, advance=10)         # window not over
    assert sim.status["canaryVersion"] == "2.4.0"
    sim.round("2.4.0", PASS, advance=30)
    assert sim.status["stableVersion"] == "2.4.0" and "canaryVersion" not in sim.status
    assert sim.plan.deployments[0].history == ("2.3.1",)
    assert sim.reasons() == ["RolloutStarted", "Promoted"]
    sim.round("2.4.0")
    assert sim.status["phase"] == "Available"


def test_rolling_update_breach_rolls_back_and_never_retries():
    sim = deployed(Sim(analysis={"windowSeconds": 30}))
    sim.round("2.4.0")
    sim.round("2.4.0", FAIL)
    assert [(w.name, w.version) for w in sim.plan.deployments] == [("cbam", "2.3.1")]
    assert sim.status["phase"] == "RollingBack" and sim.status["rolledBackVersions"] == ["2.4.0"]
    assert sim.status["lastBreach"]["version"] == "2.4.0"
    assert sim.reasons() == ["RolloutStarted", "SLOBreach", "RolledBack"]
    assert sim.events[-1] == ("Warning", "RolledBack", "rolled back from cbam@2.4.0 to cbam@2.3.1: " + FAIL.message)
    sim.round("2.4.0")     # an exact version naming it: no second rollout, Degraded
    assert sim.status["phase"] == "Degraded" and sim.status["stableVersion"] == "2.3.1"
    assert sim.reasons().count("RolloutStarted") == 1
    available = {c["type"]: c for c in sim.status["conditions"]}["Available"]
    assert available["reason"] == "RolledBack" and "p95 742 ms > 500 ms" in available["message"]


def test_a_later_good_rollout_ends_the_degradation_though_the_breaching_version_stays_held_back():
    sim = deployed(Sim(analysis={"windowSeconds": 30}))
    sim.round("2.4.0")
    sim.round("2.4.0", FAIL)
    sim.round("2.3.1", held_back=True)   # the range now selects 2.3.1; 2.4.0 is held back
    assert sim.status["phase"] == "Degraded" and sim.status["lastBreach"]["rolledBackTo"] == "2.3.1"
    sim.round("2.3.2", held_back=True)   # 2.3.2 appears: below 2.4.0, rolled out normally
    sim.round("2.3.2", PASS, held_back=True)               # rolled: analysis starts
    sim.round("2.3.2", PASS, held_back=True, advance=31)   # measured over its whole window: promoted
    sim.round("2.3.2", held_back=True)
    assert (sim.status["phase"], sim.status["stableVersion"]) == ("Available", "2.3.2")
    available = {c["type"]: c for c in sim.status["conditions"]}["Available"]
    assert available["reason"] == "MinimumReplicasAvailable"
    assert sim.status["rolledBackVersions"] == ["2.4.0"] and sim.status["lastBreach"]["version"] == "2.4.0"


def test_failure_limit_counts_failed_measurements():
    sim = deployed(Sim(analysis={"windowSeconds": 30, "failureLimit": 3}))
    sim.round("2.4.0")
    sim.round("2.4.0", FAIL)
    sim.round("2.4.0", FAIL)
    assert sim.status["failedAnalyses"] == 2 and sim.status["canaryVersion"] == "2.4.0"
    sim.round("2.4.0", FAIL)
    assert sim.status["rolledBackVersions"] == ["2.4.0"]


def test_inconclusive_waits_and_never_rolls_back():
    sim = deployed(Sim(analysis={"windowSeconds": 30}))
    sim.round("2.4.0")
    for _ in range(5):
        sim.round("2.4.0", UNSURE, advance=60)
    assert sim.status["canaryVersion"] == "2.4.0" and sim.status["phase"] == "Progressing"
    progressing = {c["type"]: c for c in sim.status["conditions"]}["Progressing"]
    assert "at least 20 are needed" in progressing["message"]
    assert "RolledBack" not in sim.reasons()


def test_without_prometheus_steps_advance_on_time():
    sim = deployed(Sim(analysis={"windowSeconds": 30}))
    sim.round("2.4.0", enabled=False)
    sim.round("2.4.0", enabled=False)
    sim.round("2.4.0", enabled=False, advance=31)
    assert sim.status["stableVersion"] == "2.4.0"


CANARY = {"type": "Canary", "steps": [{"weight": 10, "pauseSeconds": 60}, {"weight": 50, "pauseSeconds": 60},
                                      {"weight": 100, "pauseSeconds": 30}]}


def test_canary_steps_split_replicas_and_promote():
    sim = deployed(Sim(CANARY, replicas=4))
    sim.round("2.4.0")
    assert sim.replicas() == {"2.3.1": 3, "2.4.0": 1}          # ceil(4 x 10%) = 1
    assert {w.name for w in sim.plan.deployments} == {"cbam-2-3-1", "cbam-2-4-0"}
    assert sim.plan.service_version is None
    sim.round("2.4.0", PASS, advance=30)
    assert sim.status["currentStep"] == 0                       # pausing
    sim.round("2.4.0", PASS, advance=31)
    assert sim.status["currentStep"] == 1 and sim.replicas() == {"2.3.1": 2, "2.4.0": 2}
    sim.round("2.4.0", PASS, advance=61)
    assert sim.status["currentStep"] == 2 and sim.replicas() == {"2.3.1": 0, "2.4.0": 4}
    sim.round("2.4.0", PASS, advance=31)
    assert sim.status["stableVersion"] == "2.4.0" and "canaryVersion" not in sim.status
    assert sim.replicas() == {"2.4.0": 4}                       # the old Deployment goes
    assert sim.reasons() == ["RolloutStarted", "StepAdvanced", "StepAdvanced", "Promoted"]


@pytest.mark.parametrize("step", [0, 1, 2])
def test_canary_breach_at_each_step_rolls_back_to_stable(step):
    sim = deployed(Sim(CANARY, replicas=4))
    sim.round("2.4.0")
    for _ in range(step):
        sim.round("2.4.0", PASS, advance=61)
    assert sim.status["currentStep"] == step
    sim.round("2.4.0", FAIL)
    assert sim.replicas() == {"2.3.1": 4}
    assert sim.status["rolledBackVersions"] == ["2.4.0"] and sim.status["stableVersion"] == "2.3.1"
    sim.round("2.3.1")      # the channel now skips 2.4.0
    assert sim.status["phase"] in ("Available", "Degraded")
    assert "RolloutStarted" not in sim.reasons()[1:]


def test_canary_split_keeps_one_stable_below_100():
    assert rollout.canary_split(4, 10) == (1, 3)
    assert rollout.canary_split(2, 90) == (2, 1)
    assert rollout.canary_split(3, 100) == (3, 0)
    assert rollout.canary_split(10, 25) == (3, 7)


def test_blue_green_switches_only_after_analysis_and_keeps_the_previous():
    sim = deployed(Sim({"type": "BlueGreen", "rollbackWindowSeconds": 120}, replicas=2,
                       analysis={"windowSeconds": 30}))
    assert sim.plan.service_version == "2.3.1"
    sim.round("2.4.0")
    assert sim.replicas() == {"2.3.1": 2, "2.4.0": 2}
    assert sim.plan.service_version == "2.3.1" and sim.plan.preview_version == "2.4.0"
    sim.round("2.4.0", PASS)                   # green Available: analysis starts
    sim.round("2.4.0", PASS, advance=31)
    assert sim.plan.service_version == "2.4.0" and sim.status["stableVersion"] == "2.4.0"
    assert sim.replicas() == {"2.4.0": 2, "2.3.1": 2}          # kept for the rollback window
    sim.round("2.4.0", advance=60)
    assert "2.3.1" in sim.replicas()
    sim.round("2.4.0", advance=61)
    assert sim.replicas() == {"2.4.0": 2}


def test_blue_green_breach_after_switch_switches_back_at_once():
    sim = deployed(Sim({"type": "BlueGreen", "rollbackWindowSeconds": 600}, replicas=2,
                       analysis={"windowSeconds": 30}))
    sim.round("2.4.0")
    sim.round("2.4.0", PASS)
    sim.round("2.4.0", PASS, advance=31)
    sim.round("2.4.0", FAIL)                   # breach of the version fully rolled out
    assert sim.plan.service_version == "2.3.1" and sim.status["stableVersion"] == "2.3.1"
    assert sim.status["rolledBackVersions"] == ["2.4.0"]
    assert sim.events[-1][1] == "RolledBack"


def test_blue_green_breach_before_switch_never_moves_traffic():
    sim = deployed(Sim({"type": "BlueGreen"}, replicas=2, analysis={"windowSeconds": 30}))
    sim.round("2.4.0")
    sim.round("2.4.0", FAIL)
    assert sim.plan.service_version == "2.3.1" and sim.replicas() == {"2.3.1": 2}


def test_breach_after_full_rollout_goes_back_to_the_last_good_version():
    sim = deployed(Sim(analysis={"windowSeconds": 10}))
    for version in ("2.4.0", "2.5.0"):
        sim.round(version)
        sim.round(version, PASS)
        sim.round(version, PASS, advance=11)
        assert sim.status["stableVersion"] == version
    assert sim.plan.deployments[0].history == ("2.4.0", "2.3.1")
    sim.round("2.5.0", FAIL)
    assert sim.status["stableVersion"] == "2.4.0" and sim.status["phase"] == "RollingBack"
    assert sim.plan.deployments[0].history == ("2.3.1",)
    sim.round("2.5.0")
    assert sim.status["phase"] == "Degraded"
    sim.round("2.4.0", FAIL)                   # and again: 2.3.1
    assert sim.status["stableVersion"] == "2.3.1"
    assert sim.status["rolledBackVersions"] == ["2.5.0", "2.4.0"]


def test_breach_without_an_earlier_version_only_warns():
    sim = deployed(Sim())
    sim.round("2.3.1", FAIL)
    assert sim.status["stableVersion"] == "2.3.1" and "rolledBackVersions" not in sim.status
    assert sim.reasons() == ["SLOBreach"]


def test_passing_measurement_resets_steady_state_failures():
    sim = deployed(Sim(analysis={"failureLimit": 2}))
    sim.round("2.3.1", FAIL)
    sim.round("2.3.1", PASS)
    assert sim.status["failedAnalyses"] == 0


def test_target_change_mid_rollout_restarts_with_the_new_version():
    sim = deployed(Sim(CANARY))
    sim.round("2.4.0")
    sim.round("2.5.0")
    assert sim.status["canaryVersion"] == "2.5.0" and sim.status["currentStep"] == 0
    assert sim.reasons() == ["RolloutStarted", "RolloutAborted", "RolloutStarted"]
    assert set(sim.replicas()) == {"2.3.1", "2.5.0"}


def test_a_deployment_catching_up_with_the_promotion_is_not_reported_degraded():
    # The promotion rewrites the Deployment (its stable history): until the Deployment controller has
    # observed that, every pod is ready but the Deployment is not current. Argo CD must not see a blip.
    sim = deployed(Sim(analysis={"windowSeconds": 30}))
    sim.round("2.4.0", PASS)
    sim.round("2.4.0", PASS)
    sim.round("2.4.0", PASS, advance=30)
    assert sim.status["stableVersion"] == "2.4.0"
    phases = []
    for _ in range(3):
        sim.observed = {name: Observed(o.name, o.version, o.replicas, ready=o.ready, updated=o.updated, total=o.total,
                                       current=False, history=o.history) for name, o in sim.observed.items()}
        sim.round("2.4.0")
        phases.append(sim.status["phase"])
    assert "Degraded" not in phases
    sim.round("2.4.0")
    assert sim.status["phase"] == "Available"


def test_replicas_not_ready_is_degraded_and_quota_is_reported():
    sim = deployed(Sim())
    sim.ready = False
    sim.round("2.3.1")
    sim.round("2.3.1")
    assert sim.status["phase"] == "Degraded"
    sim.observed = {"cbam": Observed("cbam", "2.3.1", 4, ready=0, quota_message='pods "x" is forbidden: exceeded '
                                                                              'quota: greenlang-tenant-quota')}
    sim.round("2.3.1")
    available = {c["type"]: c for c in sim.status["conditions"]}["Available"]
    assert (available["status"], available["reason"]) == ("False", "QuotaExceeded")
    assert "exceeded quota" in available["message"]


def test_status_survives_a_restart():
    """Everything the machine needs is in status and the observed Deployments: a fresh plan continues."""
    sim = deployed(Sim(CANARY))
    sim.round("2.4.0")
    sim.round("2.4.0", PASS, advance=61)
    saved = dict(sim.status)
    again = rollout.plan(sim.glad | {"status": saved}, "2.4.0", [], sim.observed, {}, analysis_enabled=True,
                         now=sim.now)
    assert again.status["currentStep"] == 1 and again.status["canaryVersion"] == "2.4.0"
    assert again.events == []
