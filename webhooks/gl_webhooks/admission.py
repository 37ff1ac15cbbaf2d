"""kopf admission handlers: gather context, ask the policy engine, answer the API server.

Denials carry the policy's message back to ``kubectl apply``; ``warn`` results become admission
warnings (``Warning: …``). An engine that cannot answer refuses the request (fail closed).
Handler ids are the URL paths of the webhooks (``configuration.py``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Callable
from typing import Any

import kopf

from gl_api import GROUP, VERSION, conditions
from gl_operator import events
from gl_webhooks import context, metrics, stamping
from gl_webhooks.engines import PolicyError

log = logging.getLogger(__name__)
REGISTRY_PLURALS = ("agents", "agentversions", "promotions", "tenantpolicies", "agentdeployments")
# Admission answers within the API server's timeout even while reconciles keep kopf's worker
# threads busy: handlers run on a pool of their own.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="admission")


def isolated(function: Callable[..., None]) -> Callable[..., Any]:
    # Not functools.wraps: kopf follows __wrapped__ to decide whether a handler is async, and
    # would then call this coroutine function as a sync one and never await it.
    async def handler(**kwargs: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(function, **kwargs))
    handler.__name__ = handler.__qualname__ = function.__name__
    handler.__doc__ = function.__doc__
    return handler


def _ask(memo: kopf.Memo, webhook: str, decision: str, data: dict[str, Any], warnings: list[str],
         body: Any = None, userinfo: dict[str, Any] | None = None, dryrun: bool = False) -> None:
    engine = memo.engine
    with metrics.LATENCY.labels(webhook=webhook, engine=engine.name).time():
        try:
            verdict = engine.decide(decision, data)
        except PolicyError as error:
            metrics.DECISIONS.labels(webhook=webhook, result="error").inc()
            log.error("policy engine failed for %s: %s", webhook, error)
            raise kopf.AdmissionError(f"the registry's policy engine did not answer, so the request is refused "
                                      f"(fail closed); retry shortly: {error}", code=503) from error
    warnings.extend(verdict.warn)
    if verdict.deny:
        metrics.DECISIONS.labels(webhook=webhook, result="denied").inc()
        message = denial_message(verdict.deny)
        if body is not None and not dryrun:  # the audit trail keeps real refusals, not `gl agent check`
            events.record_denial(memo.api, _plain(body), (userinfo or {}).get("username", "unknown"), message)
        raise kopf.AdmissionError(message, code=403)
    metrics.DECISIONS.labels(webhook=webhook, result="allowed").inc()


def denial_message(denials: list[str]) -> str:
    """One denial as it is; several as a list kubectl prints one per line."""
    if len(denials) == 1:
        return denials[0]
    return f"{len(denials)} policy violations:\n" + "\n".join(f"- {message}" for message in denials)


def _plain(body: Any) -> dict[str, Any]:
    return dict(body) if body is not None else {}


@kopf.on.validate(GROUP, VERSION, "agentversions", id="publish", operations=["CREATE"])
@isolated
def publish(body: kopf.Body, userinfo: dict[str, Any], warnings: list[str], memo: kopf.Memo, dryrun: bool,
            **_: Any) -> None:
    _ask(memo, "publish", "publish", context.publish(memo.api, _plain(body), userinfo, "CREATE"), warnings,
         body, userinfo, dryrun)


@kopf.on.validate(GROUP, VERSION, "promotions", id="promotion", operations=["CREATE"])
@isolated
def promotion(body: kopf.Body, userinfo: dict[str, Any], warnings: list[str], memo: kopf.Memo, dryrun: bool,
              **_: Any) -> None:
    _ask(memo, "promotion", "promotion", context.promotion(memo.api, _plain(body), userinfo, "CREATE"), warnings,
         body, userinfo, dryrun)


@kopf.on.validate(GROUP, VERSION, "promotions", id="approval", operations=["UPDATE"])
@isolated
def approval(body: kopf.Body, old: kopf.Body, userinfo: dict[str, Any], warnings: list[str], memo: kopf.Memo,
             dryrun: bool, **_: Any) -> None:
    _ask(memo, "approval", "approval", context.approval(memo.api, _plain(body), _plain(old), userinfo), warnings,
         body, userinfo, dryrun)


@kopf.on.validate(GROUP, VERSION, "agentdeployments", id="deployment", operations=["CREATE", "UPDATE"])
@isolated
def deployment(body: kopf.Body, old: kopf.Body | None, userinfo: dict[str, Any], operation: str,
               warnings: list[str], memo: kopf.Memo, dryrun: bool, **_: Any) -> None:
    data = context.deployment(memo.api, _plain(body), _plain(old) or None, userinfo, operation)
    _ask(memo, "deployment", "deployment", data, warnings, body, userinfo, dryrun)


@kopf.on.validate(GROUP, VERSION, "agentversions", id="status-agentversions", subresource="status",
                  operations=["UPDATE"])
@kopf.on.validate(GROUP, VERSION, "promotions", id="status-promotions", subresource="status", operations=["UPDATE"])
@isolated
def status_write(body: kopf.Body, old: kopf.Body, userinfo: dict[str, Any], warnings: list[str], memo: kopf.Memo,
                 dryrun: bool, **_: Any) -> None:
    data = context.status_write(_plain(body), _plain(old), userinfo, memo.config.service_account)
    _ask(memo, f"status-{body['kind'].lower()}s", "status_write", data, warnings, body, userinfo, dryrun)


def _images(body: kopf.Body, namespace: str | None, warnings: list[str], memo: kopf.Memo, kind: str) -> None:
    if not namespace:
        return
    tenant = context.tenant_of_namespace(memo.api, namespace)
    environments = {env["namespace"]: env["name"] for env in (tenant or {}).get("spec", {}).get("environments", [])}
    if environments.get(namespace) != "production":
        return  # only tenant production namespaces are guarded
    _ask(memo, f"images-{kind}", "images", context.images(memo.api, _plain(body), namespace, tenant), warnings)


@kopf.on.validate("", "v1", "pods", id="images-pods", operations=["CREATE", "UPDATE"])
@isolated
def pod_images(body: kopf.Body, namespace: str | None, warnings: list[str], memo: kopf.Memo, **_: Any) -> None:
    _images(body, namespace, warnings, memo, "pods")


@kopf.on.validate("apps", "v1", "deployments", id="images-deployments", operations=["CREATE", "UPDATE"])
@isolated
def deployment_images(body: kopf.Body, namespace: str | None, warnings: list[str], memo: kopf.Memo,
                      **_: Any) -> None:
    _images(body, namespace, warnings, memo, "deployments")


def _stamp(body: kopf.Body, old: kopf.Body | None, userinfo: dict[str, Any], operation: str,
           patch: kopf.Patch, **_: Any) -> None:
    plain, previous = _plain(body), (_plain(old) or None)
    for key, value in stamping.annotations(operation, plain, previous, userinfo.get("username", "")).items():
        patch.metadata.setdefault("annotations", {})[key] = value
    if plain.get("kind") == "Promotion":
        for key, value in stamping.promotion_defaults(operation, plain, previous, userinfo, conditions.now()).items():
            patch.setdefault("spec", {})[key] = value


_stamp_handler = isolated(_stamp)
for _plural in REGISTRY_PLURALS:
    kopf.on.mutate(GROUP, VERSION, _plural, id="stamp", operations=["CREATE", "UPDATE"])(_stamp_handler)
