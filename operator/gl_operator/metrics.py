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
API_REQUESTS = Counter("greenlang_registry_operator_api_requests_total",
                       "Requests the operator's reconcilers made to the API server, by verb and resource "
                       "(kopf's own watches and bookkeeping are not counted).", ["verb", "resource"])
