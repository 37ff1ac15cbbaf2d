"""AgentVersion: one immutable release, and what the registry learns about it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from gl_api import naming, semver
from gl_api.lifecycle import State
from gl_api.models.base import (
    DIGEST_PATTERN,
    DNS_LABEL,
    IMAGE_PATTERN,
    LONG_TEXT,
    SHORT,
    TEXT,
    Conditions,
    Model,
    Resources,
    cel,
)


class Artifact(Model):
    """The packaged agent, stored content-addressed in S3."""

    uri: str = Field(description="Location of the artifact, e.g. s3://bucket/sha256/ab12...", max_length=2048,
                     pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
    digest: str = Field(description="sha256 of the artifact bytes, as sha256:<64 hex>.", max_length=71,
                        pattern=DIGEST_PATTERN)
    size_bytes: int | None = Field(None, ge=0, description="Size of the artifact in bytes.")


class Capability(Model):
    name: str = Field(description="Capability name, e.g. calculate-embedded-emissions.", max_length=SHORT,
                      pattern=r"^[a-z][a-z0-9_.-]*$")
    description: str | None = Field(None, max_length=TEXT, description="What the capability does.")
    input_schema: dict[str, Any] | None = Field(None, description="JSON Schema of the capability's input.")
    output_schema: dict[str, Any] | None = Field(None, description="JSON Schema of the capability's output.")


class RuntimeSpec(Model):
    """How the agent runs when deployed."""

    port: int = Field(8080, ge=1, le=65535, description="Container port the agent serves on.")
    resources: Resources | None = Field(None, description="Default resources per replica.")
    min_replicas: int = Field(1, ge=0, le=1000, description="Fewest replicas a deployment may run.")
    max_replicas: int = Field(3, ge=1, le=1000, description="Most replicas a deployment may run.")

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("self.minReplicas <= self.maxReplicas", "runtime.minReplicas must not exceed runtime.maxReplicas"),
    ]})


class Dependency(Model):
    agent: str = Field(description="Name of the agent depended on.", max_length=naming.AGENT_NAME_MAX,
                       pattern=DNS_LABEL)
    version_range: str = Field(description="Accepted versions, e.g. '>=1.2.0 <2.0.0'.", max_length=SHORT)


class AgentVersionSpec(Model):
    """One immutable, published release of an agent. Change nothing here: publish a new version."""

    agent: str = Field(description="Name of the Agent (same namespace) this is a version of.",
                       max_length=naming.AGENT_NAME_MAX, pattern=DNS_LABEL)
    version: str = Field(description=f"The release's version: {semver.VERSION_HINT}.", max_length=128,
                         json_schema_extra={"x-kubernetes-validations": [
                             cel(f"self.matches(r'{semver.VERSION_PATTERN}')",
                                 f"spec.version must be {semver.VERSION_HINT}", reason="FieldValueInvalid"),
                         ]})
    artifact: Artifact | None = Field(None, description="The packaged agent in S3, pinned by digest.")
    image: str | None = Field(None, description="Container image pinned by digest, e.g. "
                                                "registry.example.com/cbam@sha256:<64 hex>.", max_length=1024,
                              pattern=IMAGE_PATTERN)
    capabilities: list[Capability] | None = Field(None, max_length=64, description="What the agent can do.",
                                                  json_schema_extra={"x-kubernetes-list-type": "map",
                                                                     "x-kubernetes-list-map-keys": ["name"]})
    runtime: RuntimeSpec | None = Field(None, description="How the agent runs when deployed.")
    dependencies: list[Dependency] | None = Field(None, max_length=64, description="Agents this version needs.")
    release_notes: str | None = Field(None, max_length=LONG_TEXT, description="What changed in this release.")

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("self == oldSelf", "spec of a published AgentVersion is immutable; publish a new version instead",
            reason="FieldValueForbidden"),
    ]})


class StateTransition(Model):
    from_: State | None = Field(None, alias="from", description="State before the transition (empty on publish).")
    to: State = Field(description="State after the transition.")
    at: datetime = Field(description="When the transition happened.")
    by: str | None = Field(None, max_length=SHORT, description="Who asked for it (authenticated user).")
    promotion: str | None = Field(None, max_length=SHORT, description="The Promotion that caused it, if any.")
    reason: str | None = Field(None, max_length=TEXT, description="Why it happened.")


class Evaluation(Model):
    passed: bool = Field(description="Whether the evaluation suite passed.")
    score: float | None = Field(None, ge=0, le=1, description="Aggregate score between 0 and 1.")
    suite: str | None = Field(None, max_length=SHORT, description="Name and version of the evaluation suite.")
    report_uri: str | None = Field(None, max_length=2048, description="Where the full report is.")
    at: datetime | None = Field(None, description="When the evaluation finished.")


class SecurityScan(Model):
    critical: int = Field(0, ge=0, description="Number of critical findings.")
    high: int = Field(0, ge=0, description="Number of high findings.")
    medium: int = Field(0, ge=0, description="Number of medium findings.")
    scanner: str | None = Field(None, max_length=SHORT, description="Scanner name and version.")
    at: datetime | None = Field(None, description="When the scan finished.")


class Usage(Model):
    requests: int = Field(0, ge=0, description="Requests served in the window.")
    error_rate: float = Field(0, ge=0, le=1, description="Fraction of requests that failed (0.01 = 1%).")
    p95_latency_ms: float | None = Field(None, ge=0, description="95th percentile latency in milliseconds.")
    window: str | None = Field(None, max_length=32, pattern=r"^[0-9]+[smhd]$",
                               description="Window the figures cover, e.g. 7d.")


class DeprecationStatus(Model):
    replacement: str | None = Field(None, max_length=128, description="Version that replaces this one.")
    announced_at: datetime | None = Field(None, description="When the deprecation was announced.")
    sunset_at: datetime | None = Field(None, description="When the version retires.")


class AgentVersionStatus(Model):
    observed_generation: int | None = Field(None, ge=0, description="The generation last reconciled.")
    state: State | None = Field(None, description="Lifecycle state; set only by the operator.")
    state_history: list[StateTransition] | None = Field(None, max_length=256,
                                                        description="Every state change, oldest first.")
    evaluation: Evaluation | None = Field(None, description="Latest evaluation result.")
    security_scan: SecurityScan | None = Field(None, description="Latest security scan result.")
    usage: Usage | None = Field(None, description="Usage observed while experimental or certified.")
    deprecation: DeprecationStatus | None = Field(None, description="Set when the version is deprecated.")
    conditions: Conditions | None = None
