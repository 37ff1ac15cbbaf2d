"""The runtime's Prometheus metrics, in a private registry.

The names and labels are a contract with the operator's SLO analysis: change them only together.
Only capability invocations are measured, never probes or scrapes.
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10)
LABELS = ("agent", "version", "capability", "code")
# The capability label of a request for a name the agent does not have: bounded cardinality, and
# no capability can be called this (names start with a lowercase letter).
UNKNOWN_CAPABILITY = "_unknown"

# Every status an invocation can get (400 bad input, 404 unknown capability, 422 refused by the
# agent, 500 failed or invalid output), each series created at zero when the agent loads: a
# counter that appears at 1 would hide its first increment from rate() and increase(), and the
# first error of a version is exactly the one that must count.
CODES = (200, 400, 422, 500)
UNKNOWN_CODE = 404

prometheus_client.disable_created_metrics()  # the process serves one agent; *_created series only add noise


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.duration = Histogram("greenlang_registry_agent_request_duration_seconds",
                                  "Time to answer a capability invocation.", LABELS, buckets=BUCKETS,
                                  registry=self.registry)
        self.requests = Counter("greenlang_registry_agent_requests_total", "Capability invocations answered.",
                                LABELS, registry=self.registry)
        self.errors = Counter("greenlang_registry_agent_request_errors_total",
                              "Capability invocations answered with a 5xx status.", LABELS, registry=self.registry)
        self.in_flight = Gauge("greenlang_registry_agent_requests_in_flight",
                               "Capability invocations being answered.", ("agent", "version"),
                               registry=self.registry)

    def prepare(self, agent: str, version: str, capabilities: list[str]) -> None:
        """Create every series this agent can produce, at zero, before the first request."""
        series = [(name, code) for name in capabilities for code in CODES] + [(UNKNOWN_CAPABILITY, UNKNOWN_CODE)]
        for capability, code in series:
            labels = (agent, version, capability, str(code))
            self.duration.labels(*labels)
            self.requests.labels(*labels)
            if code >= 500:
                self.errors.labels(*labels)
        self.in_flight.labels(agent, version)

    def observe(self, agent: str, version: str, capability: str, code: int, seconds: float) -> None:
        labels = (agent, version, capability, str(code))
        self.duration.labels(*labels).observe(seconds)
        self.requests.labels(*labels).inc()
        if code >= 500:
            self.errors.labels(*labels).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
