"""What every kind shares: the Model base, CEL and quantity helpers, bounds, conditions and resources."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gl_api import naming

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
