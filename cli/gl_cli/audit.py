"""`gl audit query` and `gl audit verify`: the mirror's tamper-evident audit trail."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape

from gl_cli import query_api
from gl_cli.app import Context, Debug, Kubeconfig, Output, check_output, guarded, session
from gl_cli.output import emit, fail, out

commands = typer.Typer(no_args_is_help=True, help="The registry's audit trail.")


@commands.command("query")
@guarded
def audit_query(tenant_name: Annotated[Optional[str], typer.Option("--tenant")] = None,
                event_type: Annotated[Optional[str], typer.Option("--event-type", help="create, update, delete, "
                                                                  "state_change, approval, admission_denial")] = None,
                actor: Annotated[Optional[str], typer.Option()] = None,
                name: Annotated[Optional[str], typer.Option("--object", help="object name")] = None,
                start_time: Annotated[Optional[str], typer.Option("--start-time", help="ISO time")] = None,
                end_time: Annotated[Optional[str], typer.Option("--end-time", help="ISO time")] = None,
                limit: Annotated[int, typer.Option()] = 100, output: Output = "table",
                kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """Query the audit trail, newest first. [bold]Example[/bold]: gl audit query --actor alice --event-type approval"""
    check_output(output)
    s = session(kubeconfig, context, None)
    result = query_api.query(s.api, "auditevents", {"tenant": tenant_name, "operation": event_type, "actor": actor,
                                                    "name": name, "startTime": start_time, "endTime": end_time,
                                                    "limit": limit})
    rows = [{"id": i["id"], "at": i["at"], "actor": i["actor"], "tenant": i["tenant"], "operation": i["operation"],
             "object": f"{i['object']['kind']}/{i['object']['name']}", "decision": i["decision"],
             "reason": i["reason"]} for i in result["items"]]
    emit(rows, [("Time", "at"), ("Actor", "actor"), ("Operation", "operation"), ("Object", "object"),
                ("Decision", "decision"), ("Reason", "reason")], output, title="audit trail", kind="AuditEventList")


@commands.command("verify")
@guarded
def audit_verify(kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """Check every audit row's hash and link; exit 1 when anything was changed or removed."""
    s = session(kubeconfig, context, None)
    result = query_api.query(s.api, "auditverifications", {})
    if result["problems"]:
        for problem in result["problems"]:
            out.print(f"[red]✗[/red] audit row {problem['id']}: {escape(problem['problem'])}")
        fail(f"audit trail NOT intact: {len(result['problems'])} of {result['rows']} rows fail verification")
    out.print(f"[green]✓[/green] audit trail intact: {result['rows']} rows, every hash and link verified")
