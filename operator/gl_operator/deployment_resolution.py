"""Which version an AgentDeployment runs, given the agent's versions and the tenant environment (pure).

- The environment is the TenantPolicy environment whose namespace is the deployment's; its
  ``allowedStates`` (default as the deployment policy: dev draft/experimental/certified,
  staging experimental/certified, production certified) say which lifecycle states may run.
  A deprecated version was certified: it is admitted wherever certified is, and runs with a
  Warning. Outside any tenant environment nothing runs (Failed), as admission would refuse it.
- An exact ``spec.version`` is taken as written: missing or not yet accepted waits (Pending);
  retired is refused, and a state the environment does not admit fails (Failed, saying which).
- A ``versionRange`` or ``channel`` picks the highest version it selects among those the
  environment admits, skipping versions rolled back after an SLO breach
  (``status.rolledBackVersions``): a newer version is picked as soon as it appears. Changing the
  ``registry.greenlang.ai/retry`` annotation forgets the rolled-back versions (its value is kept
  in ``status.handledRetry``, so one change is one retry).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gl_api import labels, resolution
from gl_api.lifecycle import State

DEFAULT_ALLOWED = {"dev": ("draft", "experimental", "certified"), "staging": ("experimental", "certified"),
                   "production": ("certified",)}


class Outcome(str, enum.Enum):
    resolved = "Resolved"
    pending = "Pending"
    failed = "Failed"


@dataclass(frozen=True)
class Resolution:
    outcome: Outcome
    reason: str
    message: str
    version: str | None = None
    state: str | None = None
    warning: str | None = None
    """Set when the version runs but should not for long (deprecated)."""
    held_back: str | None = None
    """The version the spec would select were it not rolled back (the deployment runs an older one)."""
    rolled_back: list[str] = field(default_factory=list)
    handled_retry: str | None = None


def environment(tenant_policies: Iterable[Mapping[str, Any]], namespace: str) -> tuple[str, dict[str, Any]] | None:
    """(tenant name, environment) whose namespace is ``namespace``, or None."""
    for tenant in tenant_policies:
        for env in (tenant.get("spec") or {}).get("environments") or []:
            if env.get("namespace") == namespace:
                return tenant["metadata"]["name"], dict(env)
    return None


def allowed_states(env: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(env.get("allowedStates") or DEFAULT_ALLOWED.get(env.get("name", ""), ()))


def admitted(state: str | None, allowed: tuple[str, ...]) -> bool:
    if state in (None, State.retired.value):
        return False
    return state in allowed or (state == State.deprecated.value and State.certified.value in allowed)


def _retry(glad: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """The rolled-back versions still skipped, and the retry annotation value handled."""
    status = glad.get("status") or {}
    rolled_back = list(status.get("rolledBackVersions") or [])
    handled = status.get("handledRetry")
    wanted = ((glad["metadata"].get("annotations") or {}).get(labels.RETRY) or "").strip() or None
    if wanted is not None and wanted != handled:
        return [], wanted
    return rolled_back, handled


def selector(spec: Mapping[str, Any]) -> str:
    """How the spec chooses, as the Events and conditions quote it."""
    if spec.get("version"):
        return f"version {spec['version']}"
    if spec.get("versionRange"):
        return f"versionRange '{spec['versionRange']}'"
    return f"channel {spec.get('channel')}"


def resolve(glad: Mapping[str, Any], versions: Mapping[str, str | None],
            tenant: tuple[str, Mapping[str, Any]] | None) -> Resolution:
    """Decide for ``glad`` among the agent's versions (``{version: state}``) in the tenant environment."""
    spec = glad["spec"]
    agent = spec["agent"]
    rolled_back, handled = _retry(glad)
    common = {"rolled_back": rolled_back, "handled_retry": handled}
    namespace = glad["metadata"]["namespace"]
    if tenant is None:
        return Resolution(Outcome.failed, "NoTenantEnvironment",
                          f"namespace {namespace} is not an environment of any TenantPolicy; deploy into a tenant "
                          "environment's namespace", **common)
    tenant_name, env = tenant
    allowed = allowed_states(env)
    where = (f"tenant {tenant_name} allows only {' or '.join(allowed) or 'no'} versions in {env.get('name')} "
             f"(TenantPolicy {tenant_name}, environments[{env.get('name')}].allowedStates)")

    if spec.get("version"):
        version = str(spec["version"])
        ref = f"{agent}@{version}"
        if version not in versions:
            return Resolution(Outcome.pending, "VersionNotFound",
                              f"{ref} is not published; waiting for it", **common)
        state = versions[version]
        if state is None:
            return Resolution(Outcome.pending, "VersionNotAccepted",
                              f"{ref} is not accepted into the registry yet", **common)
        if state == State.retired.value:
            return Resolution(Outcome.failed, "VersionRetired",
                              f"{ref} is retired and may not run; choose a supported version", state=state, **common)
        if not admitted(state, allowed):
            return Resolution(Outcome.failed, "VersionNotAllowed", f"{ref} is {state}; {where}", state=state,
                              **common)
        return _chosen(agent, version, state, held_back=version if version in rolled_back else None, **common)

    live = {v: s for v, s in versions.items() if admitted(s, allowed)}
    if spec.get("channel"):
        live = {v: s for v, s in live.items() if s == spec["channel"]}
    best_of_all = resolution.resolve(spec, live)
    best = resolution.resolve(spec, {v: s for v, s in live.items() if v not in rolled_back})
    if best is None:
        skipped = sorted(v for v, s in versions.items() if s and not admitted(s, allowed)
                         and resolution.resolve(spec, {v: State.certified.value}) == v)
        detail = f"; skipped {', '.join(skipped)} ({where})" if skipped else ""
        if best_of_all:
            detail += f"; {best_of_all} was rolled back after an SLO breach"
        return Resolution(Outcome.pending, "NoMatchingVersion",
                          f"no version of {agent} matches {selector(spec)} in a state {env.get('name')} admits"
                          f"{detail}; waiting for one", held_back=best_of_all, **common)
    return _chosen(agent, best, live[best], held_back=best_of_all if best_of_all != best else None, **common)


def _chosen(agent: str, version: str, state: str | None, *, held_back: str | None, rolled_back: list[str],
            handled_retry: str | None) -> Resolution:
    ref = f"{agent}@{version}"
    warning = None
    if state == State.deprecated.value:
        warning = f"{ref} is deprecated; move this deployment to its replacement before it retires"
    message = f"{ref} ({state})"
    if held_back:
        message += f"; {held_back} was rolled back after an SLO breach and is not retried (annotate " \
                   f"{labels.RETRY} to retry)"
    return Resolution(Outcome.resolved, "Resolved", message, version, state, warning, held_back, rolled_back,
                      handled_retry)
