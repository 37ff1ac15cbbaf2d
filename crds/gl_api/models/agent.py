"""Agent: what an agent is, who owns it, who may see it."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from gl_api.models.base import DOMAIN_PATTERN, SHORT, TEXT, Conditions, Model


class AgentType(str, enum.Enum):
    calculator = "calculator"
    connector = "connector"
    reporter = "reporter"
    validator = "validator"
    orchestrator = "orchestrator"
    assistant = "assistant"


class Visibility(str, enum.Enum):
    private = "private"
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
    visibility: Visibility = Field(Visibility.tenant, description="private: visible to readers of its own namespace "
                                                                  "only, deployed by its own tenant only; tenant: "
                                                                  "visible and deployable inside the owning tenant "
                                                                  "only; public: certified versions are visible to "
                                                                  "and deployable by all.")
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
