"""`gl tenant list` and `gl tenant get`: the registry's tenants, one TenantPolicy each."""

from __future__ import annotations

from typing import Any

import typer

from gl_api import conditions
from gl_cli import kube
from gl_cli.app import Context, Debug, Kubeconfig, Output, check_output, guarded, session
from gl_cli.output import emit, emit_object, fail

commands = typer.Typer(no_args_is_help=True, help="Tenants (TenantPolicies).")


def _tenant_row(t: dict[str, Any]) -> dict[str, Any]:
    status = t.get("status") or {}
    ready = conditions.get_condition(status.get("conditions"), "Ready") or {}
    return {"name": t["metadata"]["name"], "displayName": t["spec"].get("displayName"),
            "environments": [f"{e['name']}={e['namespace']}" for e in t["spec"].get("environments") or []],
            "region": (t["spec"].get("dataResidency") or {}).get("region"), "ready": ready.get("status"),
            "members": len(t["spec"].get("members") or [])}


@commands.command("list")
@guarded
def tenant_list(output: Output = "table", kubeconfig: Kubeconfig = None, context: Context = None,
                debug: Debug = False) -> None:
    """List tenants. [bold]Example[/bold]: gl tenant list -o yaml"""
    check_output(output)
    s = session(kubeconfig, context, None)
    emit([_tenant_row(t) for t in kube.list_objects(s.api, kube.TENANT_POLICY)],
         [("Name", "name"), ("Display Name", "displayName"), ("Environments", "environments"), ("Region", "region"),
          ("Members", "members"), ("Ready", "ready")], output, kind="TenantList")


@commands.command("get")
@guarded
def tenant_get(name: str, output: Output = "yaml", kubeconfig: Kubeconfig = None, context: Context = None,
               debug: Debug = False) -> None:
    """Show one tenant. [bold]Example[/bold]: gl tenant get customer-abc-123"""
    s = session(kubeconfig, context, None)
    found = kube.get(s.api, kube.TENANT_POLICY, None, name)
    if found is None:
        fail(f"TenantPolicy {name} does not exist; see `gl tenant list`")
    emit_object(found, "json" if output == "json" else "yaml")
