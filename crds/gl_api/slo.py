"""Service level objectives of a running agent: which apply, how to measure them, how to judge them.

Pure arithmetic and text; the operator asks Prometheus (``gl_kube.prometheus``) with the PromQL
built here and judges what comes back with :func:`evaluate`.

Which objectives apply (``objectives``): what ``spec.slo`` sets always applies. On top of that
the registry's defaults fill what the spec leaves out, by lifecycle state:

- certified and deprecated (a deprecated version was certified): every default, p50 100 ms,
  p95 500 ms, p99 2000 ms, error rate 0.5 %, availability 99.99 %;
- experimental and draft: the error-rate and p95 defaults only (an experiment must not fail or
  be slow for its users, but its tail latency is not promised yet);
- anything else (unknown state): only what the spec sets.

How they are judged: latencies and the error rate over the analysis window
(:func:`evaluate`, for rollout steps and for the version serving); availability over the error
budget's period (30 days, :func:`error_budget` and :func:`burn_rate`): 99.99 % is a monthly
promise, and one bad minute must not be read as a breach of it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gl_api.lifecycle import State

P50, P95, P99, ERROR_RATE, AVAILABILITY = "p50LatencyMs", "p95LatencyMs", "p99LatencyMs", "errorRate", "availability"
LATENCIES = ((P50, 0.5, "p50"), (P95, 0.95, "p95"), (P99, 0.99, "p99"))
DEFAULTS: dict[str, float] = {P50: 100.0, P95: 500.0, P99: 2000.0, ERROR_RATE: 0.005, AVAILABILITY: 0.9999}
EXPERIMENTAL_DEFAULTS = (P95, ERROR_RATE)
BUDGET_PERIOD = "30d"
BURN_WINDOW = "1h"

REQUESTS = "greenlang_registry_agent_requests_total"
ERRORS = "greenlang_registry_agent_request_errors_total"
DURATION_BUCKETS = "greenlang_registry_agent_request_duration_seconds_bucket"


def objectives(spec_slo: Mapping[str, Any] | None, state: str | None) -> dict[str, float]:
    """The objectives for a version in ``state``: the spec's over the defaults that apply (module doc)."""
    if state in (State.certified.value, State.deprecated.value):
        result = dict(DEFAULTS)
    elif state in (State.experimental.value, State.draft.value):
        result = {key: DEFAULTS[key] for key in EXPERIMENTAL_DEFAULTS}
    else:
        result = {}
    result.update({key: float(value) for key, value in (spec_slo or {}).items()
                   if key in DEFAULTS and value is not None})
    return result


# --- PromQL -------------------------------------------------------------------------------------

def window(seconds: float) -> str:
    """A PromQL range of whole seconds, e.g. ``60s``."""
    return f"{int(seconds)}s"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(**matchers: str | None) -> str:
    """``{a="x",b="y"}`` from the matchers that are set, in a stable order."""
    return "{" + ",".join(f"{key}={_quote(value)}" for key, value in sorted(matchers.items()) if value) + "}"


def deployment_selector(namespace: str, deployment: str, version: str) -> str:
    """One AgentDeployment's pods of one version (Prometheus' target labels plus the runtime's own)."""
    return selector(namespace=namespace, agentdeployment=deployment, version=version)


def version_selector(agent: str, version: str) -> str:
    """Every pod of one agent version, wherever it runs (``agent`` is ``<namespace>/<name>``)."""
    return selector(agent=agent, version=version)


def requests_query(sel: str, range_: str) -> str:
    return f"sum(increase({REQUESTS}{sel}[{range_}]))"


def errors_query(sel: str, range_: str) -> str:
    return f"sum(increase({ERRORS}{sel}[{range_}]))"


def quantile_query(quantile: float, sel: str, range_: str) -> str:
    return f"histogram_quantile({quantile}, sum by (le) (rate({DURATION_BUCKETS}{sel}[{range_}])))"


def queries(sel: str, range_: str) -> dict[str, str]:
    """Everything one measurement asks: requests, errors and the three latency quantiles (seconds)."""
    result = {"requests": requests_query(sel, range_), "errors": errors_query(sel, range_)}
    result.update({key: quantile_query(q, sel, range_) for key, q, _ in LATENCIES})
    return result


def measurement(values: Mapping[str, float | None]) -> dict[str, Any]:
    """A ``status.slo``-shaped measurement (camelCase) from the answers to :func:`queries`."""
    requests = values.get("requests")
    errors = values.get("errors")
    result: dict[str, Any] = {}
    if requests is not None:
        result["requests"] = int(round(requests))
    if requests and requests > 0:
        rate = min(1.0, max(0.0, (errors or 0.0) / requests))
        result[ERROR_RATE] = round(rate, 6)
        result[AVAILABILITY] = round(1 - rate, 6)
    for key, _, _ in LATENCIES:
        seconds = values.get(key)
        if seconds is not None and math.isfinite(seconds):
            result[key] = round(seconds * 1000, 3)
    return result


WINDOW_PATTERN = r"[0-9]+[smhdw]"  # whole string (re.fullmatch): nothing else reaches PromQL


def usage(values: Mapping[str, float | None], range_: str) -> dict[str, Any]:
    """What a user reads of one version over ``range_``: requests, errors, error rate, p50/p95/p99 (ms)."""
    figures = measurement(values)
    return {"requests": figures.get("requests", 0), "errors": int(round(values.get("errors") or 0)),
            ERROR_RATE: figures.get(ERROR_RATE), P50: figures.get(P50), P95: figures.get(P95),
            P99: figures.get(P99), "window": range_}


# --- judging ------------------------------------------------------------------------------------

class Outcome(str, enum.Enum):
    passed = "passed"
    failed = "failed"
    inconclusive = "inconclusive"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    failures: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.passed

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.failed


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.3g} ms"


def _pct(value: float) -> str:
    return f"{value * 100:.2f}%"


def describe(measured: Mapping[str, Any]) -> str:
    """The measured values in words, for condition and Event messages."""
    parts = [f"{measured.get('requests', 0)} requests"]
    if measured.get(ERROR_RATE) is not None:
        parts.append(f"error rate {_pct(measured[ERROR_RATE])}")
    parts += [f"{label} {_ms(measured[key])}" for key, _, label in LATENCIES if measured.get(key) is not None]
    return ", ".join(parts)


def evaluate(measured: Mapping[str, Any] | None, wanted: Mapping[str, float], min_requests: int) -> Verdict:
    """Judge one measurement (``status.slo`` shape) against the objectives over the analysis window.

    Fewer than ``min_requests`` requests is inconclusive (keep observing); availability is not
    judged here but over the error budget's period (module doc).
    """
    if measured is None:
        return Verdict(Outcome.inconclusive, message="nothing measured")
    requests = measured.get("requests")
    if requests is None or requests < min_requests:
        return Verdict(Outcome.inconclusive, message=f"{requests or 0} requests in the window; at least "
                                                     f"{min_requests} are needed to judge")
    failures = []
    for key, _, label in LATENCIES:
        if key in wanted and measured.get(key) is not None and measured[key] > wanted[key]:
            failures.append(f"{label} {_ms(measured[key])} > {_ms(wanted[key])}")
    if ERROR_RATE in wanted and measured.get(ERROR_RATE) is not None and measured[ERROR_RATE] > wanted[ERROR_RATE]:
        failures.append(f"error rate {_pct(measured[ERROR_RATE])} > {_pct(wanted[ERROR_RATE])}")
    if failures:
        return Verdict(Outcome.failed, failures, "; ".join(failures) + f" ({describe(measured)})")
    return Verdict(Outcome.passed, message=f"objectives met ({describe(measured)})")


# --- error budget -------------------------------------------------------------------------------

def error_budget(availability: float, requests: float | None, errors: float | None) -> float | None:
    """Fraction of the period's error budget left (1 untouched, 0 spent, negative overspent)."""
    allowed = 1 - availability
    if requests is None:
        return None
    if requests <= 0:
        return 1.0
    if allowed <= 0:
        return 1.0 if not errors else None
    return round(1 - ((errors or 0.0) / requests) / allowed, 6)


def burn_rate(availability: float, error_rate: float | None) -> float | None:
    """How fast the budget burns: 1 spends exactly the budget over the period, 14.4 a month's in two days."""
    allowed = 1 - availability
    if error_rate is None or allowed <= 0:
        return None
    return round(error_rate / allowed, 6)
