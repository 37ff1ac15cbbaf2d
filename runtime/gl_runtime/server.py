"""The HTTP surface: invoke a capability, list them, probes and metrics, on one port.

    POST /v1/capabilities/{name}:invoke   JSON object in, JSON object out
    GET  /v1/capabilities                 names and schemas
    GET  /healthz                         200 while the process serves
    GET  /readyz                          200 once the agent is loaded, 503 before and while draining
    GET  /metrics                         Prometheus text

A capability's callable runs in a worker thread, so probes and metrics still answer while a slow
calculation is in flight (and while draining, readyz can say 503).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
from aiohttp import web

from gl_runtime import logs
from gl_runtime.loader import LoadedAgent, LoadedCapability
from gl_runtime.metrics import UNKNOWN_CAPABILITY, Metrics

WORKERS = 8


# nginx's code for a request the client abandoned: measured, never counted as a server error.
CLIENT_CLOSED_REQUEST = 499


class Runtime:
    """What the handlers share: the loaded agent, readiness, the in-flight count."""

    def __init__(self, metrics: Metrics, agent_label: str = "", version_label: str = "") -> None:
        self.metrics = metrics
        self.agent: LoadedAgent | None = None
        self.agent_label, self.version_label = agent_label, version_label
        self.draining = False
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="capability")

    def loaded(self, agent: LoadedAgent) -> None:
        self.agent = agent
        self.agent_label = self.agent_label or agent.manifest.name
        self.version_label = self.version_label or agent.manifest.version
        self.metrics.prepare(self.agent_label, self.version_label, list(agent.capabilities))

    @property
    def ready(self) -> bool:
        return self.agent is not None and not self.draining

    async def drain(self, seconds: float) -> bool:
        """Stop being ready; wait up to ``seconds`` for in-flight requests. True if none is left."""
        self.draining = True
        logs.info("draining", inFlight=self.in_flight, drainSeconds=seconds)
        try:
            await asyncio.wait_for(self.idle.wait(), timeout=seconds)
            return True
        except TimeoutError:
            logs.warning("drain deadline passed with requests still in flight", inFlight=self.in_flight)
            return False


RUNTIME = web.AppKey("runtime", Runtime)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, allow_nan=False))


def _invalid_input(name: str, details: list[dict[str, str]]) -> tuple[int, dict[str, Any]]:
    return 400, {"error": "invalid input", "capability": name, "details": details}


async def _answer(rt: Runtime, capability: LoadedCapability, request: web.Request) -> tuple[int, Any]:
    name = capability.spec.name
    raw = await request.read()
    try:
        document = json.loads(raw)
    except ValueError as error:
        return _invalid_input(name, [{"path": "", "message": f"the request body is not JSON: {error}"}])
    problems = capability.validators.input_problems(document)
    if problems:
        return _invalid_input(name, problems)
    request_id = uuid.uuid4().hex
    try:
        result = await asyncio.get_running_loop().run_in_executor(rt.executor, capability.handler, document)
    except ValueError as error:  # the entry-point contract: ValueError means "this input cannot be processed"
        return 422, {"error": "unprocessable input", "capability": name, "message": str(error)}
    except Exception as error:
        logs.error("capability raised", exc_info=True, capability=name, requestId=request_id,
                   exception=type(error).__name__)
        return 500, {"error": "agent failed", "capability": name, "requestId": request_id,
                     "message": "the agent raised an error; its log has the details under this requestId"}
    problems = capability.validators.output_problems(result)
    if not problems:
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as error:
            problems = [{"path": "", "message": f"not serialisable as JSON: {error}"}]
    if problems:
        logs.error("capability returned output that fails its outputSchema", capability=name, requestId=request_id,
                   details=problems)
        return 500, {"error": "invalid output", "capability": name, "requestId": request_id, "details": problems}
    return 200, result


async def invoke(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    name = request.match_info["name"]
    if rt.agent is None:
        return _json({"error": "not ready", "message": "the agent is still loading"}, 503)
    capability = rt.agent.capabilities.get(name)
    started = time.perf_counter()
    rt.in_flight += 1
    rt.idle.clear()
    gauge = rt.metrics.in_flight.labels(rt.agent_label, rt.version_label)
    gauge.inc()
    status = 500
    try:
        if capability is None:
            status, body = 404, {"error": "unknown capability", "capability": name,
                                 "known": sorted(rt.agent.capabilities)}
        else:
            status, body = await _answer(rt, capability, request)
        return _json(body, status)
    except (asyncio.CancelledError, ConnectionError, aiohttp.ClientError):
        status = CLIENT_CLOSED_REQUEST  # the caller went away mid-request: not the agent's error
        raise
    finally:
        elapsed = time.perf_counter() - started
        gauge.dec()
        rt.in_flight -= 1
        if rt.in_flight == 0:
            rt.idle.set()
        rt.metrics.observe(rt.agent_label, rt.version_label, name if capability else UNKNOWN_CAPABILITY, status,
                           elapsed)
        if status >= 500 or status == 422:
            logs.info("invoke", capability=name, code=status, durationMs=round(elapsed * 1000, 3))


async def list_capabilities(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    if rt.agent is None:
        return _json({"error": "not ready", "message": "the agent is still loading"}, 503)
    return _json({"agent": rt.agent_label, "version": rt.version_label,
                  "capabilities": [c.spec.to_k8s() for c in rt.agent.capabilities.values()]})


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    if rt.ready:
        return _json({"status": "ready"})
    return _json({"status": "draining" if rt.draining else "loading"}, 503)


async def metrics(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    return web.Response(body=rt.metrics.exposition(), headers={"Content-Type": rt.metrics.content_type})


def build_app(rt: Runtime) -> web.Application:
    app = web.Application()
    app[RUNTIME] = rt
    app.router.add_post("/v1/capabilities/{name:[^/:]+}:invoke", invoke)
    app.router.add_get("/v1/capabilities", list_capabilities)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
