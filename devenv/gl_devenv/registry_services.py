"""The registry's own processes beside the local control plane (the lifecycle operator, for now)."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

from gl_devenv import certs
from gl_devenv.cluster import ClusterError, LocalCluster, free_port

OPERATOR = "gl-operator"
# A client certificate's CN is at most 64 characters, too short for the ServiceAccount's user name.
OPERATOR_IDENTITY = "greenlang-registry-operator"


def webhook_tls(pki_dir: Path) -> tuple[certs.Pair, certs.Pair]:
    """A CA and a serving certificate for webhooks on 127.0.0.1 (the CA goes into caBundle)."""
    ca = certs.ensure_ca(pki_dir, "webhook-ca", "greenlang-webhook-ca")
    return ca, certs.ensure_leaf(pki_dir, "webhook", ca, "greenlang-registry-webhook", server=True,
                                 dns=("localhost",), ips=("127.0.0.1",))


def webhook_args(pki_dir: Path, port: int, opa_url: str | None) -> list[str]:
    _, serving = webhook_tls(pki_dir)
    args = [f"--webhook-address=127.0.0.1:{port}", f"--webhook-cert={serving.cert}", f"--webhook-key={serving.key}"]
    return args + ([f"--opa-url={opa_url}"] if opa_url else [])


def install_webhooks(cluster: object, pki_dir: Path, port: int) -> None:
    """Register the webhooks served on 127.0.0.1:port with the API server."""
    from gl_webhooks import configuration

    ca, _ = webhook_tls(pki_dir)
    objects = configuration.render(f"https://127.0.0.1:{port}", ca.cert.read_bytes())
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",  # type: ignore[attr-defined]
                                                                  "items": objects}), check=False)
    if result.returncode != 0:
        raise ClusterError(f"registering the webhooks failed: {result.stderr.strip()}")


def uninstall_webhooks(cluster: object) -> None:
    from gl_webhooks import configuration

    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        cluster.kubectl("delete", kind, configuration.NAME, "--ignore-not-found", check=False)  # type: ignore[attr-defined]


def start_operator(cluster: LocalCluster, timeout: float = 60, webhooks: bool = True,
                   opa_url: str | None = None) -> str:
    """Run `gl-operator` (with its admission webhooks) against the cluster in the background."""
    processes = cluster.processes
    ports_file = cluster.run_dir / f"{OPERATOR}.ports"
    if processes.running(OPERATOR):
        health, metrics, _ = ports_file.read_text().split()
        return f"http://127.0.0.1:{metrics}/metrics"
    health, metrics, webhook = free_port(), free_port(), free_port()
    ports_file.write_text(f"{health} {metrics} {webhook}")
    # The operator's own identity (the policies trust it, and only it, to change lifecycle state);
    # locally it is also in system:masters, where a cluster would bind the chart's ClusterRole.
    identity = cluster.user_kubeconfig(OPERATOR_IDENTITY, ("system:masters",))
    config = cluster.run_dir / "gl-operator.yaml"
    config.write_text(json.dumps({"serviceAccount": OPERATOR_IDENTITY}))  # JSON is YAML
    argv = [sys.executable, "-m", "gl_operator", "run", f"--kubeconfig={identity}", f"--config={config}",
            f"--health-address=127.0.0.1:{health}", f"--metrics-address=127.0.0.1:{metrics}"]
    if webhooks:
        argv += webhook_args(cluster.pki_dir, webhook, opa_url)
    processes.spawn(OPERATOR, argv, cwd=cluster.workdir)
    processes.wait_healthy(OPERATOR, f"http://127.0.0.1:{health}/healthz", timeout)
    if webhooks:
        install_webhooks(cluster, cluster.pki_dir, webhook)
    return f"http://127.0.0.1:{metrics}/metrics"


def stop_operator(cluster: LocalCluster) -> None:
    """Stop the operator; its webhooks are unregistered first, or every later request would fail closed."""
    if cluster.is_running():
        uninstall_webhooks(cluster)
    cluster.processes.stop(OPERATOR, grace=15)


QUERY_SERVICE, QUERY_NAMESPACE = "greenlang-registry-search", "greenlang-system"


def query_api_tls(pki_dir: Path) -> tuple[certs.Pair, certs.Pair]:
    """Serving certificate for the query API; the aggregator checks it against <service>.<namespace>.svc."""
    ca = certs.ensure_ca(pki_dir, "query-api-ca", "greenlang-query-api-ca")
    return ca, certs.ensure_leaf(pki_dir, "query-api", ca, "greenlang-registry-search", server=True,
                                 dns=(f"{QUERY_SERVICE}.{QUERY_NAMESPACE}.svc", "localhost"), ips=("127.0.0.1",))


def install_query_api(cluster: object, pki_dir: Path, port: int) -> None:
    """Register the mirror's query API as an aggregated API served on localhost:port.

    There is no kube-proxy here, so a ClusterIP would not route; the aggregator dials an
    ExternalName Service by its external name, which lets it reach a server on loopback.
    """
    ca, _ = query_api_tls(pki_dir)
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": QUERY_NAMESPACE}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": QUERY_SERVICE, "namespace": QUERY_NAMESPACE},
         "spec": {"type": "ExternalName", "externalName": "localhost", "ports": [{"port": port, "protocol": "TCP"}]}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": "v1alpha1.search.registry.greenlang.ai"},
         "spec": {"group": "search.registry.greenlang.ai", "version": "v1alpha1", "groupPriorityMinimum": 1000,
                  "versionPriority": 15, "caBundle": base64.b64encode(ca.cert.read_bytes()).decode(),
                  "service": {"namespace": QUERY_NAMESPACE, "name": QUERY_SERVICE, "port": port}}},
    ]
    result = cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",  # type: ignore[attr-defined]
                                                                  "items": objects}), check=False)
    if result.returncode != 0:
        raise ClusterError(f"registering the query API failed: {result.stderr.strip()}")


MIRROR = "gl-mirror"


def start_mirror(cluster: LocalCluster, dsn: str, timeout: float = 60) -> str:
    """Run `gl-mirror` with its query API, registered as an aggregated API; returns the API path."""
    processes = cluster.processes
    ports_file = cluster.run_dir / f"{MIRROR}.ports"
    if not processes.running(MIRROR):
        port = free_port()
        ports_file.write_text(str(port))
        _, serving = query_api_tls(cluster.pki_dir)
        processes.spawn(MIRROR, [sys.executable, "-m", "gl_mirror", "run", f"--kubeconfig={cluster.kubeconfig}",
                                 f"--dsn={dsn}", "--metrics-address=off", f"--api-address=127.0.0.1:{port}",
                                 f"--api-cert={serving.cert}", f"--api-key={serving.key}"], cwd=cluster.workdir)
        processes.wait_healthy(MIRROR, f"https://localhost:{port}/healthz", timeout, insecure=True)
        install_query_api(cluster, cluster.pki_dir, port)
    return "/apis/search.registry.greenlang.ai/v1alpha1"


def stop_mirror(cluster: LocalCluster) -> None:
    if cluster.is_running():
        cluster.kubectl("delete", "apiservice", "v1alpha1.search.registry.greenlang.ai", "--ignore-not-found",
                        check=False)
    cluster.processes.stop(MIRROR, grace=15)


S3 = "s3"
S3_BUCKET = "greenlang-agents"
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "greenlang-dev", "AWS_SECRET_ACCESS_KEY": "greenlang-dev-secret",
                  "AWS_DEFAULT_REGION": "us-east-1"}


def start_s3(cluster: LocalCluster, timeout: float = 30) -> dict[str, str]:
    """A real S3-compatible server on loopback (moto's standalone server) with the artifact bucket.

    Returns the environment `gl agent publish` needs. Objects live in memory: restarting the
    server empties the bucket (the dev registry keeps the digests, not the bytes).
    """
    import boto3
    import os
    import shutil

    processes = cluster.processes
    port_file = cluster.run_dir / "s3.port"
    if not processes.running(S3):
        port = free_port()
        port_file.write_text(str(port))
        executable = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        processes.spawn(S3, [executable, "-H", "127.0.0.1", "-p", str(port)], cwd=cluster.workdir)
        processes.wait_healthy(S3, f"http://127.0.0.1:{port}/", timeout)
        os.environ.update(S3_CREDENTIALS)
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket=S3_BUCKET)
    return {"GL_S3_ENDPOINT": f"http://127.0.0.1:{port_file.read_text().strip()}", "GL_S3_BUCKET": S3_BUCKET,
            **S3_CREDENTIALS}
