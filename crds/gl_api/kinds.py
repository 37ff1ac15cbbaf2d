"""The five kinds: names, scope, short names and printer columns, next to their models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from gl_api import API_VERSION, CATEGORY, GROUP, VERSION, models


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0

    def to_crd(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")


def condition_column(condition: str, priority: int = 0) -> PrinterColumn:
    return PrinterColumn(condition, f'.status.conditions[?(@.type=="{condition}")].status',
                         description=f"Status of the {condition} condition.", priority=priority)


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    scope: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: tuple[PrinterColumn, ...] = field(default=())
    selectable_fields: tuple[str, ...] = field(default=())

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def api_version(self) -> str:
        return API_VERSION

    @property
    def version(self) -> str:
        return VERSION

    @property
    def group(self) -> str:
        return GROUP

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"


AGENT = Kind(
    kind="Agent", plural="agents", scope="Namespaced", short_names=("gla", "glagent"),
    spec=models.AgentSpec, status=models.AgentStatus,
    description="An agent in the GreenLang registry: what it is, who owns it and who may see it. "
                "Its releases are AgentVersion objects in the same namespace.",
    columns=(
        PrinterColumn("Display Name", ".spec.displayName"),
        PrinterColumn("Domain", ".spec.domain"),
        PrinterColumn("Type", ".spec.type"),
        PrinterColumn("Latest", ".status.latestVersion", description="Highest published version."),
        PrinterColumn("Certified", ".status.certifiedVersion", description="Highest certified version."),
        PrinterColumn("Visibility", ".spec.visibility", priority=1),
        AGE,
    ),
)

AGENT_VERSION = Kind(
    kind="AgentVersion", plural="agentversions", scope="Namespaced", short_names=("glav", "glagentversion"),
    spec=models.AgentVersionSpec, status=models.AgentVersionStatus,
    description="One immutable, semver-versioned release of an Agent, named <agent>-<version>. "
                "Its lifecycle state is set by the registry operator through Promotions.",
    columns=(
        PrinterColumn("Agent", ".spec.agent"),
        PrinterColumn("Version", ".spec.version"),
        PrinterColumn("State", ".status.state", description="Lifecycle state."),
        condition_column("Accepted", priority=1),
        PrinterColumn("Image", ".spec.image", priority=1),
        AGE,
    ),
    selectable_fields=(".spec.agent", ".spec.version"),
)

PROMOTION = Kind(
    kind="Promotion", plural="promotions", scope="Namespaced", short_names=("glpromo", "glp"),
    spec=models.PromotionSpec, status=models.PromotionStatus,
    description="A request to move an AgentVersion to another lifecycle state; the operator checks, "
                "decides and records it.",
    columns=(
        PrinterColumn("Agent Version", ".spec.agentVersion"),
        PrinterColumn("Target", ".spec.targetState"),
        PrinterColumn("Phase", ".status.phase"),
        PrinterColumn("Fast Track", ".spec.fastTrack.incident", priority=1),
        AGE,
    ),
)

TENANT_POLICY = Kind(
    kind="TenantPolicy", plural="tenantpolicies", scope="Cluster", short_names=("gltp", "gltenant"),
    spec=models.TenantPolicySpec, status=models.TenantPolicyStatus,
    description="A tenant of the registry: its environments and namespaces, which agents it may run, "
                "quotas, data residency and members.",
    columns=(
        PrinterColumn("Display Name", ".spec.displayName"),
        PrinterColumn("Region", ".spec.dataResidency.region"),
        condition_column("Ready"),
        AGE,
    ),
)

AGENT_DEPLOYMENT = Kind(
    kind="AgentDeployment", plural="agentdeployments", scope="Namespaced", short_names=("glad", "gldeploy"),
    spec=models.AgentDeploymentSpec, status=models.AgentDeploymentStatus,
    description="Runs an agent in a tenant environment's namespace, with a rollout strategy and SLOs "
                "that trigger automatic rollback.",
    columns=(
        PrinterColumn("Agent", ".spec.agent"),
        PrinterColumn("Stable", ".status.stableVersion", description="Version serving traffic."),
        PrinterColumn("Canary", ".status.canaryVersion", description="Version being rolled out."),
        PrinterColumn("Step", ".status.currentStep", "integer", description="Rollout step under way.", priority=1),
        PrinterColumn("Ready", ".status.replicas.ready", "integer", description="Ready replicas."),
        PrinterColumn("Phase", ".status.phase"),
        condition_column("Available"),
        condition_column("SLOCompliant"),
        PrinterColumn("Resolved", ".status.resolvedVersion", description="Version the spec selects.", priority=1),
        AGE,
    ),
)

ALL: tuple[Kind, ...] = (AGENT, AGENT_VERSION, PROMOTION, TENANT_POLICY, AGENT_DEPLOYMENT)
BY_KIND = {k.kind: k for k in ALL}
CATEGORIES = (CATEGORY,)
