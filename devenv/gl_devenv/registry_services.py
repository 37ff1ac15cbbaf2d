"""The registry's own processes beside the local control plane: the operator, the mirror with its query API, S3.

Admission (OPA and `gl-webhooks`) is in ``webhook_service``.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

from gl_devenv import apiserver_audit, certs, crd_install, identities
from gl_devenv.cluster import ClusterError, LocalCluster, free_port

OPERATOR = "gl-operator"
OPERATOR_IDENTITY = identities.OPERATOR
OPERATOR_NAMESPACE = crd_install.SYSTEM_NAMESPACE


def start_operator(cluster: LocalCluster, config: dict[str, Any] | None = None, timeout: float = 60,
                   env: dict[str, str] | None = None) -> str:
    """Run `gl-operator` (leader-elected on its Lease) against the cluster in the background.

    ``env`` adds to its environment: the runtime image, Prometheus and the artifact store
    (``GL_RUNTIME_IMAGE``, ``GL_PROMETHEUS_URL``, ``GL_S3_ENDPOINT``, ``AWS_*``).
    """
    processes = cluster.processes
    ports_file = cluster.run_dir / f"{OPERATOR}.ports"
    # Started with other settings (a rebuilt runtime image has a new digest): restart it with these.
    settings_file = cluster.run_dir / f"{OPERATOR}.settings"
    wanted = json.dumps({"config": config or {}, "env": env or {}}, sort_keys=True)
    if processes.running(OPERATOR) and settings_file.exists() and settings_file.read_text() != wanted:
        processes.stop(OPERATOR, grace=15)
    settings_file.write_text(wanted)
    settings_file.chmod(0o600)  # the artifact store's credentials are in it
    if not processes.running(OPERATOR):
        health, metrics = free_port(), free_port()
        ports_file.write_text(f"{health} {metrics}")
        # The operator's ServiceAccount, bound to crds/rbac_operator.yaml as on a cluster (the policies
        # trust it, and only it, to change lifecycle state).
        identity = identities.kubeconfig(cluster, "operator")
        settings = cluster.run_dir / "gl-operator.yaml"
        # The identity it records in state history is the one it authenticates as (JSON is YAML).
        settings.write_text(json.dumps({"serviceAccount": OPERATOR_IDENTITY, **(config or {})}))
        processes.spawn(OPERATOR, [
            sys.executable, "-m", "gl_operator", "run", f"--kubeconfig={identity}", f"--config={settings}",
            f"--health-address=127.0.0.1:{health}", f"--metrics-address=127.0.0.1:{metrics}",
            f"--leader-election-namespace={OPERATOR_NAMESPACE}", "--leader-identity=gl-dev"], cwd=cluster.workdir,
            env={**os.environ, **env} if env else None)
    health, metrics = ports_file.read_text().split()
    processes.wait_healthy(OPERATOR, f"http://127.0.0.1:{health}/healthz", timeout)
    return f"http://127.0.0.1:{metrics}/metrics"


def stop_operator(cluster: LocalCluster) -> None:
    cluster.processes.stop(OPERATOR, grace=15)


QUERY_SERVICE, QUERY_NAMESPACE = "greenlang-registry-search", OPERATOR_NAMESPACE


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


def start_mirror(cluster: LocalCluster, dsn: str, timeout: float = 60, prometheus_url: str | None = None) -> str:
    """Run `gl-mirror` with its query API, registered as an aggregated API; returns the API path.

    With ``prometheus_url`` it answers `gl agent metrics` with live figures, on the callers' behalf.
    """
    processes = cluster.processes
    ports_file = cluster.run_dir / f"{MIRROR}.ports"
    if not processes.running(MIRROR):
        port = free_port()
        ports_file.write_text(str(port))
        _, serving = query_api_tls(cluster.pki_dir)
        identity = identities.kubeconfig(cluster, "mirror")  # its ServiceAccount, bound to crds/rbac_mirror.yaml
        processes.spawn(MIRROR, [sys.executable, "-m", "gl_mirror", "run", f"--kubeconfig={identity}",
                                 f"--dsn={dsn}", "--metrics-address=off", f"--api-address=127.0.0.1:{port}",
                                 f"--api-cert={serving.cert}", f"--api-key={serving.key}",
                                 *([f"--prometheus-url={prometheus_url}"] if prometheus_url else []),
                                 # The API server's audit log, if it was started to send one.
                                 *apiserver_audit.mirror_args(cluster.run_dir, cluster.pki_dir)],
                        cwd=cluster.workdir)
        processes.wait_healthy(MIRROR, f"https://localhost:{port}/healthz", timeout, insecure=True)
        install_query_api(cluster, cluster.pki_dir, port)
    return "/apis/search.registry.greenlang.ai/v1alpha1"


def uninstall_query_api(cluster: Any) -> None:
    """Unregister the query API: while registered without a server, namespaces cannot be deleted."""
    cluster.kubectl("delete", "apiservice", "v1alpha1.search.registry.greenlang.ai", "--ignore-not-found",
                    check=False)


def stop_mirror(cluster: LocalCluster) -> None:
    if cluster.is_running():
        uninstall_query_api(cluster)
    cluster.processes.stop(MIRROR, grace=15)


S3 = "s3"
S3_BUCKET = "greenlang-agents"
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "greenlang-dev", "AWS_SECRET_ACCESS_KEY": "greenlang-dev-secret",
                  "AWS_DEFAULT_REGION": "us-east-1"}


def start_s3(cluster: LocalCluster, timeout: float = 30, host: str = "127.0.0.1") -> dict[str, str]:
    """A real S3-compatible server (moto's standalone server) with the artifact bucket, on ``host``:
    loopback, or the real node's address so that agent pods can fetch their artifacts.

    Returns the environment `gl agent publish` needs. Objects live in memory: restarting the
    server empties the bucket (the dev registry keeps the digests, not the bytes).
    """
    import shutil

    import boto3

    processes = cluster.processes
    endpoint_file = cluster.run_dir / "s3.endpoint"
    if not processes.running(S3):
        port = free_port()
        endpoint = f"http://{host}:{port}"
        endpoint_file.write_text(endpoint)
        executable = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        processes.spawn(S3, [executable, "-H", host, "-p", str(port)], cwd=cluster.workdir)
        processes.wait_healthy(S3, f"{endpoint}/", timeout)
        os.environ.update(S3_CREDENTIALS)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=S3_BUCKET)
    return {"GL_S3_ENDPOINT": endpoint_file.read_text().strip(), "GL_S3_BUCKET": S3_BUCKET, **S3_CREDENTIALS}
