"""The periodic safety net: re-check everything that waits on time or on other objects.

Handlers react to changes at once; this loop catches what no watch event announces (a soak
period ending, a sunset passing, an Agent created after its versions) and anything a failed
handler left behind. It needs no finalizers and no per-object timers, and a restarted
operator simply runs it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from kubernetes import client

from gl_api import conditions, kinds
from gl_api.lifecycle import State
from gl_kube import objects
from gl_operator import (agent_status, deprecation_notices, metrics, orphans, promotions, publishing,
                         retirement, tenant_provisioning)
from gl_operator.config import OperatorConfig

log = logging.getLogger(__name__)


def _safely(kind: str, namespace: str | None, name: str, work: Callable[[], None]) -> None:
    try:
        with orphans.tolerated(kind, namespace, name):
            work()
    except Exception:  # one broken object must not stop the others
        where = f"{namespace}/{name}" if namespace else name
        log.exception("resync of %s %s failed; retrying on the next pass", kind, where)


def _summary_view(version: dict[str, Any]) -> dict[str, Any]:
    """What an Agent's summary reads of a version (agent_status.summarize)."""
    meta = version["metadata"]
    return {"metadata": {k: meta[k] for k in ("name", "deletionTimestamp") if k in meta},
            "spec": {"version": version["spec"]["version"]}, "status": {"state": (version.get("status") or {}).get("state")}}


def resync_once(api: client.ApiClient, config: OperatorConfig) -> None:
    # Page by page, keeping only what the summaries need: a pass holds one page of bodies, not all.
    # A pass over many versions outlives etcd's compaction: it carries on past 410 Expired (each
    # version is checked on its own), where it used to fail (`python -m bench memory 10k`).
    by_state: Counter[str | None] = Counter()
    by_agent: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    now = conditions.now()
    for page in objects.pages(api, kinds.AGENT_VERSION, resume_expired=True):
        for version in page["items"]:
            meta = version["metadata"]
            by_state[(version.get("status") or {}).get("state")] += 1
            by_agent[(meta["namespace"], version["spec"]["agent"])].append(_summary_view(version))
            if not (version.get("status") or {}).get("state") or publishing.labels_drifted(version):
                _safely("AgentVersion", meta["namespace"], meta["name"],
                        lambda: publishing.reconcile_version(api, meta["namespace"], meta["name"]))
            elif retirement.due(version, now):
                _safely("AgentVersion", meta["namespace"], meta["name"],
                        lambda: retirement.retire_if_due(api, config, meta["namespace"], meta["name"]))
    for state in State:
        metrics.VERSIONS.labels(state=state.value).set(by_state.get(state.value, 0))
    for promotion in objects.list_objects(api, kinds.PROMOTION):
        meta = promotion["metadata"]
        if (promotion.get("status") or {}).get("phase") not in promotions.TERMINAL:
            _safely("Promotion", meta["namespace"], meta["name"],
                    lambda: promotions.reconcile_promotion(api, config, meta["namespace"], meta["name"]))
    for page in objects.pages(api, kinds.AGENT, resume_expired=True):
        for agent in page["items"]:
            meta = agent["metadata"]
            # What the pass read may be older than what the event handler wrote since: an Agent that
            # looks out of date is read again with its versions before anything is written.
            if not agent_status.is_current(agent, by_agent.get((meta["namespace"], meta["name"]), [])):
                _safely("Agent", meta["namespace"], meta["name"],
                        lambda: agent_status.reconcile_agent(api, meta["namespace"], meta["name"]))
    for tenant in objects.list_objects(api, kinds.TENANT_POLICY):
        name = tenant["metadata"]["name"]
        if not tenant["metadata"].get("deletionTimestamp"):
            _safely("TenantPolicy", None, name, lambda: tenant_provisioning.reconcile_tenant(api, name))
    for deployment in objects.list_objects(api, kinds.AGENT_DEPLOYMENT):
        meta = deployment["metadata"]
        _safely("AgentDeployment", meta["namespace"], meta["name"],
                lambda: deprecation_notices.reconcile_deployment(api, meta["namespace"], meta["name"]))


async def run_forever(api: client.ApiClient, config: OperatorConfig) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            await loop.run_in_executor(None, resync_once, api, config)
        except Exception:
            log.exception("resync pass failed")
        await asyncio.sleep(config.resync_seconds)
