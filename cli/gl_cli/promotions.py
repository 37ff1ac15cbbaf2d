"""`gl agent promote`, `approve`, `promotion-status`, `deprecate` and `rollback`: lifecycle changes as Promotions.

The CLI only asks: it creates Promotions and adds approvals in the user's own name; the
operator checks and decides, and the API server checks who asked and who approved.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from gl_cli import kube
from gl_cli.app import Context, Debug, Kubeconfig, Namespace, guarded, resource, session, state_of
from gl_cli.output import err, escape, fail, out

if TYPE_CHECKING:  # the models and checks are imported by the commands that use them, not at start-up
    from rich.table import Table

    from gl_api import naming, promotion_checks
    from gl_api.models import PromotionPhase, PromotionSpec

commands = typer.Typer()

# `promote`'s exit status when the operator has not decided within --timeout (e.g. a soak still running).
UNDECIDED = 3
POLICY_NAMESPACE = "greenlang-system"


def phase_of(promotion: dict[str, Any]) -> PromotionPhase:
    from gl_api.models import PromotionPhase

    return PromotionPhase((promotion.get("status") or {}).get("phase") or PromotionPhase.pending)


def _promotion(s: kube.Connection, ref: naming.AgentVersionRef, spec: PromotionSpec) -> dict[str, Any]:
    """Create the Promotion, named after the version, the target and the time, with its requester stamped."""
    from gl_api import kinds, labels
    from gl_api.lifecycle import State

    me = kube.whoami(s.api)["username"]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    name = f"{ref.object_name}-to-{State(spec.target_state).value}-{stamp}"[:253]
    body = resource(kinds.PROMOTION, name, s.namespace, spec, annotations={labels.CREATED_BY: me})
    return kube.create(s.api, kube.PROMOTION, s.namespace, body)


def _wait_promotion(s: kube.Connection, promotion: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Watch until the operator decides (or waits for a person), showing the checks as they change."""
    from rich.live import Live

    from gl_api.models import PromotionPhase

    # Where `promote` stops waiting: decided, or waiting for a person.
    settled = (PromotionPhase.succeeded, PromotionPhase.rejected, PromotionPhase.failed,
               PromotionPhase.awaiting_approval)
    name = promotion["metadata"]["name"]
    with Live(_checklist(promotion), console=out.console, transient=False, auto_refresh=False) as live:
        for current in kube.watch_object(s.api, kube.PROMOTION, s.namespace, name, timeout):
            promotion = current
            live.update(_checklist(promotion), refresh=True)
            if phase_of(promotion) in settled:
                break
    return promotion


def _checklist(promotion: dict[str, Any], title: str | None = None) -> Table:
    from rich.table import Table

    status = promotion.get("status") or {}
    table = Table(title=title or f"{promotion['spec']['agentVersion']} -> {promotion['spec']['targetState']}: "
                                 f"{phase_of(promotion).value} ({promotion['metadata']['name']})")
    table.add_column("")
    table.add_column("Check")
    table.add_column("Message")
    for check in status.get("checks") or []:
        table.add_row("[green]✓[/green]" if check["passed"] else "[red]✗[/red]", check["name"],
                      escape(check.get("message") or ""))
    for approval in promotion["spec"].get("approvals") or []:
        table.add_row("[green]✓[/green]", "approved by", escape(f"{approval['user']} {approval.get('at') or ''}"))
    return table


def _print_missing(promotion: dict[str, Any]) -> None:
    missing = [c["name"] for c in (promotion.get("status") or {}).get("checks") or [] if not c["passed"]]
    if missing:
        err.print(f"missing: {', '.join(missing)}")


def _approvers_hint(s: kube.Connection, promotion: dict[str, Any], me: str) -> str:
    name = promotion["metadata"]["name"]
    return (f"needs an approval by someone other than {me} who may approve promotions in {s.namespace} "
            f"(the tenant's super_admin or tenant_admin role, or greenlang-registry:promotion-approver); "
            f"they run: gl agent approve {name} -n {s.namespace}")


@commands.command("promote")
@guarded
def agent_promote(reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION")],
                  to: Annotated[str, typer.Option("--to", help="experimental, certified, deprecated, ...")],
                  reason: Annotated[Optional[str], typer.Option(help="why; recorded in the history")] = None,
                  fast_track: Annotated[bool, typer.Option("--fast-track", help="critical patch")] = False,
                  justification: Annotated[Optional[str], typer.Option(help="fast track: why it cannot wait")] = None,
                  incident: Annotated[Optional[str], typer.Option(help="fast track: incident id")] = None,
                  wait: Annotated[bool, typer.Option("--wait/--no-wait", help="wait for the operator's decision, "
                                                     "showing the checks as they run")] = True,
                  timeout: Annotated[float, typer.Option(help="seconds to wait for a decision")] = 120,
                  namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None,
                  debug: Debug = False) -> None:
    """Ask for a lifecycle change and wait for the operator's decision.

    Exit status: 0 when it succeeded or now waits for an approval (who may give it is printed),
    1 when it was rejected or failed, 3 when it was not decided within --timeout (a soak or usage
    still to come: follow it with `gl agent promotion-status PROMOTION`).

    [bold]Example[/bold]: gl agent promote gl-cbam-calculator-v2@2.3.1 --to experimental
    """
    from gl_api import naming
    from gl_api.models import FastTrack, PromotionPhase, PromotionSpec

    ref = naming.AgentVersionRef.parse(reference)
    urgent = None
    if fast_track:
        if not (justification and incident):
            fail("--fast-track needs --justification and --incident")
        urgent = FastTrack(justification=justification, incident=incident)
    spec = PromotionSpec(agent_version=str(ref), target_state=to, reason=reason, fast_track=urgent)
    s = session(kubeconfig, context, namespace)
    promotion = _promotion(s, ref, spec)
    name = promotion["metadata"]["name"]
    typer.echo(name)  # first line of stdout, for scripts: `gl agent approve NAME`
    if not wait:
        return
    promotion = _wait_promotion(s, promotion, timeout)
    _print_missing(promotion)
    phase = phase_of(promotion)
    if phase is PromotionPhase.succeeded:
        err.print(f"{ref} is now {spec.target_state}")
    elif phase is PromotionPhase.awaiting_approval:
        err.print(_approvers_hint(s, promotion, kube.whoami(s.api)["username"]))
    elif phase in (PromotionPhase.rejected, PromotionPhase.failed):
        fail(f"{ref} was not promoted: {phase.value} ({(promotion.get('status') or {}).get('message') or 'see the checks'})")
    else:
        err.print(f"not decided after {timeout:g}s (still {phase.value}); the operator re-checks as results arrive: "
                  f"gl agent promotion-status {name} -n {s.namespace}")
        raise typer.Exit(UNDECIDED)


@commands.command("approve")
@guarded
def agent_approve(promotion: Annotated[str, typer.Argument(help="the Promotion's name")],
                  comment: Annotated[Optional[str], typer.Option()] = None, namespace: Namespace = None,
                  kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """Approve a Promotion in your own name. [bold]Example[/bold]: gl agent approve gl-cbam-calculator-v2-2.4.0-to-certified-20261126"""
    from gl_api.models import Approval

    s = session(kubeconfig, context, namespace)
    current = kube.get(s.api, kube.PROMOTION, s.namespace, promotion)
    if current is None:
        fail(f"Promotion {promotion} does not exist in {s.namespace}; see `kubectl get promotions`")
    me = kube.whoami(s.api)["username"]
    entry = Approval(user=me, comment=comment).to_k8s()
    # Append with a JSON patch: approvals are add-only, and a merge patch would replace the list.
    operation = ({"op": "add", "path": "/spec/approvals/-", "value": entry} if current["spec"].get("approvals")
                 else {"op": "add", "path": "/spec/approvals", "value": [entry]})
    kube.patch_json(s.api, kube.PROMOTION, s.namespace, promotion, [operation])
    typer.echo(f"approved {promotion} as {me}")


@commands.command("promotion-status")
@guarded
def agent_promotion_status(reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION|PROMOTION")],
                           to: Annotated[Optional[str], typer.Option(
                               "--to", help="with AGENT@VERSION: the state to check readiness for (default: the "
                                            "next one); a dry run, nothing is created")] = None,
                           namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None,
                           debug: Debug = False) -> None:
    """Is a version ready to be promoted, or how is its Promotion doing: each check with pass/fail,
    the measured value, the threshold and what is missing.

    With AGENT@VERSION and no Promotion yet (or with --to), it runs the operator's own checks as a
    dry run, with the thresholds the operator publishes. With a Promotion's name, or when the
    version has Promotions, it shows the latest one's phase and checks.

    [bold]Example[/bold]: gl agent promotion-status gl-cbam-calculator-v2@2.3.1
    """
    from gl_api import naming

    s = session(kubeconfig, context, namespace)
    if "@" not in reference:
        promotion = kube.get(s.api, kube.PROMOTION, s.namespace, reference)
        if promotion is None:
            fail(f"Promotion {reference} does not exist in {s.namespace}")
        out.print(_checklist(promotion))
        _print_missing(promotion)
        return
    ref = naming.AgentVersionRef.parse(reference)
    if to is None:
        found = [p for p in kube.list_objects(s.api, kube.PROMOTION, s.namespace)
                 if p["spec"]["agentVersion"] == str(ref)]
        if found:
            promotion = max(found, key=lambda p: p["metadata"]["creationTimestamp"])
            out.print(_checklist(promotion))
            _print_missing(promotion)
            return
    _readiness(s, ref, to)


def _published_policy(s: kube.Connection) -> tuple[promotion_checks.PromotionPolicy, str | None]:
    """The operator's thresholds, or the registry's defaults with a note saying why."""
    from gl_api import promotion_checks

    try:
        raw = kube.config_map_data(s.api, POLICY_NAMESPACE, promotion_checks.POLICY_CONFIGMAP)[
            promotion_checks.POLICY_KEY]
        return promotion_checks.PromotionPolicy.model_validate(json.loads(raw)), None
    except (kube.ApiError, KeyError, ValueError) as error:
        why = kube.explain(error) if isinstance(error, kube.ApiError) else f"unreadable: {error}"
        return promotion_checks.PromotionPolicy(), (
            f"the operator's thresholds ({POLICY_NAMESPACE}/{promotion_checks.POLICY_CONFIGMAP}) could not be "
            f"read ({why}); judged with the registry's defaults")


def _readiness(s: kube.Connection, ref: naming.AgentVersionRef, to: str | None) -> None:
    """The dry run: the operator's checks for ``ref -> to`` on the version as it is now."""
    from gl_api import lifecycle, promotion_checks
    from gl_api.lifecycle import State

    version = kube.get(s.api, kube.AGENT_VERSION, s.namespace, ref.object_name)
    if version is None:
        fail(f"{ref} is not published in {s.namespace}; publish it with `gl agent publish`")
    current = state_of(version)
    if not current:
        fail(f"{ref} has not been accepted by the registry yet; see `kubectl describe agentversion "
             f"{ref.object_name} -n {s.namespace}`")
    if to is None:
        forward = [t for t in lifecycle.allowed_targets(State(current)) if not lifecycle.is_backward(State(current), t)]
        if not forward:
            err.print(f"{ref} is {current}: retired is final")
            return
        if forward[0] is State.deprecated:
            err.print(f"{ref} is certified: the next step is deprecation, in favour of a newer certified version "
                      f"(gl agent deprecate {ref} --replacement VERSION)")
            return
        target = forward[0]
    else:
        try:
            target = State(to)
        except ValueError:
            fail(f"--to {to!r}: one of {', '.join(s.value for s in State)}", 2)
    policy, note = _published_policy(s)
    if note:
        err.print(note)
    me = kube.whoami(s.api)["username"]
    asked = {"spec": {"agentVersion": str(ref), "targetState": target.value}, "metadata": {"name": "dry run"}}
    decision = promotion_checks.decide(promotion=asked, version=version, replacement=None, verdicts=[], requester=me,
                                       policy=policy, now=datetime.now(timezone.utc))
    shown = {**asked, "status": {"checks": [c.to_status() for c in decision.checks]}}
    out.print(_checklist(shown, title=f"{ref}: {current} -> {target.value} (dry run: is it ready?)"))
    blocking = [c for c in decision.checks if not c.passed and c.name != "approval"]
    if decision.outcome is promotion_checks.Outcome.rejected:
        err.print(f"not possible: {decision.summary}")
    elif blocking:
        err.print(f"not ready yet: {', '.join(c.name for c in blocking)}")
    elif lifecycle.needs_approval(target):
        err.print(f"ready, once approved: gl agent promote {ref} --to {target.value} -n {s.namespace}, then an "
                  f"approval by someone other than {me} who may approve promotions in {s.namespace}")
    else:
        err.print(f"ready: gl agent promote {ref} --to {target.value} -n {s.namespace}")


@commands.command("deprecate")
@guarded
def agent_deprecate(reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION")],
                    replacement: Annotated[str, typer.Option(help="certified version that replaces it")],
                    sunset: Annotated[Optional[str], typer.Option(help="retirement date, e.g. 2027-03-01 "
                                                                       "(default: in 90 days)")] = None,
                    reason: Annotated[Optional[str], typer.Option()] = None, namespace: Namespace = None,
                    kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """Deprecate a version in favour of a certified one. [bold]Example[/bold]: gl agent deprecate gl-cbam-calculator-v2@2.3.1 --replacement 2.4.0"""
    from gl_api import naming, semver
    from gl_api.lifecycle import State
    from gl_api.models import DeprecationRequest, PromotionSpec

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
    from gl_api import naming
    from gl_api.lifecycle import State
    from gl_api.models import PromotionSpec

    ref = naming.AgentVersionRef.parse(reference)
    s = session(kubeconfig, context, namespace)
    version = kube.get(s.api, kube.AGENT_VERSION, s.namespace, ref.object_name)
    if version is None:
        fail(f"{ref} is not published in {s.namespace}")
    history = (version.get("status") or {}).get("stateHistory") or []
    if len(history) < 2 or not history[-1].get("from"):
        fail(f"{ref} has no promotion to undo (it is {state_of(version) or 'not accepted yet'})")
    spec = PromotionSpec(agent_version=str(ref), target_state=State(history[-1]["from"]), reason=reason)
    typer.echo(_promotion(s, ref, spec)["metadata"]["name"])
