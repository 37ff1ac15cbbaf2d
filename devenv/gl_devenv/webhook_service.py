"""Admission beside the local control plane: an OPA server with the policies as a bundle, and `gl-webhooks`.

The webhook server keeps its port across restarts (the webhook configuration names it), so
stopping and starting it again restores admission without touching the API server.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from gl_devenv import build, certs, identities
from gl_devenv.cluster import ClusterError, LocalCluster, free_port
from gl_policy import POLICY_DIR, policy_files

OPA = "opa"
WEBHOOKS = "gl-webhooks"
CONFIGURATION_NAME = "greenlang-registry"


def opa_token_file(cluster: LocalCluster) -> Path:
    """The bearer token OPA demands of every client but its health probe (written by ``start_opa``)."""
    return cluster.run_dir / f"{OPA}.token"


def _stage_bundle(cluster: LocalCluster, policy_dir: Path, token: str) -> Path:
    """The policies (no tests) plus OPA's own authorization policy, as the one bundle OPA serves."""
    bundle = cluster.run_dir / f"{OPA}-bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    for path in policy_files(policy_dir):
        target = bundle / path.relative_to(policy_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    authz = bundle / "system" / "authz.rego"
    authz.parent.mkdir(parents=True, exist_ok=True)
    authz.write_text(
        "# OPA's API answers only the holder of the token (--authentication=token); probes see /health.\n"
        "package system.authz\n\ndefault allow := false\n\n"
        f"allow if input.identity == {json.dumps(token)}\n\n"
        'allow if input.path == ["health"]\n')
    for path in (bundle, *bundle.rglob("*")):
        path.chmod(0o700 if path.is_dir() else 0o600)  # the token is in it
    return bundle


def start_opa(cluster: LocalCluster, timeout: float = 30, policy_dir: Path = POLICY_DIR) -> str:
    """`opa run --server` on loopback with ``policies/`` as a bundle; its URL once the bundle is active.

    OPA authenticates every client by a bearer token (``opa_token_file``) and authorizes with
    ``system.authz``: nothing else on the machine can read the policies' data or load its own.
    A restart keeps the port and the token, so the webhook server asking it reconnects by itself.
    """
    port_file, token_file = cluster.run_dir / f"{OPA}.port", opa_token_file(cluster)
    if not cluster.processes.running(OPA):
        build.ensure(["opa"])
        cluster.run_dir.mkdir(parents=True, exist_ok=True)
        if not port_file.exists():
            port_file.write_text(str(free_port()))
        if not token_file.exists():
            token_file.touch(mode=0o600)
            token_file.write_text(secrets.token_urlsafe(32))
        port = int(port_file.read_text())
        bundle = _stage_bundle(cluster, policy_dir, token_file.read_text().strip())
        cluster.processes.spawn(OPA, [
            str(build.binary("opa")), "run", "--server", f"--addr=127.0.0.1:{port}", "--skip-version-check",
            "--log-level=error", "--authentication=token", "--authorization=basic", "--bundle", str(bundle),
        ], cwd=cluster.workdir)
    url = f"http://127.0.0.1:{port_file.read_text().strip()}"
    cluster.processes.wait_healthy(OPA, f"{url}/health?bundles", timeout)
    return url


def tls(pki_dir: Path) -> tuple[certs.Pair, certs.Pair]:
    """A CA and a serving certificate for webhooks on 127.0.0.1 (the CA goes into caBundle)."""
    ca = certs.ensure_ca(pki_dir, "webhook-ca", "greenlang-webhook-ca")
    return ca, certs.ensure_leaf(pki_dir, "webhook", ca, "greenlang-registry-webhook", server=True,
                                 dns=("localhost",), ips=("127.0.0.1",))


def ports(cluster: LocalCluster) -> tuple[int, int, int]:
    """(webhooks, probes, metrics) ports of the webhook server, the same for every start."""
    path = cluster.run_dir / f"{WEBHOOKS}.ports"
    if not path.exists():
        path.write_text(f"{free_port()} {free_port()} {free_port()}")
    webhook, probes, metrics = (int(p) for p in path.read_text().split())
    return webhook, probes, metrics


def start_webhooks(cluster: LocalCluster, opa_url: str | None, operator_user: str, timeout: float = 60,
                   register: bool = True, runtime_images: Sequence[str] = ()) -> str:
    """Run `gl-webhooks` (OPA engine with ``opa_url``, else embedded regopy) until ready; register it.

    ``runtime_images`` (pinned by digest) are the registry's agent-runtime images the image guard
    judges by the artifact they load. A running server started with other runtime images (the
    runtime's sources changed, so its digest did) is restarted on the same port.
    """
    webhook, probes, metrics = ports(cluster)
    recorded = cluster.run_dir / f"{WEBHOOKS}.runtime-images"
    wanted = "\n".join(runtime_images)
    if cluster.processes.running(WEBHOOKS) and (recorded.read_text() if recorded.exists() else "") != wanted:
        cluster.processes.stop(WEBHOOKS, grace=15)
    if not cluster.processes.running(WEBHOOKS):
        recorded.write_text(wanted)
        _, serving = tls(cluster.pki_dir)
        identity = identities.kubeconfig(cluster, "webhooks")  # its ServiceAccount, bound to crds/rbac_webhooks.yaml
        argv = [sys.executable, "-m", "gl_webhooks", "run", f"--kubeconfig={identity}",
                f"--address=127.0.0.1:{webhook}", f"--tls-cert={serving.cert}", f"--tls-key={serving.key}",
                f"--health-address=127.0.0.1:{probes}", f"--metrics-address=127.0.0.1:{metrics}",
                f"--operator-user={operator_user}",
                *([f"--opa-url={opa_url}", f"--opa-token-file={opa_token_file(cluster)}"] if opa_url else []),
                *(f"--runtime-image={ref}" for ref in runtime_images)]
        cluster.processes.spawn(WEBHOOKS, argv, cwd=cluster.workdir)
    cluster.processes.wait_healthy(WEBHOOKS, f"http://127.0.0.1:{probes}/readyz", timeout)
    if register:
        register_webhooks(cluster, operator_user)
    return f"https://127.0.0.1:{webhook}"


def register_webhooks(cluster: LocalCluster, operator_user: str) -> None:
    """Apply the configuration `gl-webhooks configuration` prints for this server."""
    webhook, _, _ = ports(cluster)
    ca, _ = tls(cluster.pki_dir)
    rendered = subprocess.run([sys.executable, "-m", "gl_webhooks", "configuration",
                               f"--url=https://127.0.0.1:{webhook}", f"--ca-file={ca.cert}",
                               f"--operator-user={operator_user}"], capture_output=True, text=True)
    if rendered.returncode != 0:
        raise ClusterError(f"rendering the webhook configuration failed: {rendered.stderr.strip()}")
    applied = cluster.kubectl("apply", "-f", "-", input=rendered.stdout, check=False)
    if applied.returncode != 0:
        raise ClusterError(f"registering the webhooks failed: {applied.stderr.strip()}")


def unregister_webhooks(cluster: LocalCluster) -> None:
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        cluster.kubectl("delete", kind, CONFIGURATION_NAME, "--ignore-not-found", check=False)


def stop(cluster: LocalCluster) -> None:
    """Stop the webhook server and OPA; unregister first, or every later registry write fails closed."""
    if cluster.is_running():
        unregister_webhooks(cluster)
    cluster.processes.stop(WEBHOOKS, grace=15)
    cluster.processes.stop(OPA)
