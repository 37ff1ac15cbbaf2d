"""`gl audit query` and `gl audit verify`: the mirror's tamper-evident audit trail."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from gl_api import audit_events
from gl_cli import query_api
from gl_cli.app import Context, Debug, Kubeconfig, Output, check_output, guarded, session
from gl_cli.output import emit, emit_object, escape, fail, out

commands = typer.Typer(no_args_is_help=True, help="The registry's audit trail.")


@commands.command("query")
@guarded
def audit_query(tenant_name: Annotated[Optional[str], typer.Option("--tenant")] = None,
                event_type: Annotated[Optional[str], typer.Option(
                    "--event-type", help=f"one of: {', '.join(audit_events.EVENT_TYPES)} (docs/cli.md)")] = None,
                operation: Annotated[Optional[str], typer.Option(
                    help="the row's operation as recorded: create, update, delete, state_change, approval, "
                         "admission_denial, rollback, or a request's verb (get, list, patch, ...)")] = None,
                actor: Annotated[Optional[str], typer.Option()] = None,
                name: Annotated[Optional[str], typer.Option("--object", help="object name")] = None,
                start_time: Annotated[Optional[str], typer.Option(
                    "--start-time", help="from this date (2025-11-01, a UTC day) or RFC 3339 time "
                                         "(2025-11-01T09:30:00Z)")] = None,
                end_time: Annotated[Optional[str], typer.Option(
                    "--end-time", help="before this RFC 3339 time, or through this date")] = None,
                limit: Annotated[int, typer.Option()] = 100, output: Output = "table",
                namespace: Annotated[Optional[str], typer.Option(
                    "--namespace", "-n", help="only this namespace's rows (what a tenant's auditor may read); "
                                              "without it, the whole trail (a cluster-wide audit-reader)")] = None,
                kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """Query the audit trail, newest first.

    [bold]Examples[/bold]: gl audit query --tenant customer-abc-123 --event-type agent.promoted --start-time 2025-11-01;
    gl audit query -n customer-abc-123-prod --event-type policy.denied
    """
    check_output(output)
    try:
        if event_type:
            audit_events.check(event_type)
        since = audit_events.parse_time(start_time, "--start-time") if start_time else None
        until = audit_events.parse_time(end_time, "--end-time", end=True) if end_time else None
    except ValueError as error:
        fail(str(error), 2)
    s = session(kubeconfig, context, None)
    path = f"namespaces/{namespace}/auditevents" if namespace else "auditevents"
    result = query_api.query(s.api, path, {"tenant": tenant_name, "eventType": event_type, "operation": operation,
                                           "actor": actor, "name": name,
                                           "startTime": since.isoformat() if since else None,
                                           "endTime": until.isoformat() if until else None, "limit": limit})
    if output != "table":  # scripts get every field of each event: object, change, eventType, auditID
        emit(result["items"], [], output, kind="AuditEventList")
        return
    rows = [{"at": i["at"], "actor": i["actor"], "eventType": i.get("eventType"), "operation": i["operation"],
             "object": f"{i['object']['kind']}/{i['object']['name']}", "decision": i["decision"],
             "reason": i["reason"]} for i in result["items"]]
    emit(rows, [("Time", "at"), ("Actor", "actor"), ("Event", "eventType"), ("Operation", "operation"),
                ("Object", "object"), ("Decision", "decision"), ("Reason", "reason")], output, kind="AuditEventList")


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
