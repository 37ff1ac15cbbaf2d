"""`gl agent promote`, `approve`, `promotion-status`, `deprecate` and `rollback`: lifecycle changes as Promotions.

The CLI only asks: it creates Promotions and adds approvals in the user's own name; the
operator checks and decides, and the API server checks who asked and who approved.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from gl_api import kinds, labels, naming, semver
from gl_api.lifecycle import State
from gl_api.models import Approval, DeprecationRequest, FastTrack, PromotionPhase, PromotionSpec
from gl_cli.app import Context, Debug, Kubeconfig, Namespace, guarded, resource, session, state_of
from gl_cli.output import err, fail, out
from gl_kube import objects
from gl_kube.client import Connection

commands = typer.Typer()

# Where `promote --wait` stops waiting: decided, or waiting for a person.
SETTLED = (PromotionPhase.succeeded, PromotionPhase.rejected, PromotionPhase.failed, PromotionPhase.awaiting_approval)
REFUSED = (PromotionPhase.rejected, PromotionPhase.failed)


def phase_of(promotion: dict[str, Any]) -> PromotionPhase:
    return PromotionPhase((promotion.get("status") or {}).get("phase") or PromotionPhase.pending)


def _promotion(s: Connection, ref: naming.AgentVersionRef, spec: PromotionSpec) -> dict[str, Any]:
    """Create the Promotion, named after the version, the target and the time, with its requester stamped."""
    me = objects.whoami(s.api)["username"]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    name = f"{ref.object_name}-to-{State(spec.target_state).value}-{stamp}"[:253]
    body = resource(kinds.PROMOTION, name, s.namespace, spec, annotations={labels.CREATED_BY: me})
    return objects.create(s.api, kinds.PROMOTION, s.namespace, body)


def _wait_promotion(s: Connection, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    promotion: dict[str, Any] = {}
    while time.monotonic() < deadline:
        promotion = objects.get(s.api, kinds.PROMOTION, s.namespace, name) or {}
        if phase_of(promotion) in SETTLED:
            break
        time.sleep(0.5)
    return promotion


def _print_checklist(promotion: dict[str, Any]) -> None:
    status = promotion.get("status") or {}
    table = Table(title=f"{promotion['spec']['agentVersion']} -> {promotion['spec']['targetState']}: "
                        f"{phase_of(promotion).value} ({promotion['metadata']['name']})")
    table.add_column("")
    table.add_column("Check")
    table.add_column("Message")
    for check in status.get("checks") or []:
        table.add_row("[green]✓[/green]" if check["passed"] else "[red]✗[/red]", check["name"],
                      escape(check.get("message") or ""))
    for approval in promotion["spec"].get("approvals") or []:
        table.add_row("[green]✓[/green]", "approved by", escape(f"{approval['user']} {approval.get('at') or ''}"))
    out.print(table)
    missing = [c["name"] for c in status.get("checks") or [] if not c["passed"]]
    if missing:
        err.print(f"missing: {', '.join(missing)}")


@commands.command("promote")
@guarded
def agent_promote(reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION")],
                  to: Annotated[str, typer.Option("--to", help="experimental, certified, deprecated, ...")],
                  reason: Annotated[Optional[str], typer.Option(help="why; recorded in the history")] = None,
                  fast_track: Annotated[bool, typer.Option("--fast-track", help="critical patch")] = False,
                  justification: Annotated[Optional[str], typer.Option(help="fast track: why it cannot wait")] = None,
                  incident: Annotated[Optional[str], typer.Option(help="fast track: incident id")] = None,
                  wait: Annotated[bool, typer.Option("--wait", help="wait for a decision and show it")] = False,
                  namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None,
                  debug: Debug = False) -> None:
    """Ask for a lifecycle change. [bold]Example[/bold]: gl agent promote gl-cbam-calculator-v2@2.4.0 --to certified --wait"""
    ref = naming.AgentVersionRef.parse(reference)
    urgent = None
    if fast_track:
        if not (justification and incident):
            fail("--fast-track needs --justification and --incident")
        urgent = FastTrack(justification=justification, incident=incident)
    spec = PromotionSpec(agent_version=str(ref), target_state=to, reason=reason, fast_track=urgent)
    s = session(kubeconfig, context, namespace)
    name = _promotion(s, ref, spec)["metadata"]["name"]
    typer.echo(name)
    if wait:
        promotion = _wait_promotion(s, name, 60)
        _print_checklist(promotion)
        if phase_of(promotion) in REFUSED:
            raise typer.Exit(1)


@commands.command("approve")
@guarded
def agent_approve(promotion: Annotated[str, typer.Argument(help="the Promotion's name")],
                  comment: Annotated[Optional[str], typer.Option()] = None, namespace: Namespace = None,
                  kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """Approve a Promotion in your own name. [bold]Example[/bold]: gl agent approve gl-cbam-calculator-v2-2.4.0-to-certified-20261126"""
    s = session(kubeconfig, context, namespace)
    current = objects.get(s.api, kinds.PROMOTION, s.namespace, promotion)
    if current is None:
        fail(f"Promotion {promotion} does not exist in {s.namespace}; see `kubectl get promotions`")
    me = objects.whoami(s.api)["username"]
    entry = Approval(user=me, comment=comment).to_k8s()
    # Append with a JSON patch: approvals are add-only, and a merge patch would replace the list.
    operation = ({"op": "add", "path": "/spec/approvals/-", "value": entry} if current["spec"].get("approvals")
                 else {"op": "add", "path": "/spec/approvals", "value": [entry]})
    objects.patch_json(s.api, kinds.PROMOTION, s.namespace, promotion, [operation])
    typer.echo(f"approved {promotion} as {me}")


@commands.command("promotion-status")
@guarded
def agent_promotion_status(reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION|PROMOTION")],
                           namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None,
                           debug: Debug = False) -> None:
    """Each check with its message, approvals and what is missing. [bold]Example[/bold]: gl agent promotion-status gl-cbam-calculator-v2@2.4.0"""
    s = session(kubeconfig, context, namespace)
    if "@" in reference:
        ref = naming.AgentVersionRef.parse(reference)
        found = [p for p in objects.list_objects(s.api, kinds.PROMOTION, s.namespace)
                 if p["spec"]["agentVersion"] == str(ref)]
        if not found:
            fail(f"no Promotion for {ref} in {s.namespace}; ask for one with `gl agent promote {ref} --to STATE`")
        promotion = max(found, key=lambda p: p["metadata"]["creationTimestamp"])
    else:
        named = objects.get(s.api, kinds.PROMOTION, s.namespace, reference)
        if named is None:
            fail(f"Promotion {reference} does not exist in {s.namespace}")
        promotion = named
    _print_checklist(promotion)


@commands.command("deprecate")
@guarded
def agent_deprecate(reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION")],
                    replacement: Annotated[str, typer.Option(help="certified version that replaces it")],
                    sunset: Annotated[Optional[str], typer.Option(help="retirement date, e.g. 2027-03-01 "
                                                                       "(default: in 90 days)")] = None,
                    reason: Annotated[Optional[str], typer.Option()] = None, namespace: Namespace = None,
                    kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """Deprecate a version in favour of a certified one. [bold]Example[/bold]: gl agent deprecate gl-cbam-calculator-v2@2.3.1 --replacement 2.4.0"""
    ref = naming.AgentVersionRef.parse(reference)
    semver.Version.parse(replacement)
    sunset_at = None
    if sunset:
        try:
            moment = datetime.fromisoformat(sunset.replace("Z", "+00:00"))
        except ValueError:
            fail(f"--sunset {sunset!r} is not a date; write e.g. 2027-03-01 or 2027-03-01T00:00:00Z")
        sunset_at = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    spec = PromotionSpec(agent_version=str(ref), target_state=State.deprecated, reason=reason,
                         deprecation=DeprecationRequest(replacement=replacement, sunset_at=sunset_at))
    s = session(kubeconfig, context, namespace)
    typer.echo(_promotion(s, ref, spec)["metadata"]["name"])


@commands.command("rollback")
@guarded
def agent_rollback(reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION")],
                   reason: Annotated[str, typer.Option(help="why; required and recorded")],
                   namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None,
                   debug: Debug = False) -> None:
    """Undo the last promotion of a version. [bold]Example[/bold]: gl agent rollback gl-cbam-calculator-v2@2.4.0 --reason "p95 regression" """
    ref = naming.AgentVersionRef.parse(reference)
    s = session(kubeconfig, context, namespace)
    version = objects.get(s.api, kinds.AGENT_VERSION, s.namespace, ref.object_name)
    if version is None:
        fail(f"{ref} is not published in {s.namespace}")
    history = (version.get("status") or {}).get("stateHistory") or []
    if len(history) < 2 or not history[-1].get("from"):
        fail(f"{ref} has no promotion to undo (it is {state_of(version) or 'not accepted yet'})")
    spec = PromotionSpec(agent_version=str(ref), target_state=State(history[-1]["from"]), reason=reason)
    typer.echo(_promotion(s, ref, spec)["metadata"]["name"])
