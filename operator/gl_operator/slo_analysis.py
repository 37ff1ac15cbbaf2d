"""Measure a running version's SLOs in Prometheus and judge them; measure versions' usage.

The PromQL and the judging are ``gl_api.slo``'s; this module only asks Prometheus (through
``gl_kube.prometheus``) and words the outcome as ``status.slo``, ``status.errorBudget`` and the
``SLOCompliant`` condition. Prometheus unreachable is *inconclusive* (the condition says so),
never a breach, so it never rolls anything back. Without a Prometheus URL analysis is disabled.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gl_api import conditions, slo
from gl_kube.prometheus import Prometheus, PrometheusError

log = logging.getLogger(__name__)
CONDITION = "SLOCompliant"


@dataclass
class Result:
    verdict: slo.Verdict | None
    """None when analysis is disabled (no Prometheus)."""
    condition: tuple[str, str, str]
    """(status, reason, message) of SLOCompliant."""
    status: dict[str, Any] = field(default_factory=dict)
    """status.slo and status.errorBudget, when measured."""


def analyse(prometheus: Prometheus | None, *, namespace: str, deployment: str, version: str | None,
            objectives: Mapping[str, float], window_seconds: int, min_requests: int, now: datetime) -> Result:
    if prometheus is None:
        return Result(None, ("Unknown", "AnalysisDisabled",
                             "no Prometheus configured (--prometheus-url); SLOs are not measured"))
    if version is None:
        return Result(slo.Verdict(slo.Outcome.inconclusive, message="no version running"),
                      ("Unknown", "NoVersion", "no version running to measure"))
    range_ = slo.window(window_seconds)
    selector = slo.deployment_selector(namespace, deployment, version)
    try:
        values = prometheus.query_all(slo.queries(selector, range_), now)
        budget: dict[str, Any] = {"period": slo.BUDGET_PERIOD}
        if slo.AVAILABILITY in objectives:
            long = prometheus.query_all({"requests": slo.requests_query(selector, slo.BUDGET_PERIOD),
                                         "errors": slo.errors_query(selector, slo.BUDGET_PERIOD),
                                         "hourRequests": slo.requests_query(selector, slo.BURN_WINDOW),
                                         "hourErrors": slo.errors_query(selector, slo.BURN_WINDOW)}, now)
            budget["remaining"] = slo.error_budget(objectives[slo.AVAILABILITY], long["requests"], long["errors"])
            hour_rate = (long["hourErrors"] or 0.0) / long["hourRequests"] if long["hourRequests"] else None
            budget["burnRate"] = slo.burn_rate(objectives[slo.AVAILABILITY], hour_rate)
    except PrometheusError as error:
        log.warning("SLO analysis of %s/%s %s is inconclusive: %s", namespace, deployment, version, error)
        return Result(slo.Verdict(slo.Outcome.inconclusive, message=str(error)),
                      ("Unknown", "PrometheusUnavailable", f"{error}; the rollout waits and nothing is rolled back "
                                                           "until it answers"))
    measured = {"version": version, "window": range_, **slo.measurement(values),
                "measuredAt": conditions.timestamp(now)}
    verdict = slo.evaluate(measured, objectives, min_requests)
    if verdict.passed:
        condition = ("True", "ObjectivesMet", f"{version}: {verdict.message}")
    elif verdict.failed:
        condition = ("False", "SLOBreach", f"{version}: {verdict.message}")
    else:
        condition = ("Unknown", "Inconclusive", f"{version}: {verdict.message}")
    status: dict[str, Any] = {"slo": measured}
    if len(budget) > 1:
        status["errorBudget"] = {k: v for k, v in budget.items() if v is not None}
    return Result(verdict, condition, status)


def usage(prometheus: Prometheus, agent: str, version: str, window: str, now: datetime) -> dict[str, Any] | None:
    """An AgentVersion's ``status.usage`` from every pod running it, or None when nothing was served."""
    selector = slo.version_selector(agent, version)
    values = prometheus.query_all({"requests": slo.requests_query(selector, window),
                                   "errors": slo.errors_query(selector, window),
                                   slo.P95: slo.quantile_query(0.95, selector, window)}, now)
    if not values["requests"]:
        return None
    measured = slo.measurement(values)
    result = {"requests": measured["requests"], "errorRate": measured.get(slo.ERROR_RATE, 0.0), "window": window}
    if measured.get(slo.P95) is not None:
        result["p95LatencyMs"] = measured[slo.P95]
    return result
