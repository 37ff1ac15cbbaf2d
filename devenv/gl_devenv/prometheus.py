"""A real Prometheus beside the local cluster, scraping the agent pods of the real node.

Built from its Go module (``gl-dev build prometheus``, about 10 minutes once): Debian's 2.42 is
compiled without Kubernetes discovery. It discovers pods through the API server
(``kubernetes_sd``) as a dedicated identity that may only read pods, as it would in a cluster.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from gl_devenv import build, certs
from gl_devenv.cluster import LocalCluster, free_port
from gl_devenv.node import NODE_NAME

PROMETHEUS = "prometheus"
IDENTITY = "greenlang-prometheus"
SCRAPE_INTERVAL = "2s"
RBAC = f"""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {IDENTITY}
  labels: {{app.kubernetes.io/part-of: greenlang-registry}}
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {IDENTITY}
  labels: {{app.kubernetes.io/part-of: greenlang-registry}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {IDENTITY}}}
subjects:
  - {{apiGroup: rbac.authorization.k8s.io, kind: User, name: {IDENTITY}}}
"""


def scrape_config(server: str, pki_dir: Path) -> dict:
    """Agent pods (managed by the registry, port ``http``) on the real node, labelled for the SLO queries."""
    pki = certs.ensure_pki(pki_dir)
    identity = certs.ensure_leaf(pki_dir, IDENTITY, pki.ca, IDENTITY)
    tls = {"ca_file": str(pki.ca.cert), "cert_file": str(identity.cert), "key_file": str(identity.key)}
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [{
            "job_name": "greenlang-agents",
            "metrics_path": "/metrics",
            "kubernetes_sd_configs": [{
                "role": "pod", "api_server": server, "tls_config": tls,
                "selectors": [{"role": "pod", "label": "app.kubernetes.io/managed-by=greenlang-registry",
                               # kwok's simulated pods have addresses nothing answers on.
                               "field": f"spec.nodeName={NODE_NAME}"}],
            }],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "http", "action": "keep"},
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                {"source_labels": ["__meta_kubernetes_pod_label_registry_greenlang_ai_deployment"],
                 "target_label": "agentdeployment"},
            ],
        }],
    }


def start(cluster: LocalCluster, timeout: float = 60) -> str:
    """Start Prometheus (once) and return its URL."""
    build.ensure(["prometheus"])
    binary = str(build.binary("prometheus"))
    port_file = cluster.run_dir / "prometheus.port"
    if cluster.processes.running(PROMETHEUS) and port_file.exists():
        return f"http://127.0.0.1:{port_file.read_text().strip()}"
    cluster.kubectl("apply", "-f", "-", input=RBAC)
    directory = cluster.workdir / "prometheus"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(cluster.server, cluster.pki_dir), sort_keys=False))
    port = free_port()
    port_file.write_text(str(port))
    argv = [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=7d", "--log.level=warn"]
    (cluster.run_dir / f"{PROMETHEUS}.argv").write_text(json.dumps(argv))
    cluster.processes.spawn(PROMETHEUS, argv, cwd=directory)
    url = f"http://127.0.0.1:{port}"
    cluster.processes.wait_healthy(PROMETHEUS, f"{url}/-/ready", timeout)
    return url


def stop(cluster: LocalCluster) -> None:
    cluster.processes.stop(PROMETHEUS)


def query(url: str, promql: str) -> list[dict]:
    """An instant query's result vector (for health checks and tests)."""
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}), timeout=10) as r:
        return json.loads(r.read())["data"]["result"]
