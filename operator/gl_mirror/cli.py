"""`gl-mirror run`: keep the Postgres mirror of the registry current."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from typing import Any

import prometheus_client
import psycopg

from gl_kube import logs
from gl_kube.client import api_client
from gl_mirror import migrations
from gl_mirror.mirror import Mirror

log = logging.getLogger("gl_mirror")
EPILOG = """examples:
  gl-mirror run --dsn postgresql://registry@127.0.0.1:5432/greenlang
  GL_MIRROR_DSN=postgresql://... gl-mirror run --kubeconfig ~/.kube/config --metrics-address 127.0.0.1:9091
"""


def _migrate_when_ready(dsn: str, stop: threading.Event) -> None:
    """Postgres may start after us: apply migrations as soon as it answers."""
    backoff = 0.5
    while not stop.is_set():
        try:
            applied = migrations.apply(dsn)
            if applied:
                log.info("applied migrations %s", applied)
            return
        except psycopg.OperationalError as error:
            log.warning("Postgres not reachable yet (%s); retrying in %.1fs", str(error).strip(), backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 10)


def run(args: argparse.Namespace) -> int:
    logs.configure(args.log_format, args.verbose)
    if not args.dsn:
        raise SystemExit("gl-mirror: --dsn (or $GL_MIRROR_DSN) is required, e.g. postgresql://user@host:5432/db")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.metrics_address != "off":
        host, _, port = args.metrics_address.rpartition(":")
        prometheus_client.start_http_server(int(port), addr=host or "0.0.0.0")
    _migrate_when_ready(args.dsn, stop)
    api = api_client(args.kubeconfig, args.context)
    mirror = Mirror(api, args.dsn)
    mirror.start()
    log.info("mirroring into Postgres")
    if args.api_address:
        _serve_query_api(args, api)
    stop.wait()
    mirror.stop()
    return 0


def _serve_query_api(args: argparse.Namespace, api: Any) -> None:
    """Serve search and audit to the aggregation layer, trusting the API server's request-header CA."""
    from kubernetes import client

    from gl_mirror import query_api

    if not (args.api_cert and args.api_key):
        raise SystemExit("gl-mirror: --api-address needs --api-cert and --api-key")
    config_map = client.CoreV1Api(api).read_namespaced_config_map("extension-apiserver-authentication", "kube-system")
    ca_pem = config_map.data.get("requestheader-client-ca-file")
    if not ca_pem:
        raise SystemExit("gl-mirror: the API server has no request-header CA (start it with --requestheader-* flags)")
    allowed = tuple(json.loads(config_map.data.get("requestheader-allowed-names") or "[]")) or ("front-proxy-client",)
    ca_file = tempfile.NamedTemporaryFile("w", suffix=".crt", delete=False)
    ca_file.write(ca_pem)
    ca_file.close()
    host, _, port = args.api_address.rpartition(":")
    query_api.serve(query_api.QueryService(args.dsn, api, allowed), (host or "0.0.0.0", int(port)), args.api_cert,
                    args.api_key, ca_file.name)
    log.info("query API listening on %s", args.api_address)


def verify_audit(args: argparse.Namespace) -> int:
    from gl_mirror import audit

    with psycopg.connect(args.dsn) as conn:
        problems = audit.verify(conn)
        (rows,) = conn.execute("SELECT count(*) FROM audit_events").fetchone()
    for row_id, problem in problems:
        print(f"audit row {row_id}: {problem}")
    if problems:
        print(f"audit trail NOT intact: {len(problems)} of {rows} rows fail verification", file=sys.stderr)
        return 1
    print(f"audit trail intact: {rows} rows, every hash and link verified")
    return 0


def expire_audit(args: argparse.Namespace) -> int:
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        (dropped,) = conn.execute("SELECT audit_expire(%s)", (args.retention_days,)).fetchone()
    print(f"dropped {dropped} monthly partitions older than {args.retention_days} days")
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="gl-mirror", description=__doc__, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = main.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run", help="mirror until interrupted", epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    runner.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="kubeconfig (default: $KUBECONFIG)")
    runner.add_argument("--context", help="kubeconfig context")
    runner.add_argument("--dsn", default=os.environ.get("GL_MIRROR_DSN"), help="Postgres DSN (default: $GL_MIRROR_DSN)")
    runner.add_argument("--metrics-address", default="0.0.0.0:9091", help="host:port for metrics, or 'off'")
    runner.add_argument("--api-address", help="host:port to serve the aggregated query API on (TLS); default: off")
    runner.add_argument("--api-cert", help="PEM serving certificate for the query API")
    runner.add_argument("--api-key", help="PEM private key of --api-cert")
    runner.add_argument("--log-format", choices=["json", "plain"], default="json", help="(default: %(default)s)")
    runner.add_argument("-v", "--verbose", action="store_true")
    runner.set_defaults(run=run)
    verifier = commands.add_parser("audit-verify", help="check every audit row's hash and link; exit 1 on tampering")
    verifier.add_argument("--dsn", default=os.environ.get("GL_MIRROR_DSN"), help="Postgres DSN")
    verifier.set_defaults(run=verify_audit)
    expiry = commands.add_parser("audit-expire", help="drop monthly audit partitions older than the retention")
    expiry.add_argument("--dsn", default=os.environ.get("GL_MIRROR_DSN"), help="Postgres DSN")
    expiry.add_argument("--retention-days", type=int, default=2555, help="keep this many days (default: %(default)s)")
    expiry.set_defaults(run=expire_audit)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
