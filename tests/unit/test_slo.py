"""SLO objectives, PromQL and judging (gl_api.slo)."""

import math
import re

import pytest

from gl_api import slo


def test_certified_gets_every_default_and_the_spec_wins():
    assert slo.objectives(None, "certified") == {"p50LatencyMs": 100, "p95LatencyMs": 500, "p99LatencyMs": 2000,
                                                 "errorRate": 0.005, "availability": 0.9999}
    merged = slo.objectives({"p95LatencyMs": 300, "errorRate": 0.01}, "certified")
    assert merged["p95LatencyMs"] == 300 and merged["errorRate"] == 0.01 and merged["p99LatencyMs"] == 2000


def test_deprecated_is_judged_as_certified():
    assert slo.objectives(None, "deprecated") == slo.objectives(None, "certified")


def test_experimental_gets_error_rate_and_p95_defaults_only():
    assert slo.objectives(None, "experimental") == {"p95LatencyMs": 500, "errorRate": 0.005}
    assert slo.objectives({"p99LatencyMs": 900}, "draft") == {"p95LatencyMs": 500, "errorRate": 0.005,
                                                              "p99LatencyMs": 900}


def test_unknown_state_gets_only_the_spec():
    assert slo.objectives({"p50LatencyMs": 80}, None) == {"p50LatencyMs": 80}


def test_promql_for_one_deployment_and_version():
    sel = slo.deployment_selector("team", "cbam", "2.4.0")
    assert sel == '{agentdeployment="cbam",namespace="team",version="2.4.0"}'
    q = slo.queries(sel, slo.window(60))
    assert q["requests"] == f"sum(increase(greenlang_registry_agent_requests_total{sel}[60s]))"
    assert q["errors"] == f"sum(increase(greenlang_registry_agent_request_errors_total{sel}[60s]))"
    assert q["p95LatencyMs"] == ("histogram_quantile(0.95, sum by (le) "
                                 f"(rate(greenlang_registry_agent_request_duration_seconds_bucket{sel}[60s])))")


def test_label_values_are_quoted():
    assert slo.selector(agent='a"b\\c') == '{agent="a\\"b\\\\c"}'


def test_measurement_converts_seconds_and_rates():
    m = slo.measurement({"requests": 1000.4, "errors": 21, "p50LatencyMs": 0.05, "p95LatencyMs": 0.742,
                         "p99LatencyMs": math.nan})
    assert m == {"requests": 1000, "errorRate": 0.020992, "availability": 0.979008, "p50LatencyMs": 50.0,
                 "p95LatencyMs": 742.0}


def test_usage_reads_as_a_user_expects_even_when_nothing_was_measured():
    assert slo.usage({"requests": 12.0, "errors": 0.0, "p50LatencyMs": 0.004}, "1h") == {
        "requests": 12, "errors": 0, "errorRate": 0.0, "p50LatencyMs": 4.0, "p95LatencyMs": None,
        "p99LatencyMs": None, "window": "1h"}
    assert slo.usage({}, "30d")["requests"] == 0


@pytest.mark.parametrize("window", ["30d", "90m", "1h", "7w"])
def test_windows_users_type_are_accepted(window):
    assert re.fullmatch(slo.WINDOW_PATTERN, window)


@pytest.mark.parametrize("window", ["", "30", "1h]) or up[1h", "1h\n", "-1d", "1y"])
def test_anything_but_a_plain_window_is_refused_before_it_reaches_promql(window):
    assert not re.fullmatch(slo.WINDOW_PATTERN, window)


def test_evaluate_names_every_failure_with_the_measured_value():
    measured = {"requests": 500, "p95LatencyMs": 742, "p50LatencyMs": 90, "errorRate": 0.021}
    verdict = slo.evaluate(measured, slo.objectives(None, "certified"), 20)
    assert verdict.outcome is slo.Outcome.failed
    assert verdict.failures == ["p95 742 ms > 500 ms", "error rate 2.10% > 0.50%"]
    assert "500 requests" in verdict.message


def test_evaluate_passes_and_ignores_availability_over_the_window():
    verdict = slo.evaluate({"requests": 50, "p95LatencyMs": 120, "errorRate": 0.001, "availability": 0.999},
                           slo.objectives(None, "certified"), 20)
    assert verdict.passed


def test_too_few_requests_is_inconclusive():
    verdict = slo.evaluate({"requests": 3, "p95LatencyMs": 9000}, {"p95LatencyMs": 500}, 20)
    assert verdict.outcome is slo.Outcome.inconclusive
    assert "3 requests" in verdict.message
    assert slo.evaluate(None, {}, 0).outcome is slo.Outcome.inconclusive


def test_error_budget_and_burn_rate():
    assert slo.error_budget(0.999, 10000, 5) == 0.5
    assert slo.error_budget(0.999, 10000, 20) == -1.0
    assert slo.error_budget(0.999, 0, 0) == 1.0
    assert slo.error_budget(0.999, None, None) is None
    assert slo.burn_rate(0.999, 0.0144) == 14.4
    assert slo.burn_rate(1.0, 0.1) is None
