"""AgentDeployment: an agent running in a tenant environment, with SLOs."""

from __future__ import annotations

import enum

from pydantic import ConfigDict, Field

from gl_api.models.base import SHORT, Conditions, Model, Resources, cel


class StrategyType(str, enum.Enum):
    rolling_update = "RollingUpdate"
    blue_green = "BlueGreen"
    canary = "Canary"


class CanaryStep(Model):
    weight: int = Field(description="Percent of traffic on the new version.", ge=0, le=100)
    pause_seconds: int | None = Field(None, ge=0, description="How long to observe before the next step.")


class Strategy(Model):
    type: StrategyType = Field(StrategyType.rolling_update, description="RollingUpdate, BlueGreen or Canary.")
    steps: list[CanaryStep] | None = Field(None, max_length=20, description="Canary steps, in order.")

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
    p95_latency_ms: float | None = Field(None, gt=0, description="95th percentile latency objective (ms).")
    error_rate: float | None = Field(None, ge=0, le=1, description="Highest acceptable error rate (0.01 = 1%).")


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


class AgentDeploymentStatus(Model):
    observed_generation: int | None = Field(None, ge=0, description="The generation last reconciled.")
    resolved_version: str | None = Field(None, max_length=128, description="The version actually running.")
    phase: DeploymentPhase | None = Field(None, description="Where the rollout stands.")
    conditions: Conditions | None = None
