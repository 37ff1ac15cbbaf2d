"""The `gl` command (also `kubectl gl`): registry verbs on top of the Kubernetes API.

It reads kubeconfig like kubectl, never writes status and never bypasses admission.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from gl_api import API_VERSION, conditions, kinds, labels, naming, semver
from gl_cli import agent_check, artifacts
from gl_cli.kubeconfig import NoCluster, connect
from gl_cli.output import FORMATS, emit, emit_object, err, fail, out
from gl_cli.registry_api import Registry, RegistryError

app = typer.Typer(name="gl", rich_markup_mode="rich", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="GreenLang Agent Registry: publish, promote and govern agents on Kubernetes.")
agent = typer.Typer(no_args_is_help=True, help="Agents and their versions.")
audit = typer.Typer(no_args_is_help=True, help="The registry's audit trail.")
tenant = typer.Typer(no_args_is_help=True, help="Tenants (TenantPolicies).")
slo = typer.Typer(no_args_is_help=True, help="Service level objectives of running agents.")
for sub, name in ((agent, "agent"), (audit, "audit"), (tenant, "tenant"), (slo, "slo")):
    app.add_typer(sub, name=name)

Kubeconfig = Annotated[Optional[str], typer.Option("--kubeconfig", envvar="KUBECONFIG",
                                                   help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")]
Context = Annotated[Optional[str], typer.Option("--context", help="kubeconfig context (default: current)")]
Namespace = Annotated[Optional[str], typer.Option("-n", "--namespace", help="namespace (default: the context's)")]
Output = Annotated[str, typer.Option("-o", "--output", help="table, json or yaml")]
AllNamespaces = Annotated[bool, typer.Option("-A", "--all-namespaces", help="across all namespaces")]
Debug = Annotated[bool, typer.Option("--debug", help="show tracebacks")]


class Session:
    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None):
        connection = connect(kubeconfig, context, namespace)
        self.namespace = connection.namespace
        self.registry = Registry(connection.api)
        self.api = connection.api


def session(kubeconfig: str | None, context: str | None, namespace: str | None) -> Session:
    try:
        return Session(kubeconfig, context, namespace)
    except NoCluster as error:
        fail(str(error), 2)
        raise


def guarded(function: Any) -> Any:
    """User mistakes become one clear line and a non-zero exit; tracebacks only with --debug."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (RegistryError, naming.InvalidReference, semver.InvalidVersion, artifacts.ArtifactError,
                agent_check.CheckError, NoCluster) as error:
            if kwargs.get("debug"):
                raise
            fail(str(error))
        except Exception as error:  # no cluster, connection refused, ...
            if kwargs.get("debug") or isinstance(error, typer.Exit):
                raise
            fail(f"{type(error).__name__}: {error} (rerun with --debug for details)")
    return wrapper


def _check_output(output: str) -> None:
    if output not in FORMATS:
        fail(f"unknown output format {output!r}; use one of {', '.join(FORMATS)}", 2)


def _state(obj: dict[str, Any]) -> str:
    return (obj.get("status") or {}).get("state") or ""


# ---------------------------------------------------------------------------------------- agents

def _agent_row(a: dict[str, Any]) -> dict[str, Any]:
    status = a.get("status") or {}
    return {"name": a["metadata"]["name"], "namespace": a["metadata"]["namespace"],
            "displayName": a["spec"]["displayName"], "domain": a["spec"]["domain"], "type": a["spec"]["type"],
            "visibility": a["spec"].get("visibility"), "latestVersion": status.get("latestVersion"),
            "certifiedVersion": status.get("certifiedVersion")}


def _version_row(v: dict[str, Any]) -> dict[str, Any]:
    return {"ref": f"{v['spec']['agent']}@{v['spec']['version']}", "namespace": v["metadata"]["namespace"],
            "agent": v["spec"]["agent"], "version": v["spec"]["version"], "state": _state(v),
            "image": v["spec"].get("image"), "artifact": (v["spec"].get("artifact") or {}).get("uri")}


@agent.command("list")
@guarded
def agent_list(domain: Annotated[Optional[str], typer.Option(help="filter by domain (prefix)")] = None,
               type_: Annotated[Optional[str], typer.Option("--type", help="filter by type")] = None,
               state: Annotated[Optional[str], typer.Option(help="show agents with a version in this state")] = None,
               all_namespaces: AllNamespaces = False, namespace: Namespace = None, output: Output = "table",
               kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """List agents. [bold]Example[/bold]: gl agent list -A --domain sustainability --state certified"""
    _check_output(output)
    s = session(kubeconfig, context, namespace)
    agents = s.registry.list(kinds.AGENT, None if all_namespaces else s.namespace)
    if domain:
        agents = [a for a in agents if a["spec"]["domain"] == domain or a["spec"]["domain"].startswith(domain + ".")]
    if type_:
        agents = [a for a in agents if a["spec"]["type"] == type_]
    if state:
        versions = s.registry.list(kinds.AGENT_VERSION, None if all_namespaces else s.namespace,
                                   label_selector=f"{labels.STATE}={state}")
        having = {(v["metadata"]["namespace"], v["spec"]["agent"]) for v in versions}
        agents = [a for a in agents if (a["metadata"]["namespace"], a["metadata"]["name"]) in having]
    emit([_agent_row(a) for a in agents],
         [("Namespace", "namespace"), ("Name", "name"), ("Display Name", "displayName"), ("Domain", "domain"),
          ("Type", "type"), ("Latest", "latestVersion"), ("Certified", "certifiedVersion")],
         output, title="Agents", kind="AgentList")


@agent.command("get")
@guarded
def agent_get(reference: Annotated[str, typer.Argument(metavar="AGENT[@VERSION]")], namespace: Namespace = None,
              output: Output = "table", kubeconfig: Kubeconfig = None, context: Context = None,
              debug: Debug = False) -> None:
    """Show an agent and its versions, or one version. [bold]Example[/bold]: gl agent get gl-cbam-calculator-v2@2.3.1"""
    _check_output(output)
    s = session(kubeconfig, context, namespace)
    if "@" in reference:
        ref = naming.AgentVersionRef.parse(reference)
        version = s.registry.get(kinds.AGENT_VERSION, s.namespace, ref.object_name)
        if version is None:
            fail(f"{ref} is not published in namespace {s.namespace}; see `gl agent get {ref.agent}`")
        if output != "table":
            emit_object(version, output)
            return
        row = _version_row(version)
        status = version.get("status") or {}
        table = Table(title=str(ref), show_header=False)
        for key in ("agent", "version", "state", "image", "artifact"):
            table.add_row(key, escape(str(row.get(key) or "")))
        for entry in status.get("stateHistory") or []:
            table.add_row("history", escape(f"{entry['at']} {entry.get('from') or '-'} -> {entry['to']} by "
                                            f"{entry.get('by')}: {entry.get('reason') or ''}"))
        out.print(table)
        return
    found = s.registry.get(kinds.AGENT, s.namespace, reference)
    if found is None:
        fail(f"agent {reference} does not exist in namespace {s.namespace}; see `gl agent list -A`")
    versions = s.registry.list(kinds.AGENT_VERSION, s.namespace, field_selector=f"spec.agent={reference}")
    versions.sort(key=lambda v: semver.Version.parse(v["spec"]["version"]), reverse=True)
    if output != "table":
        emit_object({**found, "versions": [_version_row(v) for v in versions]}, output)
        return
    emit([_version_row(v) for v in versions], [("Version", "version"), ("State", "state"), ("Image", "image")],
         output, title=f"{found['spec']['displayName']} ({reference}, {found['spec']['domain']})")


@agent.command("publish")
@guarded
def agent_publish(
    name: Annotated[str, typer.Option("--name", help="agent name, e.g. gl-cbam-calculator-v2")],
    version: Annotated[str, typer.Option("--version", help="semantic version, e.g. 2.4.0")],
    domain: Annotated[Optional[str], typer.Option(help="domain for a new Agent, e.g. sustainability.cbam")] = None,
    type_: Annotated[Optional[str], typer.Option("--type", help="type for a new Agent, e.g. calculator")] = None,
    display_name: Annotated[Optional[str], typer.Option("--display-name", help="for a new Agent")] = None,
    description: Annotated[Optional[str], typer.Option(help="for a new Agent")] = None,
    artifact: Annotated[Optional[Path], typer.Option(help="file to upload to S3 (content-addressed)")] = None,
    image: Annotated[Optional[str], typer.Option(help="container image pinned by digest: REF@sha256:...")] = None,
    capabilities: Annotated[Optional[Path], typer.Option(help="YAML list of capabilities")] = None,
    file: Annotated[Optional[Path], typer.Option("-f", "--file", help="an agent.yaml with Agent and AgentVersion "
                                                                      "fields to start from")] = None,
    bucket: Annotated[Optional[str], typer.Option(envvar="GL_S3_BUCKET", help="S3 bucket for artifacts")] = None,
    s3_endpoint: Annotated[Optional[str], typer.Option("--s3-endpoint", envvar="GL_S3_ENDPOINT",
                                                       help="S3-compatible endpoint URL")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the objects, create nothing")] = False,
    wait: Annotated[float, typer.Option(help="seconds to wait for the version to be accepted")] = 60,
    namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False,
) -> None:
    """Upload the artifact, create the Agent if missing and the AgentVersion, wait until it is accepted.

    [bold]Example[/bold]: gl agent publish --name gl-cbam-calculator-v2 --version 2.4.0 --domain sustainability.cbam
    --type calculator --artifact dist/cbam.tar.gz --image registry.example.com/cbam@sha256:...
    """
    ref = naming.AgentVersionRef.parse(f"{name}@{version}")
    base = yaml.safe_load(file.read_text()) if file else {}
    s = session(kubeconfig, context, namespace)
    agent_obj = s.registry.get(kinds.AGENT, s.namespace, name)
    new_agent = None
    if agent_obj is None:
        spec = {**(base.get("agent") or {}), **{k: v for k, v in (("domain", domain), ("type", type_),
                                                                   ("displayName", display_name or name),
                                                                   ("description", description)) if v}}
        missing = [flag for flag, key in (("--domain", "domain"), ("--type", "type")) if not spec.get(key)]
        if missing:
            fail(f"agent {name} does not exist yet in {s.namespace}; to create it, also give {' and '.join(missing)}")
        new_agent = {"apiVersion": API_VERSION, "kind": "Agent", "metadata": {"name": name, "namespace": s.namespace},
                     "spec": spec}
    if s.registry.get(kinds.AGENT_VERSION, s.namespace, ref.object_name) is not None:
        fail(f"{ref} is already published in {s.namespace}; a published version never changes: publish a new "
             "version instead")
    spec: dict[str, Any] = {**(base.get("version") or {}), "agent": name, "version": version}
    if image:
        spec["image"] = image
    if capabilities:
        spec["capabilities"] = yaml.safe_load(capabilities.read_text())
    if artifact and not dry_run:
        if not bucket:
            fail("--artifact needs a bucket: --bucket or $GL_S3_BUCKET")
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=err, transient=False) as progress:
            task = progress.add_task(f"uploading {artifact.name}", total=artifact.stat().st_size)
            uploaded = artifacts.upload(artifact, bucket, s3_endpoint, lambda n: progress.advance(task, n))
        spec["artifact"] = {"uri": uploaded.uri, "digest": uploaded.digest, "sizeBytes": uploaded.size}
        err.print(f"artifact {'already in' if uploaded.already_there else 'uploaded to'} {uploaded.uri}")
    elif artifact:
        digest = artifacts.sha256_of(artifact)
        spec["artifact"] = {"uri": f"s3://{bucket or 'BUCKET'}/sha256/{digest}", "digest": f"sha256:{digest}",
                            "sizeBytes": artifact.stat().st_size}
    version_obj = {"apiVersion": API_VERSION, "kind": "AgentVersion",
                   "metadata": {"name": ref.object_name, "namespace": s.namespace,
                                "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/version": version}},
                   "spec": spec}
    if dry_run:
        typer.echo(yaml.safe_dump_all([o for o in (new_agent, version_obj) if o], sort_keys=False))
        return
    if new_agent:
        s.registry.create(kinds.AGENT, s.namespace, new_agent)
        err.print(f"created Agent {name}")
    s.registry.create(kinds.AGENT_VERSION, s.namespace, version_obj)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        current = s.registry.get(kinds.AGENT_VERSION, s.namespace, ref.object_name) or {}
        accepted = conditions.get_condition((current.get("status") or {}).get("conditions"), "Accepted")
        if accepted and accepted["status"] == "True":
            typer.echo(str(ref))
            return
        if accepted and accepted["status"] == "False":
            fail(f"{ref} was not accepted: {accepted['message']}")
        time.sleep(0.5)
    fail(f"{ref} was created but not accepted within {wait:.0f}s; is the registry operator running?")


@agent.command("search")
@guarded
def agent_search(query: Annotated[str, typer.Argument(help="words, even misspelt, or what you need")],
                 domain: Annotated[Optional[str], typer.Option()] = None,
                 type_: Annotated[Optional[str], typer.Option("--type")] = None,
                 state: Annotated[Optional[str], typer.Option()] = None,
                 tag: Annotated[Optional[str], typer.Option()] = None,
                 limit: Annotated[int, typer.Option()] = 20, all_namespaces: AllNamespaces = True,
                 namespace: Namespace = None, output: Output = "table", kubeconfig: Kubeconfig = None,
                 context: Context = None, debug: Debug = False) -> None:
    """Search agents by words and meaning. [bold]Example[/bold]: gl agent search "carbon border tax" """
    _check_output(output)
    s = session(kubeconfig, context, namespace)
    path = "agentsearches" if all_namespaces and not namespace else f"namespaces/{s.namespace}/agentsearches"
    result = s.registry.query(path, {"q": query, "domain": domain, "type": type_, "state": state, "tag": tag,
                                     "limit": limit})
    rows = [{k: item.get(k) for k in ("ref", "namespace", "state", "domain", "displayName", "score", "why")}
            for item in result["items"]]
    emit(rows, [("Agent", "ref"), ("Namespace", "namespace"), ("State", "state"), ("Domain", "domain"),
                ("Score", "score"), ("Why", "why")], output, title=f"search: {query}", kind="AgentSearchResultList")


def _promotion(s: Session, ref: naming.AgentVersionRef, target: str, reason: str | None,
               extra: dict[str, Any]) -> dict[str, Any]:
    me = s.registry.whoami()["username"]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    name = f"{ref.object_name}-to-{target}-{stamp}"[:253]
    body = {"apiVersion": API_VERSION, "kind": "Promotion",
            "metadata": {"name": name, "namespace": s.namespace, "annotations": {labels.CREATED_BY: me}},
            "spec": {"agentVersion": str(ref), "targetState": target, **({"reason": reason} if reason else {}),
                     **extra}}
    return s.registry.create(kinds.PROMOTION, s.namespace, body)


def _wait_promotion(s: Session, name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    promotion: dict[str, Any] = {}
    while time.monotonic() < deadline:
        promotion = s.registry.get(kinds.PROMOTION, s.namespace, name) or {}
        if (promotion.get("status") or {}).get("phase") in ("Succeeded", "Rejected", "Failed", "AwaitingApproval"):
            break
        time.sleep(0.5)
    return promotion


def _print_checklist(promotion: dict[str, Any]) -> None:
    status = promotion.get("status") or {}
    table = Table(title=f"{promotion['spec']['agentVersion']} -> {promotion['spec']['targetState']}: "
                        f"{status.get('phase') or 'Pending'} ({promotion['metadata']['name']})")
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


@agent.command("promote")
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
    extra: dict[str, Any] = {}
    if fast_track:
        if not (justification and incident):
            fail("--fast-track needs --justification and --incident")
        extra["fastTrack"] = {"justification": justification, "incident": incident}
    s = session(kubeconfig, context, namespace)
    created = _promotion(s, ref, to, reason, extra)
    name = created["metadata"]["name"]
    typer.echo(name)
    if wait:
        promotion = _wait_promotion(s, name, 60)
        _print_checklist(promotion)
        if (promotion.get("status") or {}).get("phase") in ("Rejected", "Failed"):
            raise typer.Exit(1)


@agent.command("approve")
@guarded
def agent_approve(promotion: Annotated[str, typer.Argument(help="the Promotion's name")],
                  comment: Annotated[Optional[str], typer.Option()] = None, namespace: Namespace = None,
                  kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """Approve a Promotion in your own name. [bold]Example[/bold]: gl agent approve gl-cbam-calculator-v2-2.4.0-to-certified-20261126"""
    s = session(kubeconfig, context, namespace)
    current = s.registry.get(kinds.PROMOTION, s.namespace, promotion)
    if current is None:
        fail(f"Promotion {promotion} does not exist in {s.namespace}; see `kubectl get promotions`")
    me = s.registry.whoami()
    entry = {"user": me["username"], **({"comment": comment} if comment else {})}
    operation = ({"op": "add", "path": "/spec/approvals/-", "value": entry} if current["spec"].get("approvals")
                 else {"op": "add", "path": "/spec/approvals", "value": [entry]})
    s.registry.patch_json(kinds.PROMOTION, s.namespace, promotion, [operation])
    typer.echo(f"approved {promotion} as {me['username']}")


@agent.command("promotion-status")
@guarded
def agent_promotion_status(reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION|PROMOTION")],
                           namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None,
                           debug: Debug = False) -> None:
    """Each check with its message, approvals and what is missing. [bold]Example[/bold]: gl agent promotion-status gl-cbam-calculator-v2@2.4.0"""
    s = session(kubeconfig, context, namespace)
    if "@" in reference:
        ref = naming.AgentVersionRef.parse(reference)
        found = [p for p in s.registry.list(kinds.PROMOTION, s.namespace) if p["spec"]["agentVersion"] == str(ref)]
        if not found:
            fail(f"no Promotion for {ref} in {s.namespace}; ask for one with `gl agent promote {ref} --to STATE`")
        promotion = max(found, key=lambda p: p["metadata"]["creationTimestamp"])
    else:
        promotion = s.registry.get(kinds.PROMOTION, s.namespace, reference)
        if promotion is None:
            fail(f"Promotion {reference} does not exist in {s.namespace}")
    _print_checklist(promotion)


@agent.command("deprecate")
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
    deprecation: dict[str, Any] = {"replacement": replacement}
    if sunset:
        try:
            moment = datetime.fromisoformat(sunset.replace("Z", "+00:00"))
        except ValueError:
            fail(f"--sunset {sunset!r} is not a date; write e.g. 2027-03-01 or 2027-03-01T00:00:00Z")
            return
        deprecation["sunsetAt"] = conditions.timestamp(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))
    s = session(kubeconfig, context, namespace)
    typer.echo(_promotion(s, ref, "deprecated", reason, {"deprecation": deprecation})["metadata"]["name"])


@agent.command("rollback")
@guarded
def agent_rollback(reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION")],
                   reason: Annotated[str, typer.Option(help="why; required and recorded")],
                   namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None,
                   debug: Debug = False) -> None:
    """Undo the last promotion of a version. [bold]Example[/bold]: gl agent rollback gl-cbam-calculator-v2@2.4.0 --reason "p95 regression" """
    ref = naming.AgentVersionRef.parse(reference)
    s = session(kubeconfig, context, namespace)
    version = s.registry.get(kinds.AGENT_VERSION, s.namespace, ref.object_name)
    if version is None:
        fail(f"{ref} is not published in {s.namespace}")
    history = (version.get("status") or {}).get("stateHistory") or []
    if len(history) < 2 or not history[-1].get("from"):
        fail(f"{ref} has no promotion to undo (it is {_state(version) or 'not accepted yet'})")
    typer.echo(_promotion(s, ref, history[-1]["from"], reason, {})["metadata"]["name"])


@agent.command("metrics")
@guarded
def agent_metrics(reference: Annotated[str, typer.Argument(metavar="AGENT[@VERSION]")],
                  window: Annotated[str, typer.Option(help="window of the figures, e.g. 30d")] = "30d",
                  namespace: Namespace = None, output: Output = "table", kubeconfig: Kubeconfig = None,
                  context: Context = None, debug: Debug = False) -> None:
    """Usage, error rate and latency from the mirror. [bold]Example[/bold]: gl agent metrics gl-cbam-calculator-v2 --window 30d"""
    _check_output(output)
    agent_name, _, version = reference.partition("@")
    s = session(kubeconfig, context, namespace)
    result = s.registry.query(f"namespaces/{s.namespace}/usagesummaries", {"agent": agent_name})
    rows = [{"ref": f"{i['agent']}@{i['version']}", "state": i["state"], "requests": i["usage"].get("requests"),
             "errorRate": i["usage"].get("errorRate"), "p95LatencyMs": i["usage"].get("p95LatencyMs"),
             "window": i["usage"].get("window")} for i in result["items"] if not version or i["version"] == version]
    emit(rows, [("Version", "ref"), ("State", "state"), ("Requests", "requests"), ("Error Rate", "errorRate"),
                ("p95 ms", "p95LatencyMs"), ("Window", "window")], output, title=f"usage (requested window {window})",
         kind="UsageSummaryList")


@agent.command("check")
@guarded
def check(
    reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION", help="e.g. gl-cbam-calculator-v2@2.4.0")],
    tenant_name: Annotated[str, typer.Option("--tenant", "-t", help="TenantPolicy name")],
    environment: Annotated[str, typer.Option("--environment", "-e", help="dev, staging or production")],
    namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False,
) -> None:
    """Would AGENT@VERSION be admitted in a tenant environment? Asks the registry's policies, creates nothing.

    [bold]Example[/bold]: gl agent check gl-cbam-calculator-v2@2.4.0 --tenant customer-abc-123 --environment production
    """
    try:
        ref = naming.AgentVersionRef.parse(reference)
        connection = connect(kubeconfig, context, namespace)
        result = agent_check.check(connection.api, connection.namespace, ref.agent, ref.version, tenant_name,
                                   environment)
    except (naming.InvalidReference, agent_check.CheckError, NoCluster) as error:
        fail(str(error), 2)
        return
    table = Table(title=f"{ref} in {tenant_name}/{environment} (namespace {result.namespace})")
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


# ---------------------------------------------------------------------------------------- audit

@audit.command("query")
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
    _check_output(output)
    s = session(kubeconfig, context, None)
    result = s.registry.query("auditevents", {"tenant": tenant_name, "operation": event_type, "actor": actor,
                                              "name": name, "startTime": start_time, "endTime": end_time,
                                              "limit": limit})
    rows = [{"id": i["id"], "at": i["at"], "actor": i["actor"], "tenant": i["tenant"], "operation": i["operation"],
             "object": f"{i['object']['kind']}/{i['object']['name']}", "decision": i["decision"],
             "reason": i["reason"]} for i in result["items"]]
    emit(rows, [("Time", "at"), ("Actor", "actor"), ("Operation", "operation"), ("Object", "object"),
                ("Decision", "decision"), ("Reason", "reason")], output, title="audit trail", kind="AuditEventList")


@audit.command("verify")
@guarded
def audit_verify(kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False) -> None:
    """Check every audit row's hash and link; exit 1 when anything was changed or removed."""
    s = session(kubeconfig, context, None)
    result = s.registry.query("auditverifications", {})
    if result["problems"]:
        for problem in result["problems"]:
            out.print(f"[red]✗[/red] audit row {problem['id']}: {escape(problem['problem'])}")
        fail(f"audit trail NOT intact: {len(result['problems'])} of {result['rows']} rows fail verification")
    out.print(f"[green]✓[/green] audit trail intact: {result['rows']} rows, every hash and link verified")


# ---------------------------------------------------------------------------------------- tenants

def _tenant_row(t: dict[str, Any]) -> dict[str, Any]:
    status = t.get("status") or {}
    ready = conditions.get_condition(status.get("conditions"), "Ready") or {}
    return {"name": t["metadata"]["name"], "displayName": t["spec"].get("displayName"),
            "environments": [f"{e['name']}={e['namespace']}" for e in t["spec"].get("environments") or []],
            "region": (t["spec"].get("dataResidency") or {}).get("region"), "ready": ready.get("status"),
            "members": len(t["spec"].get("members") or [])}


@tenant.command("list")
@guarded
def tenant_list(output: Output = "table", kubeconfig: Kubeconfig = None, context: Context = None,
                debug: Debug = False) -> None:
    """List tenants. [bold]Example[/bold]: gl tenant list -o yaml"""
    _check_output(output)
    s = session(kubeconfig, context, None)
    emit([_tenant_row(t) for t in s.registry.list(kinds.TENANT_POLICY, None)],
         [("Name", "name"), ("Display Name", "displayName"), ("Environments", "environments"), ("Region", "region"),
          ("Members", "members"), ("Ready", "ready")], output, title="Tenants", kind="TenantList")


@tenant.command("get")
@guarded
def tenant_get(name: str, output: Output = "yaml", kubeconfig: Kubeconfig = None, context: Context = None,
               debug: Debug = False) -> None:
    """Show one tenant. [bold]Example[/bold]: gl tenant get customer-abc-123"""
    s = session(kubeconfig, context, None)
    found = s.registry.get(kinds.TENANT_POLICY, None, name)
    if found is None:
        fail(f"TenantPolicy {name} does not exist; see `gl tenant list`")
    emit_object(found, "json" if output == "json" else "yaml")


@slo.command("status")
@guarded
def slo_status(agent_name: Annotated[str, typer.Option("--agent", help="agent name")],
               namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None,
               debug: Debug = False) -> None:
    """SLO compliance of an agent's deployments. [bold]Example[/bold]: gl slo status --agent gl-cbam-calculator-v2"""
    s = session(kubeconfig, context, namespace)
    deployments = [d for d in s.registry.list(kinds.AGENT_DEPLOYMENT, None)
                   if d["spec"]["agent"].split("/", 1)[-1] == agent_name]
    if not deployments:
        fail(f"no AgentDeployment runs {agent_name}; SLOs are measured for deployed agents")
    rows = []
    for d in deployments:
        compliant = conditions.get_condition((d.get("status") or {}).get("conditions"), "SLOCompliant")
        rows.append({"deployment": f"{d['metadata']['namespace']}/{d['metadata']['name']}",
                     "slo": json.dumps(d["spec"].get("slo") or {}),
                     "compliant": compliant["status"] if compliant else "Unknown",
                     "message": compliant["message"] if compliant else
                     "not measured yet: the runtime reports SLOCompliant once it runs the agent"})
    emit(rows, [("Deployment", "deployment"), ("SLO", "slo"), ("Compliant", "compliant"), ("Message", "message")],
         "table", title=f"SLOs of {agent_name}")


def main() -> None:
    app(prog_name="kubectl gl" if Path(sys.argv[0]).name.startswith("kubectl-") else "gl")
