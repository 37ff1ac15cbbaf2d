"""Webhook metrics, named greenlang_registry_*."""

from prometheus_client import Counter, Histogram

LATENCY = Histogram("greenlang_registry_webhook_duration_seconds",
                    "Time to answer one admission request, policy evaluation included.", ["webhook", "engine"])
DECISIONS = Counter("greenlang_registry_admission_decisions_total",
                    "Admission decisions by webhook and result (allowed, denied, error).", ["webhook", "result"])
