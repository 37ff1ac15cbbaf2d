"""The `gl` command (also `kubectl gl`): registry verbs on top of the Kubernetes API.

It reads kubeconfig like kubectl, never writes status and never bypasses admission.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gl_api import naming
from gl_cli import agent_check
from gl_cli.kubeconfig import NoCluster, connect

app = typer.Typer(name="gl", rich_markup_mode="rich", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="GreenLang Agent Registry: publish, promote and govern agents on Kubernetes.")
agent = typer.Typer(no_args_is_help=True, help="Agents and their versions.")
app.add_typer(agent, name="agent")

out = Console()
err = Console(stderr=True)

Kubeconfig = Annotated[Optional[str], typer.Option("--kubeconfig", envvar="KUBECONFIG",
                                                   help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")]
Context = Annotated[Optional[str], typer.Option("--context", help="kubeconfig context (default: current)")]
Namespace = Annotated[Optional[str], typer.Option("-n", "--namespace",
                                                  help="namespace of the Agent (default: the context's)")]


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


@agent.command("check")
def check(
    reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION", help="e.g. gl-cbam-calculator-v2@2.4.0")],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="TenantPolicy name")],
    environment: Annotated[str, typer.Option("--environment", "-e", help="dev, staging or production")],
    namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None,
) -> None:
    """Would AGENT@VERSION be admitted in a tenant environment? Asks the registry's policies, creates nothing.

    [bold]Example[/bold]: gl agent check gl-cbam-calculator-v2@2.4.0 --tenant customer-abc-123 --environment production
    """
    try:
        ref = naming.AgentVersionRef.parse(reference)
        connection = connect(kubeconfig, context, namespace)
        result = agent_check.check(connection.api, connection.namespace, ref.agent, ref.version, tenant, environment)
    except (naming.InvalidReference, agent_check.CheckError, NoCluster) as error:
        fail(str(error), 2)
        return
    table = Table(title=f"{ref} in {tenant}/{environment} (namespace {result.namespace})", show_lines=False)
    table.add_column("Verdict")
    table.add_column("Policy")
    for message in result.denials:
        table.add_row("[red]✗ deny[/red]", escape(message))
    for message in result.warnings:
        table.add_row("[yellow]! warn[/yellow]", escape(message))
    if result.allowed:
        table.add_row("[green]✓ allow[/green]", "tenant environment, allow and deny lists, version state, quotas "
                                                 "and data residency all pass")
    out.print(table)
    raise typer.Exit(0 if result.allowed else 1)


def main() -> None:
    app(prog_name="kubectl gl" if sys.argv[0].endswith("kubectl-gl") else "gl")
