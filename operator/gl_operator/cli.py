"""`gl-operator run`: the registry's lifecycle operator against any kubeconfig or in-cluster."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import kopf
import prometheus_client
from kubernetes import client, config as kube_config

from gl_operator import config as operator_config

EPILOG = """examples:
  gl-operator run                                   # current kubeconfig context, all namespaces
  gl-operator run --kubeconfig .gl-dev/kubeconfig --metrics-address 127.0.0.1:9090
  gl-operator run --namespace climate-team --log-format json
  gl-operator run --webhook-address 0.0.0.0:9443 --webhook-cert tls.crt --webhook-key tls.key --opa-url http://opa:8181
"""


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)


def api_client(kubeconfig: str | None, context: str | None) -> client.ApiClient:
    """In-cluster when there, else the kubeconfig (as kubectl would choose it)."""
    configuration = client.Configuration()
    if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        kube_config.load_incluster_config(client_configuration=configuration)
    else:
        kube_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    return client.ApiClient(configuration)


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


def _serve_webhooks(args: argparse.Namespace) -> Any:
    """Serve the admission webhooks from this process (kopf's admission support) over TLS."""
    import gl_webhooks.admission  # noqa: F401  (registers the admission handlers)

    host, port = _address(args.webhook_address)

    @kopf.on.startup()
    def webhook_server(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.admission.server = kopf.WebhookServer(addr=host, port=port, certfile=args.webhook_cert,
                                                       pkeyfile=args.webhook_key)

    return webhook_server


def run(args: argparse.Namespace) -> int:
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat[args.log_format.upper()])
    settings = operator_config.load(args.config)
    api = api_client(args.kubeconfig, args.context)
    _login_with(api)
    import gl_operator.handlers  # noqa: F401  (registers the handlers)

    engine = None
    if args.webhook_address:
        if not (args.webhook_cert and args.webhook_key):
            raise SystemExit("gl-operator: --webhook-address needs --webhook-cert and --webhook-key (TLS is required)")
        from gl_webhooks import engines

        engine = engines.from_url(args.opa_url)
        _serve_webhooks(args)

    prometheus_client.disable_created_metrics()
    if args.metrics_address != "off":
        host, port = _address(args.metrics_address)
        prometheus_client.start_http_server(port, addr=host)
    health_host, health_port = _address(args.health_address)
    logging.getLogger(__name__).info("greenlang registry operator starting; promotion policy %s",
                                     settings.promotion.model_dump(by_alias=True))
    kopf.run(
        standalone=True,  # one replica (Recreate); no peering objects needed
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
        liveness_endpoint=f"http://{health_host}:{health_port}/healthz",
        memo=kopf.Memo(api=api, config=settings, engine=engine),
    )
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
    runner.add_argument("--webhook-address", help="host:port to serve the admission webhooks on (TLS); "
                                                   "default: no webhooks")
    runner.add_argument("--webhook-cert", help="PEM serving certificate for the webhooks")
    runner.add_argument("--webhook-key", help="PEM private key of --webhook-cert")
    runner.add_argument("--opa-url", default=os.environ.get("GL_OPA_URL"),
                        help="OPA server to ask, e.g. http://opa:8181 (default: $GL_OPA_URL, else the embedded "
                             "regopy interpreter)")
    runner.add_argument("--log-format", choices=["full", "plain", "json"], default="json",
                        help="log format (default: %(default)s, structured)")
    runner.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    runner.set_defaults(run=run)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
