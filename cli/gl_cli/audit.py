"""`gl audit query` and `gl audit verify`: the mirror's tamper-evident audit trail."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from gl_cli import query_api
from gl_cli.app import Context, Debug, Kubeconfig, Output, check_output, guarded, session
from gl_cli.output import emit, emit_object, fail, out

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
                namespace: Annotated[Optional[str], typer.Option(
                    "--namespace", "-n", help="only this namespace's rows (what a tenant's auditor may read); "
                                              "without it, the whole trail (a cluster-wide audit-reader)")] = None,
                kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """Query the audit trail, newest first.

    [bold]Examples[/bold]: gl audit query --actor alice --event-type approval;
    gl audit query -n customer-abc-123-prod --event-type admission_denial
    """
    check_output(output)
    s = session(kubeconfig, context, None)
    path = f"namespaces/{namespace}/auditevents" if namespace else "auditevents"
    result = query_api.query(s.api, path, {"tenant": tenant_name, "operation": event_type, "actor": actor,
                                                    "name": name, "startTime": start_time, "endTime": end_time,
                                                    "limit": limit})
    rows = [{"id": i["id"], "at": i["at"], "actor": i["actor"], "tenant": i["tenant"], "operation": i["operation"],
             "object": f"{i['object']['kind']}/{i['object']['name']}", "decision": i["decision"],
             "reason": i["reason"]} for i in result["items"]]
    emit(rows, [("Time", "at"), ("Actor", "actor"), ("Operation", "operation"), ("Object", "object"),
                ("Decision", "decision"), ("Reason", "reason")], output, title="audit trail", kind="AuditEventList")


@commands.command("verify")
@guarded
def audit_verify(output: Output = "table", kubeconfig: Kubeconfig = None, context: Context = None,
                 debug: Debug = False) -> None:
    """Check every audit row's hash and link, and the newest row against the anchor kept outside the
    database; exit 1 naming the first bad row when anything was changed or removed."""
    check_output(output)
    s = session(kubeconfig, context, None)
    result = query_api.query(s.api, "auditverifications", {})
    if output != "table":
        emit_object(result, output)
        if not result["intact"]:
            raise typer.Exit(1)
        return
    for problem in result["problems"]:
        where = f"audit row {problem['id']}: " if problem["id"] is not None else ""
        out.print(f"[red]✗[/red] {where}{escape(problem['problem'])}", soft_wrap=True)
    if result["problems"]:
        first = f"first bad row {result['firstBadRow']}; " if result["firstBadRow"] is not None else ""
        fail(f"audit trail NOT intact: {first}{len(result['problems'])} problems in {result['rows']} rows")
    out.print(f"[green]✓[/green] audit trail intact: {result['rows']} rows, every hash and link verified; "
              f"{escape(_anchored(result))}", soft_wrap=True)


def _anchored(result: dict[str, Any]) -> str:
    found, head = result["anchor"], result["head"]
    if found is None:
        return "the trail is empty, nothing to anchor yet"
    said = (f"head row {head['id']} anchored at {found['time']} in {result['anchoredIn']}"
            if found["lastId"] == head["id"] else
            f"head row {head['id']}; row {found['lastId']} anchored at {found['time']} in {result['anchoredIn']}, "
            "newer rows at the next anchor")
    if result.get("expiredThrough"):
        said += f"; rows up to {result['expiredThrough']} expired after the retention"
    return said
