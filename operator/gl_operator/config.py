"""The operator's settings: promotion thresholds and timing, from one typed place.

Defaults are the registry's policy (score 0.9, 1000 requests, error rate below 1%, 7 days of
soak, sunset 90 days after deprecation). Override them with a YAML file (``--config`` or
``$GL_OPERATOR_CONFIG``), for example::

    promotion:
      minEvaluationScore: 0.95
      soakSeconds: 1209600   # 14 days
    deployments:
      reconcileSeconds: 10
      prometheusUrl: http://prometheus.monitoring:9090
      usageWindow: 7d
      gateway: [{name: agents, namespace: greenlang-system}]   # parentRefs of Canary HTTPRoutes
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gl_api.promotion_checks import PromotionPolicy

class _Settings(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Placement(_Settings):
    """Where agent pods may run, added to every pod spec (e.g. a dedicated, tainted node pool)."""

    node_selector: dict[str, str] | None = Field(None, description="Pod spec nodeSelector.")
    tolerations: list[dict[str, Any]] | None = Field(None, description="Pod spec tolerations.")

    def pod_fields(self) -> dict[str, Any]:
        return {k: v for k, v in (("nodeSelector", self.node_selector), ("tolerations", self.tolerations)) if v}


class DeploymentSettings(_Settings):
    """How AgentDeployments run: the reconcile period, the default image, where SLOs are measured."""

    reconcile_seconds: float = Field(10, gt=0, description="How often each AgentDeployment is reconciled "
                                                           "(rollout steps, analysis, readiness).")
    runtime_image: str | None = Field(None, description="Image for versions without spec.image "
                                                        "(--runtime-image, $GL_RUNTIME_IMAGE).")
    prometheus_url: str | None = Field(None, description="Prometheus HTTP API for SLO analysis (--prometheus-url, "
                                                         "$GL_PROMETHEUS_URL); without it analysis is off and "
                                                         "rollout steps advance on time alone.")
    prometheus_timeout_seconds: float = Field(5, gt=0, description="Timeout of one Prometheus query.")
    usage_window: str = Field("7d", pattern=r"^[0-9]+[smhd]$",
                              description="Window of the usage written to AgentVersions' status.usage.")
    usage_seconds: float = Field(60, gt=0, description="How often status.usage of running versions is refreshed.")
    placement: Placement = Field(default_factory=Placement, description="nodeSelector and tolerations of agent pods.")
    gateway: list[dict[str, Any]] = Field(default_factory=list, description=(
        "parentRefs of the HTTPRoute a Canary's traffic is weighted by (when the cluster serves Gateway API "
        "HTTPRoutes), e.g. [{name: agents, namespace: greenlang-system}]; empty: the route attaches nowhere."))
    gateway_check_seconds: float = Field(300, gt=0, description="How often the operator re-checks whether the "
                                                                "cluster serves Gateway API HTTPRoutes.")


class OperatorConfig(_Settings):
    promotion: PromotionPolicy = Field(default_factory=PromotionPolicy)
    deployments: DeploymentSettings = Field(default_factory=DeploymentSettings)
    resync_seconds: float = Field(15, gt=0, description="How often waiting Promotions, sunsets and Agent "
                                                        "summaries are re-checked.")
    service_account: str = Field("system:serviceaccount:greenlang-system:greenlang-registry-operator",
                                 description="The operator's own identity, recorded in state history.")


def load(path: str | Path | None = None) -> OperatorConfig:
    source = path or os.environ.get("GL_OPERATOR_CONFIG")
    if not source:
        return OperatorConfig()
    data = yaml.safe_load(Path(source).read_text()) or {}
    return OperatorConfig.model_validate(data)
