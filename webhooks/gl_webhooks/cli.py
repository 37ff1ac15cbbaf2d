"""`gl-webhooks`: serve the registry's admission webhooks, or print the configuration that registers them."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
from pathlib import Path

import prometheus_client
import yaml

from gl_kube import client as kube_client
from gl_kube import logs
from gl_policy import engines

log = logging.getLogger("gl_webhooks")
RUNTIME_REF = re.compile(r"[^@\s]+@sha256:[0-9a-f]{64}")
EPILOG = """examples:
  gl-webhooks run --tls-cert tls.crt --tls-key tls.key --opa-url http://127.0.0.1:8181 --opa-token-file /var/run/opa/token
  gl-webhooks run --tls-cert tls.crt --tls-key tls.key --runtime-image registry.example.com/greenlang/agent-runtime@sha256:…
  gl-webhooks run --kubeconfig .gl-dev/kubeconfig --address 127.0.0.1:9443 --tls-cert tls.crt --tls-key tls.key
  gl-webhooks configuration --url https://127.0.0.1:9443 --ca-file ca.crt | kubectl apply -f -
"""


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)


class Unpinned(ValueError):
    """A runtime image given without a digest: the image guard could not recognise the pods running it."""


def runtime_images(refs: list[str]) -> list[str]:
    """The registry's runtime images, each pinned by digest (``repo@sha256:<64 hex>``), else Unpinned."""
    unpinned = [ref for ref in refs if not RUNTIME_REF.fullmatch(ref)]
    if unpinned:
        raise Unpinned(f"--runtime-image {', '.join(unpinned)} is not pinned by digest; give the runtime image as "
                       f"repo@sha256:<64 hex> (its pods are admitted in production by that digest and the "
                       f"artifact they load, so a tag that can move is refused)")
    return list(dict.fromkeys(refs))


def run(args: argparse.Namespace) -> int:
    from gl_webhooks import admission, caches, server

    runtime = runtime_images(args.runtime_image if args.runtime_image is not None else
                             [ref.strip() for ref in os.environ.get("GL_RUNTIME_IMAGE", "").split(",") if ref.strip()])
    logs.configure(args.log_format, args.verbose)
    api = kube_client.api_client(args.kubeconfig, args.context)
    token = Path(args.opa_token_file).read_text().strip() if args.opa_token_file else None
    engine: engines.Engine = engines.OpaServerEngine(args.opa_url, token=token) if args.opa_url \
        else engines.RegoEngine()
    certificate = server.ReloadingCertificate(Path(args.tls_cert), Path(args.tls_key))
    if args.metrics_address != "off":
        host, port = _address(args.metrics_address)
        prometheus_client.start_http_server(port, addr=host)
    cache = caches.Caches(api)
    cache.start()
    log.info("policy engine: %s%s; operator identity: %s; runtime images: %s", engine.name,
             f" at {args.opa_url}" if args.opa_url else " (embedded)", args.operator_user,
             ", ".join(runtime) or "none")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await engine.start()
        try:
            await server.serve(admission.Admission(cache, engine, api, args.operator_user, runtime),
                               _address(args.address), certificate, _address(args.health_address), stop)
        finally:
            await engine.close()
            cache.stop()

    asyncio.run(main())
    return 0


def configuration(args: argparse.Namespace) -> int:
    from gl_webhooks import configuration as webhook_configuration

    objects = webhook_configuration.render(args.url, Path(args.ca_file).read_bytes(), args.operator_user,
                                           guard_images=not args.no_image_guard)
    yaml.safe_dump_all(objects, sys.stdout, sort_keys=False)
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="gl-webhooks", description=__doc__, epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = main.add_subparsers(dest="command", required=True)
    operator_user = {"default": os.environ.get("GL_OPERATOR_USER", "system:serviceaccount:greenlang-system:"
                                                                    "greenlang-registry-operator"),
                     "help": "the registry operator's user name: the only user allowed to change lifecycle state "
                             "(default: $GL_OPERATOR_USER or %(default)s)"}
    runner = commands.add_parser("run", help="serve the admission webhooks until interrupted", epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    runner.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                        help="kubeconfig file (default: $KUBECONFIG, else in-cluster)")
    runner.add_argument("--context", help="kubeconfig context (default: the current one)")
    runner.add_argument("--address", default="0.0.0.0:9443", help="host:port for the webhooks, TLS "
                                                                  "(default: %(default)s)")
    runner.add_argument("--tls-cert", required=True, help="PEM serving certificate; reloaded when the file changes")
    runner.add_argument("--tls-key", required=True, help="PEM private key of --tls-cert; reloaded likewise")
    runner.add_argument("--opa-url", default=os.environ.get("GL_OPA_URL"),
                        help="OPA server serving the policies as a bundle, e.g. http://127.0.0.1:8181 "
                             "(default: $GL_OPA_URL; without one, the embedded regopy interpreter)")
    runner.add_argument("--opa-token-file", default=os.environ.get("GL_OPA_TOKEN_FILE"),
                        help="file holding the bearer token OPA demands (opa run --authentication=token); "
                             "required unless OPA is reachable only by this server (default: $GL_OPA_TOKEN_FILE)")
    runner.add_argument("--operator-user", **operator_user)
    runner.add_argument("--runtime-image", action="append",
                        metavar="REPO@SHA256:…",
                        help="the registry's agent-runtime image, pinned by digest; repeatable. In production "
                             "namespaces a container running it is admitted by the artifact it loads "
                             "(GL_ARTIFACT_DIGEST), which must be an allowed AgentVersion's "
                             "(default: $GL_RUNTIME_IMAGE, comma-separated)")
    runner.add_argument("--health-address", default="0.0.0.0:8081",
                        help="host:port serving /healthz and /readyz over HTTP (default: %(default)s)")
    runner.add_argument("--metrics-address", default="0.0.0.0:9090",
                        help="host:port for Prometheus metrics, or 'off' (default: %(default)s)")
    runner.add_argument("--log-format", choices=["json", "plain"], default="json", help="(default: %(default)s)")
    runner.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    runner.set_defaults(run=run)
    config = commands.add_parser("configuration", help="print the Validating- and MutatingWebhookConfiguration "
                                                       "for a server at --url", epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    config.add_argument("--url", required=True, help="base URL the API server reaches the webhooks at")
    config.add_argument("--ca-file", required=True, help="PEM CA that signed the serving certificate (caBundle)")
    config.add_argument("--operator-user", **operator_user)
    config.add_argument("--no-image-guard", action="store_true",
                        help="leave out the Pod and Deployment image guard in production namespaces")
    config.set_defaults(run=configuration)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (kube_client.NoCluster, OSError, Unpinned) as error:
        print(f"gl-webhooks: {error}", file=sys.stderr)
        return 2
