"""`gl-mirror run`: keep the Postgres mirror of the registry current."""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import prometheus_client
import psycopg

from gl_kube import logs
from gl_kube.client import api_client
from gl_mirror import anchor, migrations
from gl_mirror.mirror import Mirror

log = logging.getLogger("gl_mirror")
EPILOG = """examples:
  gl-mirror run --dsn postgresql://registry@127.0.0.1:5432/greenlang
  GL_MIRROR_DSN=postgresql://... gl-mirror run --kubeconfig ~/.kube/config --metrics-address 127.0.0.1:9091
  gl-mirror audit-verify --dsn postgresql://... --kubeconfig ~/.kube/config
  # the API server's audit webhook posts here; batches wait in the spool while Postgres is away
  gl-mirror run --dsn ... --audit-address 0.0.0.0:9443 --audit-cert tls.crt --audit-key tls.key \
      --audit-client-ca apiserver-audit-ca.crt --audit-spool-dir /var/lib/gl-mirror/audit-spool
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
        except migrations.MigrationError as error:
            # A migration that lost a deadlock or a lock wait to a concurrent reader was rolled back
            # whole: apply it again rather than stop the mirror.
            if not isinstance(error.__cause__, (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure,
                                                psycopg.errors.LockNotAvailable)):
                raise
            log.warning("%s; retrying in %.1fs", error, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 10)


def run(args: argparse.Namespace) -> int:
    logs.configure(args.log_format, args.verbose)
    if not args.dsn:
        raise SystemExit("gl-mirror: --dsn (or $GL_MIRROR_DSN) is required, e.g. postgresql://user@host:5432/db")
    try:
        anchor.check_interval(args.anchor_interval)
    except ValueError as error:
        raise SystemExit(f"gl-mirror: {error}") from error
    stop = threading.Event()

    def request_stop(*_: Any) -> None:
        # From another thread: Event.set() in the handler itself would deadlock if the signal came
        # while the main thread held the Event's (non-reentrant) lock.
        threading.Thread(target=stop.set, name="stop", daemon=True).start()
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # `kill -USR1 <pid>` writes every thread's stack to stderr: what a process that will not stop is doing.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    if args.metrics_address != "off":
        host, _, port = args.metrics_address.rpartition(":")
        prometheus_client.start_http_server(int(port), addr=host or "0.0.0.0")
    if args.audit_address:  # before Postgres answers: batches then wait in the spool, not in the API server
        _serve_audit_ingest(args)
    _migrate_when_ready(args.dsn, stop)
    api = api_client(args.kubeconfig, args.context)
    mirror = Mirror(api, args.dsn, deletes_logged=bool(args.audit_address))
    mirror.start()
    anchoring = anchor.Anchoring(api, args.dsn, args.anchor_namespace, args.anchor_interval)
    anchoring.start()
    log.info("mirroring into Postgres; anchoring the audit chain in %s every %gs",
             anchor.location(args.anchor_namespace), args.anchor_interval)
    if args.api_address:
        _serve_query_api(args, api)
    stop.wait()
    anchoring.stop()
    mirror.stop()
    return 0


def _serve_query_api(args: argparse.Namespace, api: Any) -> None:
    """Serve search and audit to the aggregation layer, trusting the API server's request-header CA."""
    from kubernetes import client

    from gl_kube.prometheus import Prometheus
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
    prometheus = Prometheus(args.prometheus_url, timeout=10) if args.prometheus_url else None
    service = query_api.QueryService(args.dsn, api, allowed, anchor_namespace=args.anchor_namespace,
                                     prometheus=prometheus)
    query_api.serve(service, (host or "0.0.0.0", int(port)), args.api_cert, args.api_key, ca_file.name)
    log.info("query API listening on %s", args.api_address)


def _serve_audit_ingest(args: argparse.Namespace) -> None:
    """Listen for the API server's audit batches: first of all, so its retries find us soon after a restart."""
    from gl_mirror import audit_ingest

    missing = [flag for flag, value in (("--audit-cert", args.audit_cert), ("--audit-key", args.audit_key),
                                        ("--audit-client-ca", args.audit_client_ca)) if not value]
    if missing:
        raise SystemExit(f"gl-mirror: --audit-address needs {', '.join(missing)} (the listener serves the API "
                         "server only, over mutual TLS)")
    names = tuple(name.strip() for name in args.audit_allowed_names.split(",") if name.strip())
    if not names:
        raise SystemExit("gl-mirror: --audit-allowed-names is empty: name the API server's client certificate, "
                         "e.g. kube-apiserver-audit")
    host, _, port = args.audit_address.rpartition(":")
    try:
        audit_ingest.serve(args.dsn, (host or "0.0.0.0", int(port)), args.audit_cert, args.audit_key,
                           args.audit_client_ca, names, Path(args.audit_spool_dir))
    except (OSError, ValueError) as error:
        raise SystemExit(f"gl-mirror: cannot receive audit events on --audit-address {args.audit_address}: "
                         f"{error}") from error
    log.info("receiving the API server's audit log on %s%s from %s; spooled in %s until Postgres has it",
             args.audit_address, audit_ingest.PATH, ", ".join(names), Path(args.audit_spool_dir).resolve())


def verify_audit(args: argparse.Namespace) -> int:
    from gl_mirror import audit

    if args.without_anchor:
        with psycopg.connect(args.dsn) as conn:
            report = audit.verify(conn, None, None)
    else:
        report = audit.verify_anchored(args.dsn, api_client(args.kubeconfig, args.context), args.anchor_namespace)
    for problem in report["problems"]:
        print(f"audit row {problem['id']}: {problem['problem']}" if problem["id"] is not None else problem["problem"])
    if report["problems"]:
        first = f"first bad row {report['firstBadRow']}; " if report["firstBadRow"] is not None else ""
        print(f"audit trail NOT intact: {first}{len(report['problems'])} problems in {report['rows']} rows",
              file=sys.stderr)
        return 1
    if report["anchor"] is None:
        anchored = "the head was compared with no anchor (--without-anchor)"
    else:
        anchored = (f"head row {report['head']['id']}; anchored row {report['anchor']['lastId']} at "
                    f"{report['anchor']['time']} ({report['anchoredIn']})")
    print(f"audit trail intact: {report['rows']} rows, every hash and link verified; {anchored}")
    return 0


def expire_audit(args: argparse.Namespace) -> int:
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        (dropped,) = conn.execute("SELECT audit_expire()").fetchone()
    print(f"dropped {dropped} monthly partitions past the retention of 2555 days (fixed in the database)")
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
    runner.add_argument("--prometheus-url", default=os.environ.get("GL_PROMETHEUS_URL"),
                        help="Prometheus scraping the agents, asked for `usagesummaries?window=` on the callers' "
                             "behalf (default: $GL_PROMETHEUS_URL; without it only recorded usage is served)")
    runner.add_argument("--audit-address", help="host:port to receive the API server's audit webhook on (mutual "
                                                "TLS); its DELETE records then name who deleted; default: off")
    runner.add_argument("--audit-cert", help="PEM serving certificate for --audit-address")
    runner.add_argument("--audit-key", help="PEM private key of --audit-cert")
    runner.add_argument("--audit-client-ca", help="PEM CA whose client certificates may send audit events")
    runner.add_argument("--audit-allowed-names", default="kube-apiserver-audit",
                        help="comma-separated common names of those certificates (default: %(default)s)")
    runner.add_argument("--audit-spool-dir", default="audit-spool",
                        help="directory (created, mode 0700) where received audit batches wait, fsync'd, until "
                             "Postgres has them; use a persistent volume in a pod (default: %(default)s, under the "
                             "working directory)")
    runner.add_argument("--anchor-namespace", default=anchor.DEFAULT_NAMESPACE,
                        help="namespace of the ConfigMap %s holding the audit chain's head (default: %%(default)s)"
                             % anchor.NAME)
    runner.add_argument("--anchor-interval", type=float, default=anchor.MAX_INTERVAL,
                        help="seconds between anchors, at most 60 (default: %(default)g)")
    runner.add_argument("--log-format", choices=["json", "plain"], default="json", help="(default: %(default)s)")
    runner.add_argument("-v", "--verbose", action="store_true")
    runner.set_defaults(run=run)
    verifier = commands.add_parser("audit-verify", help="check every audit row's hash and link and the head against "
                                                        "its anchor; exit 1 on tampering")
    verifier.add_argument("--dsn", default=os.environ.get("GL_MIRROR_DSN"), help="Postgres DSN")
    verifier.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="kubeconfig (default: $KUBECONFIG)")
    verifier.add_argument("--context", help="kubeconfig context")
    verifier.add_argument("--anchor-namespace", default=anchor.DEFAULT_NAMESPACE, help="(default: %(default)s)")
    verifier.add_argument("--without-anchor", action="store_true",
                          help="verify the table alone (a copy checked offline): removed newest rows go unnoticed")
    verifier.set_defaults(run=verify_audit)
    # No retention option: the retention is fixed in the database, so that no caller can shorten it.
    expiry = commands.add_parser("audit-expire", help="drop monthly audit partitions past the 2555-day retention")
    expiry.add_argument("--dsn", default=os.environ.get("GL_MIRROR_DSN"), help="Postgres DSN")
    expiry.set_defaults(run=expire_audit)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
