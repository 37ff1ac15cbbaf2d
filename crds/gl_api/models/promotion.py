"""Promotion: a request to move an AgentVersion through its lifecycle."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from gl_api import naming
from gl_api.lifecycle import State
from gl_api.models.base import SHORT, TEXT, Conditions, Model, cel, immutable


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
    approvals: list[Approval] | None = Field(None, max_length=20, description="Approvals recorded so far.")

    # Append-only, checked on spec rather than on the list: the API server skips a field's own rule
    # when the field is removed, so deleting the whole list would pass there.
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("!has(oldSelf.approvals) || (has(self.approvals) && oldSelf.approvals.all(a, a in self.approvals))",
            "approvals can be added but never changed or removed", reason="FieldValueForbidden",
            field_path=".approvals"),
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
