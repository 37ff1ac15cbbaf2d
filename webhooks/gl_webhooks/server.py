"""The webhook server: AdmissionReviews over TLS, probes and metrics over plain HTTP.

TLS certificates are re-read when their files change (cert-manager and the chart rotate them
in place), so a rotation needs no restart: connections opened after it get the new
certificate. ``/readyz`` answers 200 only once every cache has synced and the policy engine
has answered for every decision; ``/healthz`` answers while the process serves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from gl_policy import engines
from gl_webhooks.admission import Admission, Answer, Request

log = logging.getLogger(__name__)
RELOAD_SECONDS = 5


class ReloadingCertificate:
    """An SSLContext whose certificate and key are reloaded when their files change."""

    def __init__(self, cert: Path, key: Path):
        self.cert, self.key = Path(cert), Path(key)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp = self._read_stamp()
        self.context.load_cert_chain(self.cert, self.key)

    def _read_stamp(self) -> tuple[float, float, int, int]:
        cert, key = os.stat(self.cert), os.stat(self.key)
        return cert.st_mtime, key.st_mtime, cert.st_ino, key.st_ino

    def reload_if_changed(self) -> bool:
        try:
            stamp = self._read_stamp()
            if stamp == self._stamp:
                return False
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as error:  # half-written files: keep serving the old pair
            log.warning("could not reload the serving certificate %s: %s; keeping the current one", self.cert, error)
            return False
        self._stamp = stamp
        log.info("reloaded the serving certificate %s", self.cert)
        return True

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_SECONDS)
            self.reload_if_changed()


def admission_app(admission: Admission) -> web.Application:
    async def review(request: web.Request) -> web.Response:
        webhook = request.match_info["webhook"]
        if webhook not in admission.webhooks:
            raise web.HTTPNotFound(text=f"no webhook {webhook}; serving {', '.join(sorted(admission.webhooks))}")
        try:
            parsed = Request.of(json.loads(await request.read()))
        except (ValueError, KeyError, TypeError) as error:
            raise web.HTTPBadRequest(text=f"not an AdmissionReview: {error}") from error
        try:
            answer = await admission.answer(webhook, parsed)
        except Exception:  # a bug must refuse, never allow
            log.exception("webhook %s failed on %s", webhook, parsed.uid)
            answer = Answer(False, 500, f"the registry's {webhook} webhook failed; the request is refused "
                                        "(fail closed); see the webhook server's log")
        return web.Response(body=json.dumps(answer.review(parsed.uid)), content_type="application/json")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/{webhook}", review)
    return app


@dataclass
class Readiness:
    admission: Admission
    problem: str = "starting"

    async def check(self) -> str | None:
        """None when ready, else why not."""
        if not self.admission.caches.synced():
            return "caches not synced yet"
        try:
            await engines.check_ready(self.admission.engine)
        except engines.PolicyError as error:
            return str(error)
        return None


def probe_app(readiness: Readiness) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        problem = await readiness.check()
        if problem:
            return web.Response(status=503, text=f"not ready: {problem}")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(admission: Admission, address: tuple[str, int], certificate: ReloadingCertificate,
                probe_address: tuple[str, int], stop: asyncio.Event) -> None:
    """Serve until ``stop`` is set; then finish the requests in flight and return."""
    runners = []
    for app, (host, port), context in ((admission_app(admission), address, certificate.context),
                                       (probe_app(Readiness(admission)), probe_address, None)):
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=10)
        await runner.setup()
        await web.TCPSite(runner, host, port, ssl_context=context, backlog=1024).start()
        runners.append(runner)
    log.info("serving admission webhooks on https://%s:%d, probes on http://%s:%d", *address, *probe_address)
    reloader = asyncio.create_task(certificate.watch())
    try:
        await stop.wait()
    finally:
        reloader.cancel()
        for runner in runners:
            await runner.cleanup()
