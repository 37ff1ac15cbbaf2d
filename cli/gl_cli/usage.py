"""`gl agent metrics`: an agent's requests, errors and latency.

Asked of the registry's query API (through the Kubernetes API server, with the user's own
credentials), which answers only for the versions the user may see. Where the registry's mirror
has a Prometheus, the figures are measured live over the window, summed over every pod that ran
each version; otherwise they are the usage the operator last recorded in each version's status.
Users never query Prometheus themselves: it has no authentication and would show every tenant.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from gl_api import semver, slo
from gl_cli import query_api
from gl_cli.app import Context, Debug, Kubeconfig, Namespace, Output, check_output, guarded, session
from gl_cli.output import emit, fail

commands = typer.Typer()


@commands.command("metrics")
@guarded
def agent_metrics(reference: Annotated[str, typer.Argument(metavar="AGENT[@VERSION]")],
                  window: Annotated[str, typer.Option(help="window of the figures, e.g. 1h, 7d, 30d")] = "30d",
                  namespace: Namespace = None, output: Output = "table", kubeconfig: Kubeconfig = None,
                  context: Context = None, debug: Debug = False) -> None:
    """Requests, errors and latency of an agent's versions.

    [bold]Example[/bold]: gl agent metrics gl-cbam-calculator-v2@2.3.1 --window 30d -n climate-team
    """
    check_output(output)
    if not re.fullmatch(slo.WINDOW_PATTERN, window):
        fail(f"--window {window!r}: give a number and a unit, e.g. 90m, 24h, 30d", 2)
    agent_name, _, version = reference.partition("@")
    if version:
        semver.Version.parse(version)
    s = session(kubeconfig, context, namespace)
    result = query_api.query(s.api, f"namespaces/{s.namespace}/usagesummaries",
                             {"agent": agent_name, "window": window})
    items = [i for i in result["items"] if not version or i["version"] == version]
    if not items:
        fail(f"{reference} is not published in {s.namespace} (or not visible to you); "
             f"see `gl agent get {agent_name} -n {s.namespace}`")
    items.sort(key=lambda i: semver.Version.parse(i["version"]), reverse=True)
    live = all("measured" in i for i in items)
    rows = [{"ref": f"{i['agent']}@{i['version']}", "state": i["state"], "source": "prometheus" if live else "recorded",
             **(i["measured"] if live else i["usage"])} for i in items]
    columns = [("Version", "ref"), ("State", "state"), ("Requests", "requests"), ("Errors", "errors"),
               ("Error Rate", "errorRate"), ("p50 ms", "p50LatencyMs"), ("p95 ms", "p95LatencyMs"),
               ("p99 ms", "p99LatencyMs"), ("Window", "window")]
    title = (f"{agent_name} over the last {window} (measured by Prometheus)" if live else
             f"recorded usage of {agent_name} (the registry has no Prometheus to measure the last {window})")
    emit(rows, columns, output, title=title, kind="AgentMetricsList")
