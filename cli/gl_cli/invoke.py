"""`gl agent invoke`: call a deployed agent's capability, through the API server's service proxy.

The request goes to the AgentDeployment's Service with the user's own credentials (RBAC
``services/proxy``), so it works from anywhere kubectl works, without a port-forward or an
ingress, and the Service spreads it over the ready pods as a client in the cluster would see.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from gl_cli import kube
from gl_cli.app import Context, Debug, Kubeconfig, Namespace, guarded, session
from gl_cli.output import fail

commands = typer.Typer()


def invoke(api: kube.Api, namespace: str, deployment: str, capability: str,
           body: dict[str, Any]) -> tuple[int, Any]:
    """POST the input to ``/v1/capabilities/<capability>:invoke`` of the deployment's Service: (status, JSON)."""
    path = (f"/api/v1/namespaces/{namespace}/services/{deployment}:http/proxy/v1/capabilities/"
            f"{capability}:invoke")
    try:
        response = api.request("POST", path, body=body)
    except kube.ApiError as error:
        try:
            return error.status, json.loads(error.body or "{}")
        except ValueError:
            return error.status, {"error": (error.body or error.reason or "").strip()}
    return response.status, response.json()


@commands.command("invoke")
@guarded
def agent_invoke(
    deployment: Annotated[str, typer.Argument(help="the AgentDeployment to call")],
    capability: Annotated[str, typer.Argument(help="the capability, e.g. calculate-embedded-emissions")],
    data: Annotated[Optional[str], typer.Option("-d", "--data", help="the input as JSON; '-' reads stdin")] = None,
    file: Annotated[Optional[Path], typer.Option("-f", "--file", help="the input from a JSON or YAML file")] = None,
    namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False,
) -> None:
    """Call a capability of a deployed agent and print its JSON answer (exit 1 unless it succeeded).

    [bold]Example[/bold]: gl agent invoke cbam-calculator calculate-embedded-emissions -n customer-abc-123-dev
    -d '{"cnCode": "72081000", "quantityTonnes": 12.5, "countryOfOrigin": "CN"}'
    """
    if (data is None) == (file is None):
        fail("give the input with exactly one of --data JSON or --file PATH", 2)
    try:
        if file is not None:
            import yaml

            body = yaml.safe_load(file.read_text())
        else:
            body = json.loads(sys.stdin.read() if data == "-" else data or "")
    except (OSError, ValueError) as error:
        fail(f"the input is not valid JSON/YAML: {error}", 2)
    s = session(kubeconfig, context, namespace)
    if kube.get(s.api, kube.AGENT_DEPLOYMENT, s.namespace, deployment) is None:
        fail(f"no AgentDeployment {deployment} in {s.namespace}; see `kubectl get glad -n {s.namespace}`")
    status, answer = invoke(s.api, s.namespace, deployment, capability, body)
    typer.echo(json.dumps(answer, indent=2))
    if status >= 300:
        hint = " (no ready pod behind it yet? see `kubectl get glad`)" if status == 503 else ""
        fail(f"{capability} answered {status}{hint}")
