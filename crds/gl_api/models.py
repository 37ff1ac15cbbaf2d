"""Resource models of the five registry kinds; the CRDs in ``crds/`` are generated from them.

Every field carries a description (it becomes ``kubectl explain`` text), every string and
list a bound (the API server prices CEL rules by them), and rules the API server must
enforce on its own are written here as CEL with a message that names the fix.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gl_api import naming, semver
from gl_api.lifecycle import State

DNS_LABEL = naming.AGENT_NAME_PATTERN
DOMAIN_PATTERN = r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$"
DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"
IMAGE_PATTERN = r"^[^@\s]+@sha256:[a-f0-9]{64}$"
QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
SHORT = 253
TEXT = 4096
LONG_TEXT = 32768


def cel(rule: str, message: str | None = None, *, message_expression: str | None = None,
        reason: str | None = None, field_path: str | None = None) -> dict[str, Any]:
    """One ``x-kubernetes-validations`` entry."""
    entry: dict[str, Any] = {"rule": rule}
    if message:
        entry["message"] = message
    if message_expression:
        entry["messageExpression"] = message_expression
    if reason:
        entry["reason"] = reason
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def immutable(what: str) -> dict[str, Any]:
    return {"x-kubernetes-validations": [cel("self == oldSelf", f"{what} is immutable once set")]}


def Quantity(description: str) -> Any:  # noqa: N802 - reads like a type in the models
    """A Kubernetes resource quantity (``500m``, ``2Gi``, or a number)."""
    return Field(None, description=description,
                 json_schema_extra={"x-kubernetes-int-or-string": True, "pattern": QUANTITY_PATTERN})


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              use_enum_values=True)

    def to_k8s(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ---------------------------------------------------------------- shared pieces

class ConditionStatus(str, enum.Enum):
    true = "True"
    false = "False"
    unknown = "Unknown"


class Condition(Model):
    """A metav1.Condition: the latest observation of one aspect of the object's state."""

    type: str = Field(description="Type of condition in CamelCase, e.g. Accepted or Ready.", max_length=316,
                      pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                              r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$")
    status: ConditionStatus = Field(description="Status of the condition: True, False or Unknown.")
    observed_generation: int | None = Field(
        None, ge=0, description="The metadata.generation the condition was set for; older means stale.")
    last_transition_time: datetime = Field(description="When the condition last changed status.")
    reason: str = Field(description="Machine-readable CamelCase reason for the last transition.", min_length=1,
                        max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(description="Human-readable details about the transition.", max_length=LONG_TEXT)


Conditions = Annotated[
    list[Condition],
    Field(description="Standard conditions, one per type (metav1.Condition).", max_length=16,
          json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
]


class ResourceList(Model):
    cpu: str | int | None = Quantity("CPU, e.g. 500m or 2.")
    memory: str | int | None = Quantity("Memory, e.g. 512Mi or 2Gi.")


class Resources(Model):
    """Compute resources for each replica, as in a container's resources."""

    requests: ResourceList | None = Field(None, description="Guaranteed resources per replica.")
    limits: ResourceList | None = Field(None, description="Maximum resources per replica.")


# ---------------------------------------------------------------- Agent

class AgentType(str, enum.Enum):
    calculator = "calculator"
    connector = "connector"
    reporter = "reporter"
    validator = "validator"
    orchestrator = "orchestrator"
    assistant = "assistant"


class Visibility(str, enum.Enum):
    tenant = "tenant"
    public = "public"


class Owner(Model):
    name: str = Field(description="Person or team that owns the agent.", min_length=1, max_length=SHORT)
    email: str = Field(description="Contact address.", max_length=SHORT, pattern=r"^[^@\s]+@[^@\s]+$")


class AgentSpec(Model):
    """What the agent is, who owns it and who may see it. Versions are AgentVersion objects."""

    display_name: str = Field(description="Human-readable name, e.g. CBAM Carbon Calculator.", min_length=1,
                              max_length=SHORT)
    domain: str = Field(description="Dotted lowercase business domain, e.g. sustainability.cbam.", max_length=SHORT,
                        pattern=DOMAIN_PATTERN)
    type: AgentType = Field(description="Kind of agent: calculator, connector, reporter, validator, orchestrator "
                                        "or assistant.")
    description: str | None = Field(None, description="What the agent does; searched by the registry.",
                                    max_length=TEXT)
    owners: list[Owner] | None = Field(None, description="Owners to contact about the agent.", max_length=20)
    tags: list[Annotated[str, Field(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]] | None = Field(
        None, description="Lowercase search tags, e.g. cbam, scope-3.", max_length=50,
        json_schema_extra={"x-kubernetes-list-type": "set"})
    visibility: Visibility = Field(Visibility.tenant, description="tenant: visible inside the owning tenant only; "
                                                                  "public: certified versions are visible to all.")
    data_regions: list[Annotated[str, Field(max_length=63, pattern=r"^[a-z0-9-]+$")]] | None = Field(
        None, max_length=20, description="Regions where the agent processes or stores data, e.g. eu-central-1. "
                                         "A tenant with data residency runs it only if its region is listed; "
                                         "empty means the agent keeps no data outside the caller's cluster.",
        json_schema_extra={"x-kubernetes-list-type": "set"})


class VersionCounts(Model):
    draft: int = Field(0, ge=0, description="Versions in draft.")
    experimental: int = Field(0, ge=0, description="Versions in experimental.")
    certified: int = Field(0, ge=0, description="Versions in certified.")
    deprecated: int = Field(0, ge=0, description="Versions in deprecated.")
    retired: int = Field(0, ge=0, description="Versions in retired.")


class AgentStatus(Model):
    observed_generation: int | None = Field(None, ge=0, description="The generation last reconciled.")
    latest_version: str | None = Field(None, max_length=SHORT, description="Highest published version.")
    certified_version: str | None = Field(None, max_length=SHORT, description="Highest certified version.")
    version_counts: VersionCounts | None = Field(None, description="Number of versions in each lifecycle state.")
    conditions: Conditions | None = None


# ---------------------------------------------------------------- AgentVersion

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


# ---------------------------------------------------------------- Promotion

class FastTrack(Model):
    """A critical patch: skips soak and usage checks, never the security scan; needs an approval."""

    justification: str = Field(description="Why this cannot wait for the normal soak.", min_length=1,
                               max_length=TEXT)
    incident: str = Field(description="Incident or ticket id, e.g. INC-1234.", min_length=1, max_length=SHORT)


class DeprecationRequest(Model):
    replacement: str = Field(description="Certified version of the same agent that replaces this one.",
                             max_length=128)
    sunset_at: datetime | None = Field(None, description="When the version retires (default: 90 days from now).")


class Approval(Model):
    """One approval. The API server admits it only in the approver's own name and only from a user
    allowed the RBAC verb ``approve`` on promotions (see crds/admission_promotion-identity.yaml)."""

    user: str = Field(description="The approving user; must be the user sending the request.", max_length=SHORT)
    groups: list[Annotated[str, Field(max_length=SHORT)]] | None = Field(
        None, max_length=64, description="The approver's groups; when given, must equal the request's groups. "
                                         "The operator re-checks the approve verb with them.")
    at: datetime | None = Field(None, description="When the approval was given.")
    comment: str | None = Field(None, max_length=TEXT, description="Optional remark.")


class PromotionSpec(Model):
    """A request to move an AgentVersion to another lifecycle state."""

    agent_version: str = Field(description="The version to move, as agent@version.", max_length=SHORT,
                               json_schema_extra={"x-kubernetes-validations": [
                                   cel(f"self.matches(r'{naming.REF_PATTERN}')",
                                       "spec.agentVersion must be AGENT@VERSION, e.g. gl-cbam-calculator-v2@2.3.1",
                                       reason="FieldValueInvalid"),
                                   cel("self == oldSelf", "spec.agentVersion is immutable; create a new Promotion"),
                               ]})
    target_state: State = Field(description="The state to move to.", json_schema_extra=immutable("spec.targetState"))
    reason: str | None = Field(None, max_length=TEXT, description="Why the change is wanted.")
    fast_track: FastTrack | None = Field(None, description="Set for a critical patch that cannot wait.")
    deprecation: DeprecationRequest | None = Field(None, description="Required when targetState is deprecated.")
    approvals: list[Approval] | None = Field(None, max_length=20, description="Approvals recorded so far.",
                                             json_schema_extra={"x-kubernetes-validations": [
                                                 cel("oldSelf.all(a, a in self)",
                                                     "approvals can be added but never changed or removed"),
                                             ]})

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("self.targetState != 'deprecated' || has(self.deprecation)",
            "spec.deprecation (replacement and optional sunsetAt) is required when targetState is deprecated",
            reason="FieldValueRequired"),
        cel("!has(self.fastTrack) || self.targetState == 'certified'",
            "spec.fastTrack applies only to targetState certified", reason="FieldValueForbidden"),
        cel("has(self.fastTrack) == has(oldSelf.fastTrack) && (!has(self.fastTrack) || self.fastTrack == oldSelf.fastTrack)",
            "spec.fastTrack is immutable; create a new Promotion", reason="FieldValueForbidden"),
    ]})


class PromotionPhase(str, enum.Enum):
    pending = "Pending"
    checking = "Checking"
    awaiting_approval = "AwaitingApproval"
    succeeded = "Succeeded"
    rejected = "Rejected"
    failed = "Failed"


class Check(Model):
    name: str = Field(description="Check name, e.g. security-scan.", max_length=SHORT)
    passed: bool = Field(description="Whether the check passed.")
    message: str | None = Field(None, max_length=TEXT, description="What was found and what is missing.")


class PromotionStatus(Model):
    observed_generation: int | None = Field(None, ge=0, description="The generation last reconciled.")
    phase: PromotionPhase | None = Field(None, description="Where the promotion stands.")
    checks: list[Check] | None = Field(None, max_length=64, description="Named checks and their results.")
    conditions: Conditions | None = None


# ---------------------------------------------------------------- TenantPolicy

class EnvironmentName(str, enum.Enum):
    dev = "dev"
    staging = "staging"
    production = "production"


class Environment(Model):
    name: EnvironmentName = Field(description="Environment: dev, staging or production.")
    namespace: str = Field(description="Namespace the environment's agents run in.", max_length=63,
                           pattern=DNS_LABEL)
    allowed_states: list[State] | None = Field(None, max_length=5,
                                               description="Lifecycle states that may run here.",
                                               json_schema_extra={"x-kubernetes-list-type": "set"})


class AgentRules(Model):
    allow: list[Annotated[str, Field(max_length=SHORT)]] | None = Field(
        None, max_length=100, description="Glob patterns on agent names and domains that may run.")
    deny: list[Annotated[str, Field(max_length=SHORT)]] | None = Field(
        None, max_length=100, description="Glob patterns that may never run; deny wins over allow.")


class Quotas(Model):
    cpu: str | int | None = Quantity("Total CPU per environment namespace.")
    memory: str | int | None = Quantity("Total memory per environment namespace.")
    storage: str | int | None = Quantity("Total storage requests per environment namespace.")
    max_deployments: int | None = Field(None, ge=0, description="Most AgentDeployments per environment.")


class DataResidency(Model):
    region: str = Field(description="Region data must stay in, e.g. eu-central-1.", max_length=63,
                        pattern=r"^[a-z0-9-]+$")


class Role(str, enum.Enum):
    super_admin = "super_admin"
    tenant_admin = "tenant_admin"
    developer = "developer"
    operator = "operator"
    analyst = "analyst"
    auditor = "auditor"
    viewer = "viewer"


class Member(Model):
    kind: Literal["User", "Group"] = Field(description="User or Group, as in a RoleBinding subject.")
    name: str = Field(description="User or group name as the API server authenticates it.", min_length=1,
                      max_length=SHORT)
    role: Role = Field(description="super_admin, tenant_admin, developer, operator, analyst, auditor or viewer.")


class TenantPolicySpec(Model):
    """A tenant: its environments, which agents it may run, its quotas and its members."""

    display_name: str | None = Field(None, max_length=SHORT, description="Human-readable tenant name.")
    environments: list[Environment] | None = Field(
        None, max_length=3, description="The tenant's environments, one per name.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    agents: AgentRules | None = Field(None, description="Which agents the tenant may run.")
    quotas: Quotas | None = Field(None, description="Resource limits for each environment namespace.")
    data_residency: DataResidency | None = Field(None, description="Where the tenant's data must stay.")
    members: list[Member] | None = Field(None, max_length=500, description="Who has which role in the tenant.")


class TenantPolicyStatus(Model):
    observed_generation: int | None = Field(None, ge=0, description="The generation last reconciled.")
    namespaces: list[Annotated[str, Field(max_length=63)]] | None = Field(
        None, max_length=3, description="Namespaces provisioned for the environments.")
    role_bindings: list[Annotated[str, Field(max_length=SHORT)]] | None = Field(
        None, max_length=1000, description="RoleBindings provisioned for the members.")
    conditions: Conditions | None = None


# ---------------------------------------------------------------- AgentDeployment

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
