"""`gl agent metrics`: an agent's requests, errors and latency.

With Prometheus (``--prometheus-url`` or ``$GL_PROMETHEUS_URL``) the figures are measured live
over the window, for every pod that ran each version; without it, they are the usage the operator
last recorded in each AgentVersion's status, as the mirror summarises it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Optional

import typer

from gl_api import kinds, semver, slo
from gl_cli import query_api
from gl_cli.app import Context, Debug, Kubeconfig, Namespace, Output, check_output, guarded, session
from gl_cli.output import emit, fail
from gl_kube import objects
from gl_kube.prometheus import Prometheus, PrometheusError

commands = typer.Typer()
WINDOW_PATTERN = r"^[0-9]+[smhdw]$"


def measured(prometheus: Prometheus, agent: str, version: str, window: str) -> dict[str, Any]:
    """Requests, errors, error rate and p50/p95/p99 of one version over ``window``, from Prometheus."""
    values = prometheus.query_all(slo.queries(slo.version_selector(agent, version), window))
    figures = slo.measurement(values)
    return {"requests": figures.get("requests", 0), "errors": int(round(values.get("errors") or 0)),
            "errorRate": figures.get(slo.ERROR_RATE), "p50LatencyMs": figures.get(slo.P50),
            "p95LatencyMs": figures.get(slo.P95), "p99LatencyMs": figures.get(slo.P99), "window": window}


@commands.command("metrics")
@guarded
def agent_metrics(reference: Annotated[str, typer.Argument(metavar="AGENT[@VERSION]")],
                  window: Annotated[str, typer.Option(help="window of the figures, e.g. 1h, 7d, 30d")] = "30d",
                  prometheus_url: Annotated[Optional[str], typer.Option(
                      "--prometheus-url", envvar="GL_PROMETHEUS_URL",
                      help="Prometheus scraping the agents (default: $GL_PROMETHEUS_URL; without it, the usage "
                           "the registry recorded)")] = None,
                  namespace: Namespace = None, output: Output = "table", kubeconfig: Kubeconfig = None,
                  context: Context = None, debug: Debug = False) -> None:
    """Requests, errors and latency of an agent's versions.

    [bold]Example[/bold]: gl agent metrics gl-cbam-calculator-v2@2.3.1 --window 30d -n climate-team
    """
    check_output(output)
    if not re.match(WINDOW_PATTERN, window):
        fail(f"--window {window!r}: give a number and a unit, e.g. 90m, 24h, 30d", 2)
    agent_name, _, version = reference.partition("@")
    if version:
        semver.Version.parse(version)
    s = session(kubeconfig, context, namespace)
    columns = [("Version", "ref"), ("State", "state"), ("Requests", "requests"), ("Errors", "errors"),
               ("Error Rate", "errorRate"), ("p50 ms", "p50LatencyMs"), ("p95 ms", "p95LatencyMs"),
               ("p99 ms", "p99LatencyMs"), ("Window", "window")]
    if not prometheus_url:
        result = query_api.query(s.api, f"namespaces/{s.namespace}/usagesummaries", {"agent": agent_name})
        rows = [{"ref": f"{i['agent']}@{i['version']}", "state": i["state"], **i["usage"]}
                for i in result["items"] if not version or i["version"] == version]
        emit(rows, columns, output, title=f"recorded usage of {agent_name} (no Prometheus given: "
                                          f"--prometheus-url for the last {window})", kind="UsageSummaryList")
        return
    versions = [v for v in objects.list_objects(s.api, kinds.AGENT_VERSION, s.namespace)
                if v["spec"]["agent"] == agent_name and (not version or v["spec"]["version"] == version)]
    if not versions:
        fail(f"{reference} is not published in {s.namespace}; see `gl agent get {agent_name}`")
    versions.sort(key=lambda v: semver.Version.parse(v["spec"]["version"]), reverse=True)
    prometheus = Prometheus(prometheus_url, timeout=15)
    rows = []
    for v in versions:
        try:
            figures = measured(prometheus, f"{s.namespace}/{agent_name}", v["spec"]["version"], window)
        except PrometheusError as error:
            fail(str(error))
        rows.append({"ref": f"{agent_name}@{v['spec']['version']}", "state": (v.get("status") or {}).get("state"),
                     **figures})
    emit(rows, columns, output, title=f"{agent_name} over the last {window} (Prometheus)", kind="AgentMetricsList")
