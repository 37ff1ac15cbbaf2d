"""The API server's own audit log, sent to the mirror through the audit webhook backend.

The API server knows who each request came from (and whom they impersonated), where from, what
it answered and why it refused: the mirror's watches see none of that. With ``--audit-*`` flags
the API server posts those records, in batches, to the mirror's ingest listener over mutual TLS:

* ``audit-webhook-ca`` (its own CA, trusted for nothing else) signs the listener's serving
  certificate and the API server's client certificate, whose name (``SENDER``) the mirror checks;
* the policy records the registry's groups only: reads at ``Metadata``, writes at ``Request``,
  deletes at ``RequestResponse`` (the response names the deleted object's uid);
* the listener's port is fixed when the API server starts, so the mirror can come later. Until
  it listens the API server retries each batch (5 attempts over at least 4 minutes, all errors
  count) and then drops it, logging the events; requests are never held up (``batch`` mode is
  asynchronous). The mirror answers once a batch is in its spool (``spool_dir``), so a Postgres
  outage, however long, costs the API server no retries.

Off unless asked for (``LocalCluster(..., audit_webhook=True)``; ``gl-dev up`` asks when it runs
the mirror): an API server whose batches find no listener keeps retrying them, and its shutdown
waits for those retries.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from gl_devenv import certs

SENDER = "kube-apiserver-audit"
INGEST_PATH = "/audit/v1/events"
REGISTRY_GROUPS = ("registry.greenlang.ai", "search.registry.greenlang.ai")
SETTINGS = "audit-webhook.json"
SPOOL = "audit-spool"
# Sent within about a second (the default waits up to 30 s); at most 400 events a batch.
# k8s.io/apiserver (pkg/util/webhook.DefaultRetryBackoffWithInitialDelay) makes 5 attempts, waiting
# the initial backoff times 1, 1.5, 2.25 and 3.375 between them, each wait plus up to 20 % jitter:
# from 30 s, the last attempt comes 244 to 293 s after the first. A mirror away for less than about
# 4 minutes therefore loses nothing; the price is that a batch refused once waits at least 30 s.
BATCH_FLAGS = ("--audit-webhook-mode=batch", "--audit-webhook-batch-max-size=400",
               "--audit-webhook-batch-max-wait=1s", "--audit-webhook-batch-buffer-size=10000",
               "--audit-webhook-initial-backoff=30s", "--audit-webhook-version=audit.k8s.io/v1")


def policy() -> dict:
    """Only the registry's groups, each request recorded once, when it completes (or panics)."""
    groups = [{"group": group} for group in REGISTRY_GROUPS]
    return {
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
        "omitStages": ["RequestReceived", "ResponseStarted"],
        "omitManagedFields": True,
        "rules": [
            # A delete's response is the deleted object (or a Status naming it): its uid.
            {"level": "RequestResponse", "verbs": ["delete", "deletecollection"], "resources": groups},
            {"level": "Request", "verbs": ["create", "update", "patch"], "resources": groups},
            {"level": "Metadata", "verbs": ["get", "list", "watch"], "resources": groups},
            {"level": "None"},
        ],
    }


def tls(pki_dir: Path) -> tuple[certs.Pair, certs.Pair, certs.Pair]:
    """(CA, the mirror listener's serving pair, the API server's client pair)."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    ca = certs.ensure_ca(pki_dir, "audit-webhook-ca", "greenlang-audit-webhook-ca")
    serving = certs.ensure_leaf(pki_dir, "audit-webhook", ca, "greenlang-registry-mirror", server=True,
                                dns=("localhost",), ips=("127.0.0.1",))
    client = certs.ensure_leaf(pki_dir, "apiserver-audit-client", ca, SENDER)
    return ca, serving, client


def apiserver_args(run_dir: Path, pki_dir: Path, port: int) -> list[str]:
    """Write the policy and the webhook's kubeconfig; return the API server's flags for them."""
    ca, _, client = tls(pki_dir)
    policy_file = run_dir / "audit-policy.yaml"
    policy_file.write_text(yaml.safe_dump(policy(), sort_keys=False))
    webhook = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "greenlang-registry-mirror", "cluster": {
            "server": f"https://127.0.0.1:{port}{INGEST_PATH}", "certificate-authority": str(ca.cert)}}],
        "users": [{"name": SENDER, "user": {"client-certificate": str(client.cert), "client-key": str(client.key)}}],
        "contexts": [{"name": "mirror", "context": {"cluster": "greenlang-registry-mirror", "user": SENDER}}],
        "current-context": "mirror",
    }
    webhook_file = run_dir / "audit-webhook.kubeconfig"
    webhook_file.write_text(yaml.safe_dump(webhook, sort_keys=False))
    webhook_file.chmod(0o600)
    (run_dir / SETTINGS).write_text(json.dumps({"port": port}))
    return [f"--audit-policy-file={policy_file}", f"--audit-webhook-config-file={webhook_file}", *BATCH_FLAGS]


def disable(run_dir: Path) -> None:
    """A start without the backend: no mirror should wait for batches that will not come."""
    (run_dir / SETTINGS).unlink(missing_ok=True)


def port(run_dir: Path) -> int | None:
    """The port the API server sends to, if this cluster's API server was started with the backend."""
    try:
        return int(json.loads((run_dir / SETTINGS).read_text())["port"])
    except (FileNotFoundError, KeyError, ValueError):
        return None


def spool_dir(run_dir: Path) -> Path:
    """Where the mirror keeps batches until Postgres has them: beside the cluster, not in a caller's directory."""
    return run_dir / SPOOL


def mirror_args(run_dir: Path, pki_dir: Path) -> list[str]:
    """`gl-mirror run` flags for the ingest listener the API server sends to; none without the backend."""
    listen = port(run_dir)
    if listen is None:
        return []
    ca, serving, _ = tls(pki_dir)
    return [f"--audit-address=127.0.0.1:{listen}", f"--audit-cert={serving.cert}", f"--audit-key={serving.key}",
            f"--audit-client-ca={ca.cert}", f"--audit-allowed-names={SENDER}",
            f"--audit-spool-dir={spool_dir(run_dir)}"]
