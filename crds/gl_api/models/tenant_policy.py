"""TenantPolicy: a tenant's environments, rules, quotas, residency and members."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from gl_api.lifecycle import State
from gl_api.models.base import DNS_LABEL, SHORT, Conditions, Model, Quantity, cel


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
    team_namespaces: list[Annotated[str, Field(max_length=63, pattern=DNS_LABEL)]] | None = Field(
        None, max_length=20,
        description="Namespaces where the tenant's teams publish agents (Agents, AgentVersions, Promotions): there the "
                    "tenant's publish domains, fast-track rights and agent visibility apply. Claimed like environments: "
                    "labelled for the tenant, its members bound to their roles.",
        json_schema_extra={"x-kubernetes-list-type": "set"})

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("!has(self.teamNamespaces) || !has(self.environments) "
            "|| self.environments.all(e, !(e.namespace in self.teamNamespaces))",
            "a namespace is either an environment (agents run there) or a team namespace (agents are published there), "
            "not both", reason="FieldValueInvalid", field_path=".teamNamespaces"),
    ]})


class TenantPolicyStatus(Model):
    observed_generation: int | None = Field(None, ge=0, description="The generation last reconciled.")
    namespaces: list[Annotated[str, Field(max_length=63)]] | None = Field(
        None, max_length=3, description="Namespaces provisioned for the environments.")
    team_namespaces: list[Annotated[str, Field(max_length=63)]] | None = Field(
        None, max_length=20, description="Team namespaces provisioned.")
    role_bindings: list[Annotated[str, Field(max_length=SHORT)]] | None = Field(
        None, max_length=1000, description="RoleBindings provisioned for the members.")
    conditions: Conditions | None = None
