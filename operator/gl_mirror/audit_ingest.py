"""The listener the API server's audit webhook backend posts to: `POST /audit/v1/events`.

Mutual TLS: a client must present a certificate from ``--audit-client-ca`` (a CA for this link
alone) whose common name is one of ``--audit-allowed-names``; anyone else is refused before a
byte is read. A batch is answered 200 once it is on disk in the spool (``audit_spool``), which
appends it to the trail behind every batch before it, at once or when Postgres is back; the
answer names the rows stored when that took less than ``WAIT`` seconds. Only a batch that cannot
be written to disk gets 503, and the API server sends it again (it retries on any error).
"""

from __future__ import annotations

import json
import logging
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from gl_mirror import audit_spool, json_http, request_log

log = logging.getLogger(__name__)
PATH = "/audit/v1/events"
# 400 events at RequestResponse level, each with its objects, stay far below this.
MAX_BODY = 64 * 1024 * 1024
# How long an answer waits for the batch's rows to be committed; the API server's own limit is 30 s.
WAIT = 5.0
BATCHES = Counter("greenlang_registry_mirror_apiserver_audit_batches_total",
                  "Audit batches received from the API server, by HTTP answer.", ["code"])


def _sender(connection: Any) -> str | None:
    peer = connection.getpeercert() if isinstance(connection, ssl.SSLSocket) else None
    names = [value for field in (peer or {}).get("subject", ()) for key, value in field if key == "commonName"]
    return names[0] if names else None


def _handler(spool: audit_spool.Spool, flusher: audit_spool.Flusher, allowed_names: tuple[str, ...]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the API server keeps its connection open between batches
        timeout = 60

        def _send(self, code: int, body: dict[str, Any]) -> None:
            BATCHES.labels(code=str(code)).inc()
            json_http.send_json(self, code, body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] != PATH:
                self._send(404, {"message": f"unknown path {self.path}: the API server posts to {PATH}"})
                return
            sender = _sender(self.connection)
            if sender not in allowed_names:
                self._send(403, {"message": f"client certificate {sender!r} may not send audit events; allowed: "
                                            f"{', '.join(allowed_names)} (--audit-allowed-names)"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                self._send(413, {"message": f"a batch of {length} bytes exceeds {MAX_BODY}: lower "
                                            "--audit-webhook-batch-max-size"})
                return
            body = self.rfile.read(length)
            try:
                found = request_log.records(json.loads(body or b"null"))
            except ValueError as error:  # json.JSONDecodeError is one
                self._send(400, {"message": f"not an audit batch: {error}"})
                return
            if not found:
                self._send(200, {"stored": 0, "duplicates": 0})
                return
            try:
                name = spool.add(body, found[0].audit_id, len(found))
            except OSError as error:
                log.error("could not spool %d audit events (%s); the API server will send them again", len(found),
                          error)
                self._send(503, {"message": "the audit spool cannot be written now; send the batch again"})
                return
            # Committed by now, as a rule; if not, the batch is on disk and appended when Postgres answers.
            self._send(200, flusher.outcome(name, WAIT) or {"spooled": name})

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("audit ingest: " + format, *args)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A refused handshake (no certificate, another CA) is the stranger's problem, not a crash.
        log.info("audit ingest: connection from %s failed: %s", client_address[0], sys.exc_info()[1])


def serve(dsn: str, address: tuple[str, int], certfile: str, keyfile: str, client_ca: str,
          allowed_names: tuple[str, ...], spool_dir: Path) -> ThreadingHTTPServer:
    """Start the HTTPS listener in a thread; only clients with a certificate from ``client_ca`` get past TLS.

    What an earlier run left in ``spool_dir`` is appended first; Postgres need not be up yet."""
    spool = audit_spool.Spool(spool_dir)
    flusher = audit_spool.Flusher(dsn, spool)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    context.load_verify_locations(cafile=client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    server = _Server(address, _handler(spool, flusher, allowed_names))
    # The handshake happens in each connection's own thread, so one slow client holds up no other.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    flusher.start()
    threading.Thread(target=server.serve_forever, name="audit-ingest", daemon=True).start()
    return server
