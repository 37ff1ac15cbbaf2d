"""`gl-operator run`: the registry's lifecycle operator against any kubeconfig or in-cluster.

Run two replicas: they elect a leader on a Lease; the other waits and takes over within about
10 seconds of the leader's death. Admission webhooks are not served here but by `gl-webhooks`,
so registry writes keep working while the operator restarts.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import kopf
import prometheus_client
from kubernetes import client

from gl_kube import client as kube_client
from gl_kube.leader import LeaderElector
from gl_operator import config as operator_config
from gl_operator import health, metrics

log = logging.getLogger("gl_operator")
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
LEASE_NAME = "greenlang-registry-operator"
EPILOG = """examples:
  gl-operator run                                   # current kubeconfig context, all namespaces
  gl-operator run --kubeconfig .gl-dev/kubeconfig --metrics-address 127.0.0.1:9090
  gl-operator run --namespace climate-team --log-format json
  gl-operator run --no-leader-election              # a single replica, no Lease
  kubectl get lease -n greenlang-system greenlang-registry-operator   # who leads
"""


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)


def _default_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    except OSError:
        return "greenlang-system"


def _default_identity() -> str:
    # Unique per process: two replicas on one host must not share a Lease holder name.
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def _login_with(api: client.ApiClient) -> Any:
    configuration = api.configuration

    @kopf.on.login()
    def login(**_: Any) -> kopf.ConnectionInfo:
        header = configuration.get_api_key_with_prefix("BearerToken") or \
            configuration.get_api_key_with_prefix("authorization")
        scheme, _, token = (header or "").rpartition(" ")
        return kopf.ConnectionInfo(
            server=configuration.host, ca_path=configuration.ssl_ca_cert, insecure=not configuration.verify_ssl,
            scheme=scheme or ("Bearer" if token else None), token=token or None,
            certificate_path=configuration.cert_file, private_key_path=configuration.key_file)

    return login


def _lead(api: client.ApiClient, args: argparse.Namespace) -> LeaderElector | None:
    """Wait until this replica leads (None when stopped first); keep the Lease in the background."""
    elector = LeaderElector(api, args.leader_election_namespace, LEASE_NAME, args.leader_identity)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    health.serve(_address(args.health_address), lambda: "leader" if elector.leading.is_set() else "standby")
    if not elector.acquire(stopped):
        return None

    def lost() -> None:
        # Another replica may act from now on: stop at once, as client-go's leaders do.
        logging.shutdown()
        os._exit(1)

    elector.keep(threading.Event(), lost)
    return elector


def run(args: argparse.Namespace) -> int:
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat[args.log_format.upper()])
    settings = operator_config.load(args.config)
    if args.runtime_image:
        settings.deployments.runtime_image = args.runtime_image
    if args.prometheus_url:
        settings.deployments.prometheus_url = args.prometheus_url
    api = kube_client.api_client(args.kubeconfig, args.context)
    kube_client.count_requests(api, lambda verb, resource: metrics.API_REQUESTS.labels(verb, resource).inc())
    _login_with(api)
    import gl_operator.handlers  # (registers the handlers)

    gl_operator.handlers.register_deployment_timer(settings)

    prometheus_client.disable_created_metrics()
    if args.metrics_address != "off":
        host, port = _address(args.metrics_address)
        prometheus_client.start_http_server(port, addr=host)
    elector = None
    if args.leader_election:
        elector = _lead(api, args)
        if elector is None:
            return 0
    else:
        health.serve(_address(args.health_address), lambda: "leader")
    log.info("greenlang registry operator starting; promotion policy %s; deployments %s",
             settings.promotion.model_dump(by_alias=True), settings.deployments.model_dump(by_alias=True))
    try:
        kopf.run(
            standalone=True,  # leadership comes from the Lease above, not from kopf's peering
            clusterwide=not args.namespace,
            namespaces=args.namespace or (),
            memo=kopf.Memo(api=api, config=settings),
        )
    finally:
        if elector is not None:
            elector.release()
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="gl-operator", description=__doc__, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = main.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run", help="run the operator until interrupted", epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    runner.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                        help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
    runner.add_argument("--context", help="kubeconfig context (default: the current one)")
    runner.add_argument("-n", "--namespace", action="append",
                        help="watch only this namespace (repeatable; default: all namespaces)")
    runner.add_argument("--config", help="operator settings YAML (default: $GL_OPERATOR_CONFIG or built-in policy)")
    runner.add_argument("--metrics-address", default="0.0.0.0:9090",
                        help="host:port for Prometheus metrics, or 'off' (default: %(default)s)")
    runner.add_argument("--health-address", default="0.0.0.0:8080",
                        help="host:port serving /healthz for probes (default: %(default)s)")
    runner.add_argument("--leader-election", action=argparse.BooleanOptionalAction, default=True,
                        help=f"hold the Lease {LEASE_NAME} while reconciling, so one replica acts at a time "
                             "(default: on)")
    runner.add_argument("--leader-election-namespace", default=_default_namespace(),
                        help="namespace of the Lease (default: this pod's namespace, else greenlang-system)")
    runner.add_argument("--leader-identity", default=_default_identity(),
                        help="this replica's name in the Lease (default: $POD_NAME, else host name and a random "
                             "suffix)")
    runner.add_argument("--runtime-image", default=os.environ.get("GL_RUNTIME_IMAGE"),
                        help="image for agent versions without spec.image (default: $GL_RUNTIME_IMAGE, else the "
                             "config's deployments.runtimeImage)")
    runner.add_argument("--prometheus-url", default=os.environ.get("GL_PROMETHEUS_URL"),
                        help="Prometheus HTTP API for SLO analysis and usage (default: $GL_PROMETHEUS_URL, else the "
                             "config's deployments.prometheusUrl; without one, analysis is off). The artifact store "
                             "given to agents comes from $GL_S3_ENDPOINT and $AWS_ACCESS_KEY_ID, "
                             "$AWS_SECRET_ACCESS_KEY, $AWS_DEFAULT_REGION")
    runner.add_argument("--log-format", choices=["full", "plain", "json"], default="json",
                        help="log format (default: %(default)s, structured)")
    runner.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    runner.set_defaults(run=run)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except kube_client.NoCluster as error:
        print(f"gl-operator: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
