"""What admission decisions look up, held in memory and kept current by watches.

Four caches, each an informer over one kind, each keeping only what the policies read
(``gl_policy.views``): TenantPolicies by the namespaces they own, Agents by name,
AgentVersions by name, by agent, by image digest and by artifact digest, AgentDeployments by namespace. A request
never lists; an object asked for by name and not cached yet (created a moment ago, before its
watch event arrived) costs one GET.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable
from typing import Any

from kubernetes import client
from prometheus_client import Counter

from gl_api import kinds
from gl_kube import objects
from gl_kube.informer import Informer, key_of, wait_synced
from gl_policy import views

MISSES = Counter("greenlang_registry_webhook_cache_misses_total",
                 "Lookups by name that were not cached and went to the API server (one GET).", ["kind"])


def _owned_namespaces(tenant: dict[str, Any]) -> Iterable[Hashable]:
    """Its environments' namespaces and its team namespaces: what the tenant owns."""
    return [env["namespace"] for env in tenant["spec"].get("environments") or []] + \
        list(tenant["spec"].get("teamNamespaces") or [])


class Caches:
    def __init__(self, api: client.ApiClient):
        self.api = api
        self.tenants: Informer[dict[str, Any]] = Informer(
            api, kinds.TENANT_POLICY, views.tenant, {"namespace": _owned_namespaces})
        self.agents: Informer[dict[str, Any]] = Informer(api, kinds.AGENT, views.agent)
        self.versions: Informer[views.Version] = Informer(
            api, kinds.AGENT_VERSION, views.Version.of,
            {"agent": lambda v: [(v.namespace, v.agent)], "digest": lambda v: [v.digest] if v.digest else [],
             "artifact": lambda v: [v.artifact_digest] if v.artifact_digest else []})
        self.deployments: Informer[tuple[str, str]] = Informer(
            api, kinds.AGENT_DEPLOYMENT, key_of, {"namespace": lambda key: [key[0]]})

    @property
    def informers(self) -> list[Informer[Any]]:
        return [self.tenants, self.agents, self.versions, self.deployments]

    def start(self) -> None:
        for informer in self.informers:
            informer.start()

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()

    def synced(self) -> bool:
        return all(informer.synced.is_set() for informer in self.informers)

    def wait_synced(self, timeout: float) -> bool:
        return wait_synced(self.informers, timeout)

    # ---------------------------------------------------------------- tenants

    def tenant_of_namespace(self, namespace: str) -> dict[str, Any] | None:
        """The TenantPolicy that owns ``namespace`` (an environment or a team namespace of it), if any."""
        found = self.tenants.store.by("namespace", namespace)
        return found[0] if found else None

    def owning_tenants(self, namespace: str) -> list[dict[str, Any]]:
        """What publish and promotion rules read: the namespace's own tenant, never the tenants the
        user happens to belong to elsewhere (their rights must not follow them into other namespaces)."""
        tenant = self.tenant_of_namespace(namespace)
        return [tenant] if tenant else []

    # ---------------------------------------------------------------- agents and versions

    async def agent(self, namespace: str, name: str) -> dict[str, Any] | None:
        cached = self.agents.store.get((namespace, name))
        if cached is not None:
            return cached
        MISSES.labels(kind=kinds.AGENT.kind).inc()
        found = await asyncio.to_thread(objects.get, self.api, kinds.AGENT, namespace, name)
        return views.agent(found) if found else None

    async def version(self, namespace: str, name: str) -> views.Version | None:
        cached = self.versions.store.get((namespace, name))
        if cached is not None:
            return cached
        MISSES.labels(kind=kinds.AGENT_VERSION.kind).inc()
        found = await asyncio.to_thread(objects.get, self.api, kinds.AGENT_VERSION, namespace, name)
        return views.Version.of(found) if found else None

    def versions_of(self, namespace: str, agent: str) -> list[views.Version]:
        return self.versions.store.by("agent", (namespace, agent))

    def versions_by_digest(self, digests: Iterable[str]) -> dict[str, list[views.Version]]:
        return {digest: self.versions.store.by("digest", digest) for digest in digests}

    def versions_by_artifact(self, digests: Iterable[str]) -> dict[str, list[views.Version]]:
        """AgentVersions by ``spec.artifact.digest``: what the registry's runtime image loads."""
        return {digest: self.versions.store.by("artifact", digest) for digest in digests}

    # ---------------------------------------------------------------- deployments

    def deployments_in(self, namespace: str) -> list[str]:
        return [name for _, name in self.deployments.store.by("namespace", namespace)]
