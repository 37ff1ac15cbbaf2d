"""`gl agent check`: would this agent version be admitted in a tenant environment?

Online (the default) it asks the very webhooks and policies `kubectl apply` would, by sending a
server-side dry run of an AgentDeployment in the environment's namespace: nothing is created.
With ``--offline`` it reads the same context the webhooks gather, with the user's own
credentials, and asks the same ``deployment`` policy with the embedded regopy engine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from gl_cli import kube
from gl_cli.app import Context, Debug, Kubeconfig, Namespace, guarded, resource, session
from gl_cli.output import escape, fail, out

# The models, the policies and the embedded Rego engine are imported by the check when it runs.

DENIED = re.compile(r'denied the request: (?P<messages>.*)$', re.DOTALL)
WARNING = re.compile(r'^\d{3} \S+ "(?P<text>.*)"$')

commands = typer.Typer()


class CheckError(Exception):
    """A mistake in the request itself (unknown tenant or environment)."""


@dataclass
class CheckResult:
    namespace: str
    denials: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.denials


def tenant_policy(api: kube.Api, tenant: str) -> dict[str, Any]:
    policy = kube.get(api, kube.TENANT_POLICY, None, tenant)
    if policy is None:
        raise CheckError(f"TenantPolicy {tenant} does not exist; see `kubectl get tenantpolicies`")
    return policy


def environment_namespace(policy: dict[str, Any], environment: str) -> str:
    environments = {e["name"]: e["namespace"] for e in policy["spec"].get("environments") or []}
    if environment not in environments:
        raise CheckError(f"tenant {policy['metadata']['name']} has no environment {environment!r}; it has: "
                         f"{', '.join(environments) or 'none'}")
    return environments[environment]


def probe(namespace: str, agent_namespace: str, agent: str, version: str) -> dict[str, Any]:
    """The AgentDeployment whose admission is in question: one replica of exactly that version."""
    from gl_api import kinds
    from gl_api.models import AgentDeploymentSpec

    spec = AgentDeploymentSpec(agent=f"{agent_namespace}/{agent}", version=version, replicas=1)
    return resource(kinds.AGENT_DEPLOYMENT, f"gl-check-{agent}"[:63], namespace, spec)


def split_denials(message: str) -> list[str]:
    match = DENIED.search(message)
    lines = [line.strip() for line in (match.group("messages") if match else message).strip().splitlines()]
    listed = [line.removeprefix("- ") for line in lines if line.startswith("- ")]
    return listed or [line for line in lines if line]


def check_online(api: kube.Api, agent_namespace: str, agent: str, version: str, tenant: str,
          environment: str) -> CheckResult:
    """Ask the API server: a dry-run create goes through every admission webhook and stores nothing."""
    namespace = environment_namespace(tenant_policy(api, tenant), environment)
    body = probe(namespace, agent_namespace, agent, version)
    result = CheckResult(namespace=namespace)
    try:
        # With http info: the policies' warnings come back only as Warning headers.
        _, headers = kube.create_with_headers(api, kube.AGENT_DEPLOYMENT, namespace, body, dry_run=True)
    except kube.ApiError as error:
        if error.status not in (400, 403, 422):
            raise
        message = json.loads(error.body).get("message", error.body) if error.body else str(error)
        result.denials = split_denials(message)
        headers = error.headers
    result.warnings = [m.group("text") for raw in headers.get_all("Warning") or []
                       if (m := WARNING.match(raw.strip()))]
    return result


def check_offline(api: kube.Api, agent_namespace: str, agent: str, version: str, tenant: str,
                  environment: str) -> CheckResult:
    """Gather what the deployment webhook would, with the user's reads, and evaluate its policy here."""
    from gl_api import resolution
    from gl_policy import inputs, views
    from gl_policy.engines import RegoEngine

    policy = tenant_policy(api, tenant)
    namespace = environment_namespace(policy, environment)
    body = probe(namespace, agent_namespace, agent, version)
    found = kube.get(api, kube.AGENT, agent_namespace, agent)
    versions = {v["spec"]["version"]: v for v in kube.list_objects(
        api, kube.AGENT_VERSION, agent_namespace, field_selector=f"spec.agent={agent}")}
    chosen = resolution.resolve(body["spec"], {v: (obj.get("status") or {}).get("state")
                                               for v, obj in versions.items()})
    chosen_version = versions.get(chosen) if chosen else None
    others = [d for d in kube.list_objects(api, kube.AGENT_DEPLOYMENT, namespace)
              if d["metadata"]["name"] != body["metadata"]["name"]]
    # The same views the webhook server caches, so the policy reads exactly what it would there.
    data = inputs.deployment(body, kube.whoami(api), "CREATE", views.agent(found) if found else None,
                             views.Version.of(chosen_version).as_input() if chosen_version else None, None,
                             views.tenant(policy), len(others), _owner(api, policy, agent_namespace))
    verdict = RegoEngine().evaluate("deployment", data)
    return CheckResult(namespace=namespace, denials=verdict.deny, warnings=verdict.warn)


def _owner(api: kube.Api, policy: dict, namespace: str) -> str | None:
    """The TenantPolicy owning ``namespace``, as far as this user may see (None when unknown)."""
    def owned(tenant: dict) -> bool:
        spec = tenant.get("spec") or {}
        return namespace in (spec.get("teamNamespaces") or []) or any(
            env.get("namespace") == namespace for env in spec.get("environments") or [])

    if owned(policy):
        return policy["metadata"]["name"]
    try:
        return next((t["metadata"]["name"] for t in kube.list_objects(api, kube.TENANT_POLICY) if owned(t)), None)
    except kube.ApiError:  # not allowed to list tenants: the webhook, which may, decides
        return None


@commands.command("check")
@guarded
def agent_check(
    reference: Annotated[str, typer.Argument(metavar="AGENT@VERSION", help="e.g. gl-cbam-calculator-v2@2.4.0")],
    tenant_name: Annotated[str, typer.Option("--tenant", "-t", help="TenantPolicy name")],
    environment: Annotated[str, typer.Option("--environment", "-e", help="dev, staging or production")],
    offline: Annotated[bool, typer.Option("--offline", help="evaluate the policies here with the embedded engine, "
                                                            "on what your own credentials can read, instead of a "
                                                            "dry run through the registry's webhooks")] = False,
    namespace: Namespace = None, kubeconfig: Kubeconfig = None, context: Context = None, debug: Debug = False,
) -> None:
    """Would AGENT@VERSION be admitted in a tenant environment? Asks the registry's policies, creates nothing.

    By default the API server asks the webhooks with a server-side dry run (you need create on
    agentdeployments in the environment's namespace). With [bold]--offline[/bold] the same deployment policy
    is evaluated locally by the embedded regopy engine, on the TenantPolicy, the Agent, its AgentVersions and
    the environment's AgentDeployments as your own credentials read them.

    [bold]Example[/bold]: gl agent check gl-cbam-calculator-v2@2.4.0 --tenant customer-abc-123 --environment production
    """
    from rich.table import Table

    from gl_api import naming

    try:
        ref = naming.AgentVersionRef.parse(reference)
        s = session(kubeconfig, context, namespace)
        result = (check_offline if offline else check_online)(s.api, s.namespace, ref.agent, ref.version,
                                                              tenant_name, environment)
    except (naming.InvalidReference, CheckError) as error:  # a mistake in the question itself: exit 2
        fail(str(error), 2)
    where = f"namespace {result.namespace}, evaluated offline" if offline else f"namespace {result.namespace}"
    table = Table(title=f"{ref} in {tenant_name}/{environment} ({where})")
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
