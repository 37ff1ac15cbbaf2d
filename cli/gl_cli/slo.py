"""`gl slo status`: whether an agent's deployments meet their service level objectives.

The figures are the operator's last measurement (Prometheus, over each deployment's analysis
window) as recorded in the AgentDeployments' status: read with the user's own credentials,
nothing else to reach.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gl_api import conditions
from gl_cli import kube
from gl_cli.app import Context, Debug, Kubeconfig, Namespace, Output, check_output, guarded, session
from gl_cli.output import emit, fail

commands = typer.Typer(no_args_is_help=True, help="Service level objectives of running agents.")


def _ms(value: Any) -> str | None:
    return None if value is None else f"{value:g}"


def _pct(value: Any, digits: int = 2) -> str | None:
    return None if value is None else f"{value * 100:.{digits}f}%"


def row(deployment: dict[str, Any]) -> dict[str, Any]:
    """One deployment's objectives, measurement, budget and last breach, flattened for a table."""
    from gl_api.models import ConditionStatus

    status = deployment.get("status") or {}
    measured = status.get("slo") or {}
    budget = status.get("errorBudget") or {}
    breach = status.get("lastBreach") or {}
    compliant = conditions.get_condition(status.get("conditions"), "SLOCompliant")
    return {
        "deployment": f"{deployment['metadata']['namespace']}/{deployment['metadata']['name']}",
        "version": status.get("stableVersion"), "phase": status.get("phase"),
        "compliant": compliant["status"] if compliant else ConditionStatus.unknown.value,
        "reason": compliant["reason"] if compliant else "NotMeasured",
        "message": compliant["message"] if compliant else "not measured yet: the operator measures a deployment "
                                                          "once it runs",
        "objectives": deployment["spec"].get("slo") or {},
        "window": measured.get("window"), "requests": measured.get("requests"),
        "p50Ms": _ms(measured.get("p50LatencyMs")), "p95Ms": _ms(measured.get("p95LatencyMs")),
        "p99Ms": _ms(measured.get("p99LatencyMs")), "errorRate": _pct(measured.get("errorRate")),
        "latency": "/".join(_ms(measured.get(k)) or "-" for k in ("p50LatencyMs", "p95LatencyMs", "p99LatencyMs"))
        if measured.get("p50LatencyMs") is not None else None,
        "budgetLeft": _pct(budget.get("remaining"), 1), "burnRate": budget.get("burnRate"),
        "lastBreach": f"{breach['version']} at {breach['at']}: {breach['message']}" if breach else None,
    }


@commands.command("status")
@guarded
def slo_status(agent_name: Annotated[str, typer.Option("--agent", help="agent name")],
               namespace: Namespace = None, output: Output = "table", kubeconfig: Kubeconfig = None,
               context: Context = None, debug: Debug = False) -> None:
    """Measured latency, error rate, error budget and the last breach of an agent's deployments.

    [bold]Example[/bold]: gl slo status --agent gl-cbam-calculator-v2
    """
    check_output(output)
    s = session(kubeconfig, context, namespace)
    # Deployments run in tenant namespaces, not the agent's: look everywhere, match the name in namespace/name.
    deployments = [d for d in kube.list_objects(s.api, kube.AGENT_DEPLOYMENT, namespace)
                   if d["spec"]["agent"].split("/", 1)[-1] == agent_name]
    if not deployments:
        fail(f"no AgentDeployment runs {agent_name}; SLOs are measured for deployed agents")
    emit([row(d) for d in deployments],
         [("Deployment", "deployment"), ("Version", "version"), ("Phase", "phase"), ("Compliant", "compliant"),
          ("Requests", "requests"), ("p50/p95/p99 ms", "latency"), ("Errors", "errorRate"),
          ("Budget left", "budgetLeft"), ("Last breach", "lastBreach")],
         output, title=f"SLOs of {agent_name}", kind="SloStatusList")
