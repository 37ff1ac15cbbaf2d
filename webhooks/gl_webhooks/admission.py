"""Answer the API server's AdmissionReviews: context from the caches, a decision from the policy engine.

One coroutine per webhook (named by its URL path, see ``configuration.py``). Denials carry the
policy's messages back to ``kubectl apply``; ``warn`` results become admission warnings
(``Warning: …``). An engine that cannot answer refuses the request (fail closed, 503). Nothing
here lists objects: lookups come from ``caches``, at most one GET on a cache miss.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from gl_api import conditions, kinds, labels, naming, resolution
from gl_api.models import EnvironmentName
from gl_kube import access, events
from gl_policy import inputs, views
from gl_policy.engines import Engine, PolicyError
from gl_webhooks import metrics, stamping
from gl_webhooks.caches import Caches

log = logging.getLogger(__name__)
COMPONENT = "greenlang-registry-webhooks"


@dataclass(frozen=True)
class Request:
    """The parts of an AdmissionReview request the webhooks use."""

    uid: str
    operation: str
    namespace: str
    obj: dict[str, Any]
    old: dict[str, Any] | None
    userinfo: dict[str, Any]
    dry_run: bool

    @classmethod
    def of(cls, review: dict[str, Any]) -> Request:
        request = review["request"]
        return cls(uid=request["uid"], operation=request["operation"], namespace=request.get("namespace") or "",
                   obj=request.get("object") or {}, old=request.get("oldObject"),
                   userinfo=request.get("userInfo") or {}, dry_run=bool(request.get("dryRun")))

    @property
    def spec(self) -> dict[str, Any]:
        return self.obj.get("spec") or {}


@dataclass
class Answer:
    allowed: bool = True
    code: int = 200
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    patch: list[dict[str, Any]] | None = None

    def review(self, uid: str) -> dict[str, Any]:
        response: dict[str, Any] = {"uid": uid, "allowed": self.allowed}
        if not self.allowed:
            response["status"] = {"code": self.code, "message": self.message}
        if self.warnings:
            response["warnings"] = self.warnings
        if self.patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(self.patch).encode()).decode()
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def denial_message(denials: list[str]) -> str:
    """One denial as it is; several as a list kubectl prints one per line."""
    if len(denials) == 1:
        return denials[0]
    return f"{len(denials)} policy violations:\n" + "\n".join(f"- {message}" for message in denials)


class Admission:
    """The webhooks' shared state: caches, the policy engine, the registry operator's identity and the
    digests of the registry's runtime images (judged by the artifact they load, ``GL_ARTIFACT_DIGEST``)."""

    def __init__(self, caches: Caches, engine: Engine, api: client.ApiClient, operator_user: str,
                 runtime_images: Sequence[str] = ()):
        self.caches, self.engine, self.api, self.operator_user = caches, engine, api, operator_user
        self.runtime_digests = frozenset(d for d in map(views.image_digest, runtime_images) if d)
        self.webhooks: dict[str, Callable[[Request], Awaitable[Answer]]] = {
            "publish": self.publish, "promotion": self.promotion, "approval": self.approval,
            "deployment": self.deployment, "status-agentversions": self.status_write,
            "status-promotions": self.status_write, "images-pods": self.images, "images-deployments": self.images,
            "promotion-defaults": self.promotion_defaults, "tenancy": self.tenancy,
        }

    async def answer(self, webhook: str, request: Request) -> Answer:
        with metrics.LATENCY.labels(webhook=webhook, engine=self.engine.name).time():
            return await self.webhooks[webhook](request)

    async def _decide(self, webhook: str, decision: str, data: dict[str, Any], request: Request) -> Answer:
        try:
            verdict = await self.engine.decide(decision, data)
        except PolicyError as error:
            metrics.DECISIONS.labels(webhook=webhook, result="error").inc()
            log.error("policy engine failed for %s: %s", webhook, error)
            return Answer(False, 503, f"the registry's policy engine did not answer, so the request is refused "
                                      f"(fail closed); retry shortly: {error}")
        if not verdict.deny:
            metrics.DECISIONS.labels(webhook=webhook, result="allowed").inc()
            return Answer(warnings=verdict.warn)
        metrics.DECISIONS.labels(webhook=webhook, result="denied").inc()
        message = denial_message(verdict.deny)
        if not request.dry_run:  # the audit trail keeps real refusals, not `gl agent check`
            asyncio.get_running_loop().run_in_executor(
                None, events.record_denial, self.api, request.obj, request.userinfo.get("username", "unknown"),
                message, COMPONENT)
        return Answer(False, 403, message, verdict.warn)

    # ---------------------------------------------------------------- registry kinds

    async def publish(self, request: Request) -> Answer:
        agent = await self.caches.agent(request.namespace, request.spec["agent"])
        data = inputs.publish(request.obj, request.userinfo, request.operation, agent,
                              self.caches.owning_tenants(request.namespace))
        return await self._decide("publish", "publish", data, request)

    async def promotion(self, request: Request) -> Answer:
        version = None
        try:
            ref = naming.AgentVersionRef.parse(request.spec["agentVersion"])
            found = await self.caches.version(request.namespace, ref.object_name)
            version = found.as_input() if found else None
        except naming.InvalidReference:
            pass  # the schema rejects a malformed reference before we are asked
        data = inputs.promotion(request.obj, request.userinfo, request.operation, version,
                                self.caches.owning_tenants(request.namespace))
        return await self._decide("promotion", "promotion", data, request)

    async def approval(self, request: Request) -> Answer:
        old = request.old or {}
        before = (old.get("spec") or {}).get("approvals") or []
        added = [a for a in request.spec.get("approvals") or [] if a not in before]
        user = inputs.user(request.userinfo)
        name = request.obj["metadata"]["name"]
        allowed = bool(added) and await asyncio.to_thread(access.may_approve, self.api, user["username"],
                                                          user["groups"], request.namespace, name)
        requester = ((old.get("metadata") or {}).get("annotations") or {}).get(labels.CREATED_BY, "")
        return await self._decide("approval", "approval", inputs.approval(request.userinfo, requester, added, allowed),
                                  request)

    async def deployment(self, request: Request) -> Answer:
        agent_namespace, agent_name = request.spec["agent"].split("/", 1)
        published = {v.version: v.state for v in self.caches.versions_of(agent_namespace, agent_name)}
        chosen = resolution.resolve(request.spec, published)
        version = await self.caches.version(agent_namespace, naming.object_name(agent_name, chosen)) if chosen else None
        previous = None
        if request.old is not None:
            previous = (request.old.get("status") or {}).get("resolvedVersion") or request.old["spec"].get("version")
        name = request.obj["metadata"].get("name")
        others = [d for d in self.caches.deployments_in(request.namespace) if d != name]
        data = inputs.deployment(request.obj, request.userinfo, request.operation,
                                 await self.caches.agent(agent_namespace, agent_name),
                                 version.as_input() if version else None, previous,
                                 self.caches.tenant_of_namespace(request.namespace), len(others),
                                 ((self.caches.tenant_of_namespace(agent_namespace) or {}).get("metadata") or {})
                                 .get("name"))
        return await self._decide("deployment", "deployment", data, request)

    async def status_write(self, request: Request) -> Answer:
        kind = kinds.BY_KIND[request.obj["kind"]]
        data = inputs.status_write(request.obj, request.old or {}, request.userinfo, self.operator_user)
        return await self._decide(f"status-{kind.plural}", "status_write", data, request)

    async def tenancy(self, request: Request) -> Answer:
        """A TenantPolicy's claims: other tenants' from the cache; the namespaces themselves by GET (a
        TenantPolicy write is rare, and a namespace created a moment ago must count)."""
        name = request.obj["metadata"]["name"]
        claims = set(inputs.claimed_namespaces(request.obj))
        claimed_by = {ns: owner["metadata"]["name"] for ns in claims
                      for owner in self.caches.tenants.store.by("namespace", ns) if owner["metadata"]["name"] != name}
        try:
            existing = await asyncio.to_thread(_read_namespaces, self.api, sorted(claims))
        except PolicyError as error:
            return Answer(False, 503, f"{error}; the request is refused (fail closed); retry shortly")
        data = inputs.tenancy(request.obj, existing, claimed_by)
        return await self._decide("tenancy", "tenancy", data, request)

    # ---------------------------------------------------------------- workloads in production

    async def images(self, request: Request) -> Answer:
        webhook = "images-deployments" if request.obj.get("kind") == "Deployment" else "images-pods"
        tenant = self.caches.tenant_of_namespace(request.namespace)
        environments = {env["namespace"]: env["name"] for env in (tenant or {}).get("spec", {}).get("environments", [])}
        if tenant is None or environments.get(request.namespace) != EnvironmentName.production.value:
            return Answer()  # only tenant production namespaces are guarded
        spec = request.spec["template"]["spec"] if request.obj["kind"] == "Deployment" else request.spec
        digests = {d for d in map(views.image_digest, inputs.pod_images(spec)) if d} - self.runtime_digests
        artifacts = inputs.runtime_artifact_digests(spec, self.runtime_digests)
        data = inputs.images(request.obj, request.namespace, tenant, self.caches.versions_by_digest(digests),
                             self.runtime_digests, self.caches.versions_by_artifact(artifacts))
        return await self._decide(webhook, "images", data, request)

    # ---------------------------------------------------------------- mutation

    async def promotion_defaults(self, request: Request) -> Answer:
        changes = stamping.promotion_defaults(request.operation, request.obj, request.old, request.userinfo,
                                              conditions.now())
        return Answer(patch=stamping.json_patch(changes) or None)


def _read_namespaces(api: client.ApiClient, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
    core = client.CoreV1Api(api)
    found: dict[str, dict[str, Any] | None] = {}
    for name in names:
        try:
            found[name] = api.sanitize_for_serialization(core.read_namespace(name, _request_timeout=5))
        except client.ApiException as error:
            if error.status != 404:
                raise PolicyError(f"could not read namespace {name}: {error.reason}") from error
            found[name] = None
    return found
