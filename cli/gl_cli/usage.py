"""`gl agent metrics`: an agent's usage, error rate and latency, as the mirror summarises them."""

from __future__ import annotations

from typing import Annotated

import typer

from gl_cli import query_api
from gl_cli.app import Context, Debug, Kubeconfig, Namespace, Output, check_output, guarded, session
from gl_cli.output import emit

commands = typer.Typer()


@commands.command("metrics")
@guarded
def agent_metrics(reference: Annotated[str, typer.Argument(metavar="AGENT[@VERSION]")],
                  window: Annotated[str, typer.Option(help="window of the figures, e.g. 30d")] = "30d",
                  namespace: Namespace = None, output: Output = "table", kubeconfig: Kubeconfig = None,
                  context: Context = None, debug: Debug = False) -> None:
    """Usage, error rate and latency from the mirror. [bold]Example[/bold]: gl agent metrics gl-cbam-calculator-v2 --window 30d"""
    check_output(output)
    agent_name, _, version = reference.partition("@")
    s = session(kubeconfig, context, namespace)
    result = query_api.query(s.api, f"namespaces/{s.namespace}/usagesummaries", {"agent": agent_name})
    rows = [{"ref": f"{i['agent']}@{i['version']}", "state": i["state"], "requests": i["usage"].get("requests"),
             "errorRate": i["usage"].get("errorRate"), "p95LatencyMs": i["usage"].get("p95LatencyMs"),
             "window": i["usage"].get("window")} for i in result["items"] if not version or i["version"] == version]
    emit(rows, [("Version", "ref"), ("State", "state"), ("Requests", "requests"), ("Error Rate", "errorRate"),
                ("p95 ms", "p95LatencyMs"), ("Window", "window")], output, title=f"usage (requested window {window})",
         kind="UsageSummaryList")
