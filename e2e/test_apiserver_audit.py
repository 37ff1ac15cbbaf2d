"""The API server's own audit log in the mirror's trail: who really acted, as the API server authenticated them.

The control plane runs with its audit webhook backend on (gl_devenv.apiserver_audit), sending to
the mirror's ingest listener over mutual TLS. Users act with their own client certificates (no
impersonation unless the test is about it) and the trail is read the way an auditor reads it,
through the API server's aggregated audit API, or in SQL where the test counts rows.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from kubernetes import client
from kubernetes import config as kube_config
from prometheus_client.parser import text_string_to_metric_families

from e2e import registry as reg
from e2e import wait
from e2e.mirror_process import MirrorProcess, count, local_postgres, start_with_query_api
from gl_api import GROUP, VERSION
from gl_devenv import apiserver_audit, build, certs, crd_install
from gl_devenv.cluster import LocalCluster, free_port
from gl_mirror import audit

NAMESPACE = "audit-team"
AUDIT_API = "/apis/search.registry.greenlang.ai/v1alpha1"
RBAC = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
     "metadata": {"name": "agent-editor", "namespace": NAMESPACE},
     "rules": [{"apiGroups": [GROUP], "resources": ["agents"],
                "verbs": ["get", "list", "watch", "create", "patch", "update"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
     "metadata": {"name": "agent-remover", "namespace": NAMESPACE},
     "rules": [{"apiGroups": [GROUP], "resources": ["agents"], "verbs": ["get", "delete"]}]},
    # dave (support) may act as alice, and only as her.
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "impersonate-alice"},
     "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["alice"]}]},
    reg.binding("alice-edits", "alice", "agent-editor", NAMESPACE, "Role"),
    reg.binding("carol-removes", "carol", "agent-remover", NAMESPACE, "Role"),
    reg.binding("dave-impersonates", "dave", "impersonate-alice"),
    reg.binding("olaf-audits", "olaf", "greenlang-registry:audit-reader"),
]


@dataclass
class Env:
    cluster: LocalCluster
    api: client.ApiClient
    postgres: object
    mirror: MirrorProcess
    workdir: Path
    metrics_port: int

    def kubectl(self, user: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl with ``user``'s own client certificate: the API server authenticates them, nobody vouches."""
        return subprocess.run([str(build.binary("kubernetes", "kubectl")),
                               f"--kubeconfig={self.cluster.user_kubeconfig(user)}", *args],
                              input=input, capture_output=True, text=True, timeout=60)

    def rows(self, where: str, *params, database: str | None = None) -> list[tuple]:
        dsn = self.postgres.dsn(database=database) if database else self.postgres.dsn()
        with psycopg.connect(dsn) as conn:
            return conn.execute(f"SELECT actor, operation, decision, reason, change, request_uid, uid::text "
                                f"FROM audit_events WHERE {where} ORDER BY id", params).fetchall()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("apiserver-audit")
    cluster = LocalCluster(workdir / "cluster", audit_webhook=True)
    cluster.start()
    try:
        crd_install.install(cluster)
        applied = cluster.kubectl("apply", "-f", "-", check=False,
                                  input=json.dumps({"apiVersion": "v1", "kind": "List", "items": RBAC}))
        assert applied.returncode == 0, applied.stderr
        with local_postgres() as postgres:
            metrics_port = free_port()
            mirror = start_with_query_api(cluster, postgres.dsn(), workdir / "mirror.log",
                                          (*apiserver_audit.mirror_args(cluster.run_dir, cluster.pki_dir),
                                           f"--metrics-address=127.0.0.1:{metrics_port}"))
            try:
                env = Env(cluster, kube_config.new_client_from_config(config_file=str(cluster.kubeconfig)),
                          postgres, mirror, workdir, metrics_port)
                wait.until(lambda: count(postgres.dsn(), "SELECT count(*) FROM watch_bookmarks") == 6, timeout=60,
                           what="the mirror to list every kind")
                yield env
            finally:
                mirror.stop()
    finally:
        cluster.stop()


def _agent(name: str) -> str:
    agent = reg.example("Agent")
    agent["metadata"] = {"name": name, "namespace": NAMESPACE, "labels": agent["metadata"].get("labels") or {}}
    return json.dumps(agent)


def _created_and_modified_by_alice(env: Env, name: str) -> str:
    created = env.kubectl("alice", "create", "-f", "-", input=_agent(name))
    assert created.returncode == 0, created.stderr
    changed = env.kubectl("alice", "annotate", "-n", NAMESPACE, f"agent/{name}", "note=reviewed")
    assert changed.returncode == 0, changed.stderr
    obj = reg.get(env.api, NAMESPACE, "agents", name)
    assert obj["metadata"]["annotations"]["registry.greenlang.ai/last-modified-by"] == "alice"
    return obj["metadata"]["uid"]


def _deleted_in_mirror(env: Env, uid: str, database: str | None = None) -> bool:
    dsn = env.postgres.dsn(database=database) if database else env.postgres.dsn()
    return count(dsn, "SELECT count(*) FROM registry_objects WHERE uid = %s AND deleted", uid) == 1


def _audit_api(env: Env, user: str, path: str, **params) -> subprocess.CompletedProcess[str]:
    return env.kubectl(user, "get", "--raw", f"{AUDIT_API}{path}?{urllib.parse.urlencode(params)}")


def test_a_delete_names_the_user_who_deleted_not_the_last_modifier(env):
    uid = _created_and_modified_by_alice(env, "deleted-by-carol")
    deleted = env.kubectl("carol", "delete", "-n", NAMESPACE, "agent/deleted-by-carol")
    assert deleted.returncode == 0, deleted.stderr

    # The mirror has seen the delete on its watch too: that must add no row claiming alice.
    wait.until(lambda: _deleted_in_mirror(env, uid), timeout=30, what="the mirror to see the delete")
    rows = wait.until(lambda: env.rows("name = %s AND operation = 'delete'", "deleted-by-carol"), timeout=30,
                      what="the delete's audit row")
    assert [(actor, decision, change["source"], row_uid) for actor, _, decision, _, change, _, row_uid in rows] == [
        ("carol", "allowed", "kube-apiserver", uid)]
    assert rows[0][4]["sourceIPs"] == ["127.0.0.1"] and "impersonatedUser" not in rows[0][4]

    # What an auditor sees through the API server.
    listed = wait.until(lambda: (r := _audit_api(env, "olaf", f"/namespaces/{NAMESPACE}/auditevents",
                                                 name="deleted-by-carol", operation="delete")).returncode == 0 and r,
                        timeout=60, what="the audit API")
    items = json.loads(listed.stdout)["items"]
    assert [(i["actor"], i["object"]["kind"], i["auditID"]) for i in items] == [("carol", "Agent", rows[0][5])]


def test_reads_are_recorded_with_who_read(env):
    _created_and_modified_by_alice(env, "read-by-alice")
    as_alice = client.CustomObjectsApi(kube_config.new_client_from_config(
        config_file=str(env.cluster.user_kubeconfig("alice"))))
    _, _, headers = as_alice.get_namespaced_custom_object_with_http_info(GROUP, VERSION, NAMESPACE, "agents",
                                                                         "read-by-alice")
    rows = wait.until(lambda: env.rows("request_uid = %s", headers["Audit-Id"]), timeout=30,
                      what="the read's audit row")
    actor, operation, decision, _, change, _, _ = rows[0]
    assert (actor, operation, decision) == ("alice", "get", "allowed")
    assert "request" not in change  # reads are recorded at Metadata level: who, what, when, not the object


def test_an_impersonated_request_records_both_users(env):
    _created_and_modified_by_alice(env, "support-case")
    changed = env.kubectl("dave", "--as=alice", "annotate", "-n", NAMESPACE, "agent/support-case", "support=dave")
    assert changed.returncode == 0, changed.stderr
    rows = wait.until(lambda: env.rows("name = %s AND operation = 'patch' AND change ->> 'impersonator' IS NOT NULL",
                                       "support-case"), timeout=30, what="the impersonated request's audit row")
    actor, _, decision, _, change, _, _ = rows[0]
    assert (actor, decision, change["impersonator"], change["user"]["username"],
            change["impersonatedUser"]["username"]) == ("alice", "allowed", "dave", "dave", "alice")
    # The object itself only knows alice: the annotation names whom the API server authorized.
    annotations = reg.get(env.api, NAMESPACE, "agents", "support-case")["metadata"]["annotations"]
    assert annotations["registry.greenlang.ai/last-modified-by"] == "alice"


def test_denied_requests_are_recorded_with_the_api_servers_message(env):
    _created_and_modified_by_alice(env, "not-carols")
    refused = env.kubectl("carol", "annotate", "-n", NAMESPACE, "agent/not-carols", "owner=carol")
    assert refused.returncode != 0 and 'User "carol" cannot patch resource "agents"' in refused.stderr
    # kubectl read the object first (carol may); then the patch was refused.
    rows = wait.until(lambda: env.rows("name = %s AND actor = 'carol' AND operation = 'patch'", "not-carols"),
                      timeout=30, what="the denial's audit row")
    assert [decision for _, _, decision, *_ in rows] == ["denied"]
    assert 'User "carol" cannot patch resource "agents"' in rows[0][3]
    assert rows[0][4]["responseCode"] == 403

    # A refused read of the audit trail itself is recorded too, by the API server that refused it.
    peeked = _audit_api(env, "alice", "/auditevents", actor="carol")
    assert peeked.returncode != 0 and 'cannot list resource "auditevents"' in peeked.stderr
    rows = wait.until(lambda: env.rows("kind = 'AuditEvent' AND actor = 'alice'"), timeout=30,
                      what="the refused audit read's row")
    assert [(operation, decision) for _, operation, decision, *_ in rows] == [("list", "denied")]


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def test_restarting_the_mirror_loses_no_request_and_duplicates_none(env):
    _created_and_modified_by_alice(env, "busy")
    custom = client.CustomObjectsApi(env.api)
    sent: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        n = 0
        while not stop.is_set():
            _, _, headers = custom.patch_namespaced_custom_object_with_http_info(
                GROUP, VERSION, NAMESPACE, "agents", "busy", {"metadata": {"annotations": {"e2e/sequence": str(n)}}})
            sent.append(headers["Audit-Id"])  # the API server's id of the request, as its audit log has it
            n += 1
            time.sleep(0.05)

    writer = threading.Thread(target=traffic)
    writer.start()
    try:
        time.sleep(2)
        env.mirror.process.kill()  # no goodbye: batches in flight are cut off
        env.mirror.process.wait(timeout=10)
        before_restart = len(sent)
        time.sleep(2)  # batches sent meanwhile find nobody listening
        env.mirror.start()
        port = apiserver_audit.port(env.cluster.run_dir)
        wait.until(lambda: _listening(port), timeout=60, what="the restarted mirror's audit listener")
        while_away = len(sent) - before_restart
        time.sleep(2)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert while_away > 10, "too few requests while the mirror was away to test anything"

    def stored() -> dict[str, int]:
        with psycopg.connect(env.postgres.dsn()) as conn:
            return dict(conn.execute("SELECT request_uid, count(*) FROM audit_events WHERE request_uid = ANY(%s) "
                                     "GROUP BY request_uid", (sent,)).fetchall())

    # A batch cut off by the kill comes again after 30 to 36 s (--audit-webhook-initial-backoff).
    counts = wait.until(lambda: found if len(found := stored()) == len(sent) else None, timeout=90,
                        what=f"all {len(sent)} requests in the trail")
    assert set(counts) == set(sent) and set(counts.values()) == {1}
    with psycopg.connect(env.postgres.dsn()) as conn:
        assert conn.execute("SELECT request_uid FROM audit_events WHERE request_uid IS NOT NULL GROUP BY request_uid "
                            "HAVING count(*) > 1").fetchall() == []
        assert conn.execute("SELECT * FROM audit_verify()").fetchall() == []


def _metric(env: Env, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{env.metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


def _spooled_audit_ids(env: Env) -> set[str]:
    """The auditIDs in the batches waiting in the mirror's spool (each file holds a batch as the API server sent it)."""
    spool = apiserver_audit.spool_dir(env.cluster.run_dir)
    return {event["auditID"] for path in spool.glob("*.json") for event in json.loads(path.read_bytes())["items"]}


def test_a_postgres_outage_longer_than_the_api_servers_retries_loses_no_request(env):
    """The API server gives up on a batch after its retries (about 4 minutes); Postgres may be away for longer.

    Rather than wait out those minutes, the test shows the API server has nothing left to retry: the
    mirror answered every batch 200 (none 503) and holds them on disk, which outlives even a mirror
    restart, and appends them once Postgres is back, each request exactly once."""
    _created_and_modified_by_alice(env, "through-outage")
    custom = client.CustomObjectsApi(env.api)
    refused_before = _metric(env, "greenlang_registry_mirror_apiserver_audit_batches_total", code="503")
    sent: list[str] = []
    env.postgres.stop("fast")
    try:
        for n in range(20):
            _, _, headers = custom.patch_namespaced_custom_object_with_http_info(
                GROUP, VERSION, NAMESPACE, "agents", "through-outage",
                {"metadata": {"annotations": {"e2e/sequence": str(n)}}})
            sent.append(headers["Audit-Id"])
            time.sleep(0.1)
        wait.until(lambda: set(sent) <= _spooled_audit_ids(env), timeout=30,
                   what="every request of the outage on the mirror's disk")
        assert _metric(env, "greenlang_registry_mirror_apiserver_audit_batches_total", code="503") == refused_before
        assert _metric(env, "greenlang_registry_mirror_audit_spooled_batches") >= 1

        # The spool is now the only copy: a mirror killed and started again while Postgres is still away keeps it.
        env.mirror.process.kill()
        env.mirror.process.wait(timeout=10)
        env.mirror.start()
        wait.until(lambda: _listening(apiserver_audit.port(env.cluster.run_dir)), timeout=60,
                   what="the restarted mirror's audit listener, Postgres still away")
        assert set(sent) <= _spooled_audit_ids(env)
    finally:
        env.postgres.start()

    def stored() -> dict[str, int]:
        with psycopg.connect(env.postgres.dsn()) as conn:
            return dict(conn.execute("SELECT request_uid, count(*) FROM audit_events WHERE request_uid = ANY(%s) "
                                     "GROUP BY request_uid", (sent,)).fetchall())

    # Well before the API server's first retry (30 s after a failure) could have brought anything.
    counts = wait.until(lambda: found if len(found := stored()) == len(sent) else None, timeout=25,
                        what=f"all {len(sent)} requests of the outage in the trail")
    assert set(counts.values()) == {1}
    wait.until(lambda: _metric(env, "greenlang_registry_mirror_audit_spooled_batches") == 0, timeout=30,
               what="the spool to drain")
    assert _metric(env, "greenlang_registry_mirror_audit_flushed_batches_total") >= 1
    with psycopg.connect(env.postgres.dsn()) as conn:
        # In arrival order: the requests' rows follow one another as the requests did.
        order = [uid for (uid,) in conn.execute("SELECT request_uid FROM audit_events WHERE request_uid = ANY(%s) "
                                                "ORDER BY id", (sent,))]
    assert order == sent
    verified = subprocess.run([sys.executable, "-m", "gl_mirror", "audit-verify", f"--dsn={env.postgres.dsn()}",
                               f"--kubeconfig={env.cluster.kubeconfig}",
                               f"--anchor-namespace={env.mirror.own_anchor_namespace}"],
                              capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and "audit trail intact" in verified.stdout, verified.stdout + verified.stderr


def _event(audit_id: str, name: str) -> dict:
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": audit_id,
            "stage": "ResponseComplete", "requestURI": f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/agents/{name}",
            "verb": "get", "user": {"username": "alice", "groups": ["system:authenticated"]},
            "sourceIPs": ["127.0.0.1"], "userAgent": "e2e",
            "objectRef": {"resource": "agents", "namespace": NAMESPACE, "name": name, "apiGroup": GROUP,
                          "apiVersion": VERSION},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestReceivedTimestamp": "2026-01-01T10:00:00.000001Z", "stageTimestamp": "2026-01-01T10:00:00.002Z"}


def _post(env: Env, body: dict, cert: certs.Pair | None) -> tuple[int, dict]:
    """POST to the ingest listener as whoever ``cert`` names (None: no certificate)."""
    ca, _, _ = apiserver_audit.tls(env.cluster.pki_dir)
    context = ssl.create_default_context(cafile=str(ca.cert))
    if cert:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    import http.client

    connection = http.client.HTTPSConnection("127.0.0.1", apiserver_audit.port(env.cluster.run_dir),
                                             context=context, timeout=10)
    try:
        connection.request("POST", apiserver_audit.INGEST_PATH, json.dumps(body),
                           {"Content-Type": "application/json"})
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def test_a_batch_sent_again_adds_nothing_and_only_the_api_server_may_send(env):
    ca, _, apiserver = apiserver_audit.tls(env.cluster.pki_dir)
    audit_id = str(uuid.uuid4())
    batch = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {},
             "items": [_event(audit_id, "retried")]}
    assert _post(env, batch, apiserver) == (200, {"stored": 1, "duplicates": 0})
    assert _post(env, batch, apiserver) == (200, {"stored": 0, "duplicates": 1})
    assert [actor for actor, *_ in env.rows("request_uid = %s", audit_id)] == ["alice"]

    forged = {**batch, "items": [_event(str(uuid.uuid4()), "forged")]}
    # Another name from the same CA (a certificate issued for something else) is refused...
    other = certs.ensure_leaf(Path(env.cluster.pki_dir), "audit-intruder", ca, "intruder")
    status, body = _post(env, forged, other)
    assert status == 403 and "'intruder' may not send audit events" in body["message"]
    # ...and a certificate from the cluster's CA, or none, does not get past TLS.
    for cert in (certs.ensure_pki(Path(env.cluster.pki_dir)).admin, None):
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            _post(env, forged, cert)
    assert env.rows("name = 'forged'") == []

    status, body = _post(env, {"kind": "Event", "apiVersion": "audit.k8s.io/v1"}, apiserver)
    assert status == 400 and "apiVersion/kind must be audit.k8s.io/v1 EventList" in body["message"]


def test_a_nul_in_one_request_loses_no_request_of_its_batch(env):
    """Postgres text cannot hold NUL; a client putting one in an annotation must not make the batch,
    with other users' requests in it, fail: the character is stored as U+FFFD and the batch goes in."""
    _, _, apiserver = apiserver_audit.tls(env.cluster.pki_dir)
    with_nul, beside = _event(str(uuid.uuid4()), "with-nul"), _event(str(uuid.uuid4()), "beside-it")
    with_nul["requestObject"] = {"metadata": {"annotations": {"note": "nul\u0000here"}}}
    batch = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [with_nul, beside]}
    assert _post(env, batch, apiserver) == (200, {"stored": 2, "duplicates": 0})
    ((change,),) = [(row[4],) for row in env.rows("name = 'with-nul'")]
    assert "nul\ufffdhere" in json.dumps(change, ensure_ascii=False)
    assert len(env.rows("name = 'beside-it'")) == 1


def test_without_the_api_servers_log_a_delete_names_no_deleter(env):
    """A managed cluster: the watch alone sees the object go, and does not know who deleted it."""
    env.postgres.sql("postgres", "CREATE DATABASE watch_only")
    watch_only = MirrorProcess(Path(env.cluster.kubeconfig), env.postgres.dsn(database="watch_only"),
                               env.workdir / "watch-only-mirror.log")
    watch_only.start()
    try:
        wait.until(lambda: count(env.postgres.dsn(database="watch_only"), "SELECT count(*) FROM watch_bookmarks")
                   == 6, timeout=60, what="the watch-only mirror to list every kind")
        uid = _created_and_modified_by_alice(env, "deleted-unseen")
        assert env.kubectl("carol", "delete", "-n", NAMESPACE, "agent/deleted-unseen").returncode == 0
        wait.until(lambda: _deleted_in_mirror(env, uid, "watch_only"), timeout=30, what="the watch to see the delete")
        rows = env.rows("name = %s AND operation = 'delete'", "deleted-unseen", database="watch_only")
    finally:
        watch_only.stop()
    assert [(actor, change) for actor, _, _, _, change, _, _ in rows] == [
        (audit.DELETER_UNKNOWN, {"lastModifiedBy": "alice"})]
