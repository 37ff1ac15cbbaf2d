"""AgentDeployment: an agent running in a tenant environment, with SLOs."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from gl_api.models.base import SHORT, TEXT, Conditions, Model, Resources, cel


class StrategyType(str, enum.Enum):
    rolling_update = "RollingUpdate"
    blue_green = "BlueGreen"
    canary = "Canary"


class CanaryStep(Model):
    weight: int = Field(description="Percent of traffic on the new version.", ge=0, le=100)
    pause_seconds: int | None = Field(None, ge=0, description="How long to observe before the next step.")


class Analysis(Model):
    """How a new version is judged against the SLOs before it takes (more) traffic."""

    window_seconds: int = Field(60, ge=5, le=86400,
                                description="Measure over the last this many seconds (and at least this long).")
    min_requests: int = Field(20, ge=0, description="Fewer requests than this in the window is 'not enough data': "
                                                    "keep observing instead of judging.")
    failure_limit: int = Field(1, ge=1, le=100, description="Failed measurements before rolling back.")


class Strategy(Model):
    type: StrategyType = Field(StrategyType.rolling_update, description="RollingUpdate, BlueGreen or Canary.")
    steps: list[CanaryStep] | None = Field(None, max_length=20, description="Canary steps, in order.")
    analysis: Analysis | None = Field(None, description="SLO analysis of the new version (defaults apply).")
    rollback_window_seconds: int = Field(600, ge=0, le=604800,
                                         description="BlueGreen: keep the previous version's pods this long after "
                                                     "the switch, for an instant rollback.")

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("self.type != 'Canary' || (has(self.steps) && size(self.steps) > 0)",
            "strategy.steps are required for a Canary strategy", reason="FieldValueRequired"),
    ]})


class Autoscaling(Model):
    min_replicas: int = Field(1, ge=0, le=1000, description="Fewest replicas.")
    max_replicas: int = Field(ge=1, le=1000, description="Most replicas.")
    target_cpu_utilization: int | None = Field(None, ge=1, le=100, description="CPU percent to scale at.")

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("self.minReplicas <= self.maxReplicas", "autoscaling.minReplicas must not exceed maxReplicas"),
    ]})


class Slo(Model):
    """Objectives; a certified agent gets the registry's defaults for any left out
    (p50 100 ms, p95 500 ms, p99 2000 ms, error rate 0.5 %, availability 99.99 %)."""

    p50_latency_ms: float | None = Field(None, gt=0, description="Median latency objective (ms).")
    p95_latency_ms: float | None = Field(None, gt=0, description="95th percentile latency objective (ms).")
    p99_latency_ms: float | None = Field(None, gt=0, description="99th percentile latency objective (ms).")
    error_rate: float | None = Field(None, ge=0, le=1, description="Highest acceptable error rate (0.005 = 0.5%).")
    availability: float | None = Field(None, ge=0, le=1, description="Lowest acceptable availability "
                                                                     "(0.9999 = 99.99%), over the error budget's "
                                                                     "period.")


class Channel(str, enum.Enum):
    certified = "certified"


class AgentDeploymentSpec(Model):
    """Run an agent in this tenant environment's namespace."""

    agent: str = Field(description="The Agent to run, as namespace/name.", max_length=127,
                       pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z]([-a-z0-9]*[a-z0-9])?$")
    version: str | None = Field(None, max_length=128, description="An exact version to run.")
    version_range: str | None = Field(None, max_length=SHORT, description="A semver range, e.g. '>=2.3.0 <3.0.0'.")
    channel: Channel | None = Field(None, description="Follow the newest version of a channel: certified.")
    replicas: int | None = Field(None, ge=0, le=1000, description="Fixed replica count (when not autoscaling).")
    autoscaling: Autoscaling | None = Field(None, description="Scale between min and max replicas.")
    strategy: Strategy | None = Field(None, description="How new versions roll out.")
    slo: Slo | None = Field(None, description="Objectives; breaching them rolls back automatically.")
    resources: Resources | None = Field(None, description="Resources per replica (default: the version's).")

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("[has(self.version), has(self.versionRange), has(self.channel)].filter(x, x).size() == 1",
            "set exactly one of spec.version, spec.versionRange or spec.channel", reason="FieldValueInvalid"),
        cel("!(has(self.replicas) && has(self.autoscaling))",
            "set spec.replicas or spec.autoscaling, not both", reason="FieldValueForbidden"),
    ]})


class DeploymentPhase(str, enum.Enum):
    pending = "Pending"
    progressing = "Progressing"
    available = "Available"
    degraded = "Degraded"
    rolling_back = "RollingBack"
    failed = "Failed"


class SloMeasurement(Model):
    """What Prometheus measured for one version over one window."""

    version: str | None = Field(None, max_length=128, description="The version measured.")
    window: str | None = Field(None, max_length=32, description="The window measured, e.g. 60s or 30d.")
    requests: int | None = Field(None, ge=0, description="Requests served in the window.")
    p50_latency_ms: float | None = Field(None, ge=0, description="Measured median latency (ms).")
    p95_latency_ms: float | None = Field(None, ge=0, description="Measured 95th percentile latency (ms).")
    p99_latency_ms: float | None = Field(None, ge=0, description="Measured 99th percentile latency (ms).")
    error_rate: float | None = Field(None, ge=0, le=1, description="Measured fraction of failed requests.")
    availability: float | None = Field(None, ge=0, le=1, description="Measured fraction of successful requests.")
    measured_at: datetime | None = Field(None, description="When it was measured.")


class ErrorBudget(Model):
    """Error budget of the availability objective over its period."""

    period: str = Field("30d", max_length=32, description="The budget's period.")
    remaining: float | None = Field(None, le=1, description="Fraction of the budget left (negative when overspent).")
    burn_rate: float | None = Field(None, ge=0, description="How fast the budget burns over the last hour "
                                                            "(1 = exactly on budget).")


class Breach(Model):
    version: str = Field(max_length=128, description="The version that breached its SLOs.")
    at: datetime = Field(description="When the breach was measured.")
    message: str = Field(max_length=TEXT, description="Which objectives failed, with the measured values.")
    rolled_back_to: str | None = Field(None, max_length=128, description="The version it was rolled back to.")


class Replicas(Model):
    desired: int | None = Field(None, ge=0, description="Replicas wanted in all.")
    ready: int | None = Field(None, ge=0, description="Replicas ready in all.")
    stable: int | None = Field(None, ge=0, description="Replicas of the stable version.")
    canary: int | None = Field(None, ge=0, description="Replicas of the version being rolled out.")


class AgentDeploymentStatus(Model):
    observed_generation: int | None = Field(None, ge=0, description="The generation last reconciled.")
    resolved_version: str | None = Field(None, max_length=128, description="The version the spec selects now.")
    phase: DeploymentPhase | None = Field(None, description="Where the rollout stands.")
    stable_version: str | None = Field(None, max_length=128, description="The version serving all traffic when no "
                                                                         "rollout is under way.")
    canary_version: str | None = Field(None, max_length=128, description="The version being rolled out, if any.")
    current_step: int | None = Field(None, ge=0, description="Index of the rollout step under way (Canary).")
    step_started_at: datetime | None = Field(None, description="When the current step (or analysis) began.")
    failed_analyses: int | None = Field(None, ge=0, description="Failed measurements in the current rollout.")
    replicas: Replicas | None = Field(None, description="Replica counts by version.")
    rolled_back_versions: list[Annotated[str, Field(max_length=128)]] | None = Field(
        None, max_length=50, description="Versions rolled back after an SLO breach; not retried until a newer "
                                         "version appears or the registry.greenlang.ai/retry annotation changes.",
        json_schema_extra={"x-kubernetes-list-type": "set"})
    handled_retry: str | None = Field(None, max_length=SHORT, description="The retry annotation value last acted on.")
    slo: SloMeasurement | None = Field(None, description="The last SLO measurement.")
    error_budget: ErrorBudget | None = Field(None, description="Error budget and burn rate.")
    last_breach: Breach | None = Field(None, description="The last SLO breach.")
    conditions: Conditions | None = None
