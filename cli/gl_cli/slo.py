"""`gl slo status`: whether an agent's deployments meet their service level objectives."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gl_api import conditions, kinds
from gl_api.models import ConditionStatus
from gl_cli.app import Context, Debug, Kubeconfig, Namespace, guarded, session
from gl_cli.output import emit, fail
from gl_kube import objects

commands = typer.Typer(no_args_is_help=True, help="Service level objectives of running agents.")


@commands.command("status")
@guarded
def slo_status(agent_name: Annotated[str, typer.Option("--agent", help="agent name")],
               namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None,
               debug: Debug = False) -> None:
    """SLO compliance of an agent's deployments. [bold]Example[/bold]: gl slo status --agent gl-cbam-calculator-v2"""
    s = session(kubeconfig, context, namespace)
    # Deployments run in tenant namespaces, not the agent's: look everywhere, match the name in namespace/name.
    deployments = [d for d in objects.list_objects(s.api, kinds.AGENT_DEPLOYMENT)
                   if d["spec"]["agent"].split("/", 1)[-1] == agent_name]
    if not deployments:
        fail(f"no AgentDeployment runs {agent_name}; SLOs are measured for deployed agents")
    rows = []
    for d in deployments:
        compliant = conditions.get_condition((d.get("status") or {}).get("conditions"), "SLOCompliant")
        rows.append({"deployment": f"{d['metadata']['namespace']}/{d['metadata']['name']}",
                     "slo": json.dumps(d["spec"].get("slo") or {}),
                     "compliant": compliant["status"] if compliant else ConditionStatus.unknown.value,
                     "message": compliant["message"] if compliant else
                     "not measured yet: the runtime reports SLOCompliant once it runs the agent"})
    emit(rows, [("Deployment", "deployment"), ("SLO", "slo"), ("Compliant", "compliant"), ("Message", "message")],
         "table", title=f"SLOs of {agent_name}")
