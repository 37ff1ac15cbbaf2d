"""`gl-dev`: run the registry locally on a real control plane built from Go modules.

    gl-dev up        build what is missing, start the control plane, install the CRDs and admission
                     policies, run OPA and the webhook server, a real node (kubelet, containerd)
                     for agent pods, Prometheus, a local S3, the operator, Postgres and the mirror
                     (search and audit, as an aggregated API)
    gl-dev status    show each component's health and where the kubeconfig is
    gl-dev down      stop everything (etcd data stays; --purge removes it)
    gl-dev build     only build the control-plane binaries into the shared cache
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from gl_devenv import (build, cluster, crd_install, health, images, node, postgres, prometheus,
                       registry_services, webhook_service)

EPILOG = """examples:
  eval "$(gl-dev up)"        # exports KUBECONFIG, PATH (kubectl, gl) and the S3 settings
  kubectl get greenlang
  gl-dev down --purge
"""


# The checkout gl_devenv is installed from (editable, as `make dev` installs it): its stack's state
# lives there, so gl-dev finds the same stack from any working directory.
CHECKOUT = Path(__file__).resolve().parents[2]


def default_home() -> Path:
    """State of the dev stack: $GL_DEV_HOME, else .gl-dev at the root of this checkout."""
    return Path(os.environ.get("GL_DEV_HOME") or CHECKOUT / ".gl-dev").resolve()


def running_elsewhere(home: Path) -> tuple[Path, bool] | None:
    """Another stack running on this machine, and whether it holds the real node; None when there is none.

    The real node (one per machine: its address and bridge are global) names its stack in
    ``node.OWNER_FILE``; a stack started from this directory before homes followed the checkout is in
    ``./.gl-dev``.
    """
    candidates = [Path.cwd() / ".gl-dev"]
    with contextlib.suppress(OSError):
        if owner := node.OWNER_FILE.read_text().strip():
            candidates.insert(0, Path(owner))
    for candidate in candidates:
        other = cluster.LocalCluster(candidate)
        if other.workdir == home.resolve():
            continue
        holds_node = node.RealNode(other).running()
        if holds_node or other.is_running():
            return other.workdir, holds_node
    return None


def _up(args: argparse.Namespace) -> int:
    elsewhere = running_elsewhere(args.home)
    if elsewhere:
        other, holds_node = elsewhere
        said = (f"a gl-dev stack is already running from {other}{' with the real node' if holds_node else ''}; "
                f"this one's home is {args.home}")
        if holds_node and not args.no_node:
            # Refused before anything starts: the node would be refused after an empty control plane.
            raise RuntimeError(f"{said}. One real node per machine: stop that stack first "
                               f"(gl-dev --home {other} down), or start this one with --no-node")
        print(f"gl-dev: note: {said}; its KUBECONFIG is {other / 'kubeconfig'}", file=sys.stderr)
    # The API server sends its audit log to the mirror, which starts later (it retries meanwhile).
    local = cluster.LocalCluster(args.home, audit_webhook=not args.no_mirror)
    if local.is_running():
        print(f"control plane already running at {local.server}", file=sys.stderr)
    else:
        print("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok "
              "(the first run builds them from Go modules, which takes a while)...", file=sys.stderr)
        local.start(timeout=args.timeout)
    crd_install.install(local)
    running = ["CRDs installed"]
    opa = webhook_service.start_opa(local)
    # Agent versions without spec.image run the registry's runtime image, pinned by digest: the image
    # guard admits it in production by the artifact it loads (built here, imported by the node below).
    runtime = None if args.no_node else images.runtime_image()
    webhooks = webhook_service.start_webhooks(local, opa, registry_services.OPERATOR_IDENTITY,
                                              runtime_images=[runtime.pinned] if runtime else [])
    running.append(f"webhooks at {webhooks} deciding with OPA at {opa}")
    runtime_env: dict[str, str] = {}
    operator_config: dict = {}
    s3_host = "127.0.0.1"
    if not args.no_node:
        print("starting the real node (containerd, kubelet) and Prometheus...", file=sys.stderr)
        real = node.RealNode(local)
        real.start(timeout=args.timeout)
        assert real.runtime_image is not None
        metrics_url = prometheus.start(local)
        runtime_env = {"GL_RUNTIME_IMAGE": real.runtime_image.pinned, "GL_PROMETHEUS_URL": metrics_url}
        operator_config = {"deployments": {"placement": node.placement()}}
        s3_host = node.NODE_IP  # agent pods fetch their artifacts from it
        running.append(f"node {node.NODE_NAME} Ready ({node.NODE_IP}); Prometheus at {metrics_url}")
    s3 = registry_services.start_s3(local, host=s3_host)
    running.append(f"S3 at {s3['GL_S3_ENDPOINT']} (bucket {s3['GL_S3_BUCKET']})")
    if not args.no_operator:
        metrics = registry_services.start_operator(local, operator_config, env={**runtime_env, **s3})
        running.append(f"operator running (metrics {metrics}, logs {local.log_dir}/gl-operator.log)")
    if not args.no_mirror:
        database = postgres.LocalPostgres(postgres.project_directory(args.home), port=_postgres_port(args.home))
        if not database.running():
            database.start()
        (args.home / "postgres.port").write_text(str(database.port))
        path = registry_services.start_mirror(local, database.dsn(),
                                              prometheus_url=runtime_env.get("GL_PROMETHEUS_URL"))
        running.append(f"Postgres at {database.dsn()}; mirror serving {path}")
    print(f"ready: {local.server}; {'; '.join(running)}. Use it with:", file=sys.stderr)
    print(f"export KUBECONFIG={local.kubeconfig}")
    # kubectl as built for this cluster, and gl from this installation, ahead of anything else.
    tools = [str(build.binary("kubernetes", "kubectl").parent), str(Path(sys.executable).parent)]
    print(f"export PATH={':'.join(tools)}:$PATH")
    # No GL_PROMETHEUS_URL: users read metrics through the registry, which scopes them to what they may see.
    for key, value in s3.items():
        print(f"export {key}={value}")
    return 0


def _postgres_port(home: Path) -> int:
    try:
        return int((home / "postgres.port").read_text())
    except (FileNotFoundError, ValueError):
        return 0


def _down(args: argparse.Namespace) -> int:
    local = cluster.LocalCluster(args.home)
    local.processes.stop(registry_services.S3)
    registry_services.stop_mirror(local)
    registry_services.stop_operator(local)
    webhook_service.stop(local)
    prometheus.stop(local)
    node.RealNode(local).stop()
    postgres.LocalPostgres(postgres.project_directory(args.home)).stop()
    local.stop()
    if args.purge and args.home.exists():
        database_dir = postgres.project_directory(args.home)
        if not database_dir.is_relative_to(args.home):
            shutil.rmtree(database_dir.parent, ignore_errors=True)
        shutil.rmtree(args.home)
        print(f"stopped and removed {args.home}", file=sys.stderr)
    else:
        print("stopped", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    local = cluster.LocalCluster(args.home)
    print(f"{'home':24} {local.workdir}")
    elsewhere = running_elsewhere(args.home)
    if elsewhere:
        print(f"{'elsewhere':24} another stack is running from {elsewhere[0]}"
              f"{' (with the real node)' if elsewhere[1] else ''}")
    for name, state in local.status().items():
        print(f"{name:24} {state}")
    for name, state in node.RealNode(local).status().items():
        print(f"{name:24} {state}")
    for name, state in health.registry_status(local).items():
        print(f"{name:24} {state}")
    if local.is_running():
        print(f"{'kubeconfig':24} {local.kubeconfig}")
        return 0
    return 1


def _kubeconfig(args: argparse.Namespace) -> int:
    print(cluster.LocalCluster(args.home).kubeconfig)
    return 0


def _build(args: argparse.Namespace) -> int:
    unknown = sorted(set(args.tools) - set(build.BUILDERS))
    if unknown:
        raise RuntimeError(f"unknown tool {', '.join(unknown)}; choose from {', '.join(build.BUILDERS)}")
    build.ensure(args.tools or build.DEFAULT_TOOLS, force=args.force)
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="gl-dev", description=__doc__.split("\n\n")[0], epilog=EPILOG,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    main.add_argument("--home", type=Path, default=default_home(),
                      help="state directory of the dev stack (default: $GL_DEV_HOME, else .gl-dev at the root "
                           f"of this checkout, {CHECKOUT})")
    commands = main.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the local control plane and every registry component")
    up.add_argument("--no-operator", action="store_true", help="leave the registry operator out")
    up.add_argument("--no-mirror", action="store_true", help="leave Postgres and the mirror out")
    up.add_argument("--no-node", action="store_true",
                    help="no real node and no Prometheus: AgentDeployments then have nowhere to run (needs root)")
    up.add_argument("--timeout", type=float, default=300, help="seconds to wait for readiness once built")
    up.set_defaults(run=_up)
    down = commands.add_parser("down", help="stop the local control plane")
    down.add_argument("--purge", action="store_true", help="also delete etcd data, certificates and logs")
    down.set_defaults(run=_down)
    commands.add_parser("status", help="show component status; exit 1 when not running").set_defaults(run=_status)
    commands.add_parser("kubeconfig", help="print the admin kubeconfig path").set_defaults(run=_kubeconfig)
    builder = commands.add_parser("build", help="build control-plane binaries into the shared cache")
    builder.add_argument("tools", nargs="*", metavar="TOOL",
                         help=f"of {', '.join(build.BUILDERS)} (default: {' '.join(build.DEFAULT_TOOLS)})")
    builder.add_argument("--force", action="store_true", help="rebuild even when cached")
    builder.set_defaults(run=_build)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.home = args.home.resolve()  # the exports it prints must hold from any directory
    try:
        return int(args.run(args))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
        print(f"gl-dev: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
