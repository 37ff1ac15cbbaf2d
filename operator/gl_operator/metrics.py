"""Prometheus metrics of the operator, all named greenlang_registry_*.

No agent names or tenants as labels: their number is unbounded.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PROMOTIONS = Counter("greenlang_registry_promotions_total",
                     "Promotions decided, by result (Succeeded, Rejected, Failed).", ["result", "target_state"])
TRANSITIONS = Counter("greenlang_registry_state_transitions_total",
                      "AgentVersion state changes applied, by target state.", ["to"])
RECONCILE = Histogram("greenlang_registry_reconcile_duration_seconds",
                      "Time to reconcile one object, by kind.", ["kind"])
VERSIONS = Gauge("greenlang_registry_agent_versions", "AgentVersions by lifecycle state.", ["state"])
