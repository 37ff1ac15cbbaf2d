"""Webhook metrics, named greenlang_registry_*; no object names or tenants as labels."""

from prometheus_client import Counter, Histogram

# Decisions take milliseconds: buckets from half a millisecond up to the 5 s webhook timeout.
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY = Histogram("greenlang_registry_webhook_duration_seconds",
                    "Time to answer one admission request, policy evaluation included.", ["webhook", "engine"],
                    buckets=BUCKETS)
DECISIONS = Counter("greenlang_registry_admission_decisions_total",
                    "Admission decisions by webhook and result (allowed, denied, error).", ["webhook", "result"])
