"""`gl audit query --event-type`: the documented vocabulary, each type produced for real and found by it.

One registry (API server with its audit webhook on, webhook server, operator as separate
processes, the mirror with its query API in front of a real Postgres) and one user's story:
alice publishes and promotes, bob approves, the platform deploys, the version is deprecated and
retires at its sunset, a candidate is withdrawn, policies and RBAC refuse requests. The auditor
olaf then asks for each event type through `gl audit query`, with his own credentials.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg.types.json import Jsonb
import pytest
import yaml
from kubernetes import config as kube_config

from e2e import governed as setup
from e2e import registry as reg
from e2e import wait
from e2e import REPO
from e2e.governed import PROD, TEAM, TENANT, deployment_object, promotion_object, version_object
from e2e.mirror_process import count, local_postgres, start_with_query_api
from gl_api import audit_events, naming
from gl_devenv import apiserver_audit, crd_install, registry_services, webhook_service
from gl_devenv.cluster import LocalCluster
from gl_kube import events
from gl_mirror import migrations

AUDITOR = "olaf"


@pytest.fixture(scope="module")
def trail(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("audit-vocabulary")
    cluster = LocalCluster(workdir / "cluster", audit_webhook=True)
    cluster.start()
    try:
        crd_install.install(cluster)
        env = setup.Governed(cluster, kube_config.new_client_from_config(config_file=str(cluster.kubeconfig)),
                             "regopy", None)
        env.start_webhooks()
        env.start_operator()
        with local_postgres() as postgres:
            mirror = start_with_query_api(cluster, postgres.dsn(), workdir / "mirror.log",
                                          tuple(apiserver_audit.mirror_args(cluster.run_dir, cluster.pki_dir)))
            try:
                wait.until(lambda: count(postgres.dsn(), "SELECT count(*) FROM watch_bookmarks") == 6, timeout=60,
                           what="the mirror to list every kind")
                assert env.apply(reg.binding("olaf-audits", AUDITOR, "greenlang-registry:audit-reader")
                                 ).returncode == 0
                _story(env)
                yield env, postgres
            finally:
                mirror.stop()
    finally:
        for name in (registry_services.OPERATOR, webhook_service.WEBHOOKS):
            cluster.processes.stop(name)
        cluster.stop()


def _promote(env, name: str, version: str, target: str, phase: str = "Succeeded", **spec) -> None:
    result = env.apply(promotion_object(name, version, target, **spec), TEAM, as_user="alice")
    assert result.returncode == 0, result.stderr
    reg.wait_phase(env.api, TEAM, name, phase)


def _certify(env, version: str) -> None:
    _promote(env, f"cert-{version}", version, "certified", phase="AwaitingApproval", reason="evaluated")
    assert reg.approve(env.cluster, TEAM, f"cert-{version}", "bob").returncode == 0
    reg.wait_phase(env.api, TEAM, f"cert-{version}", "Succeeded")


def _story(env) -> None:
    tenant = yaml.safe_load((REPO / "examples" / "tenant-policy.yaml").read_text())
    # The team publishes in the tenant's team namespace, so its rows carry the tenant (`--tenant`).
    tenant["spec"].update(quotas={"cpu": "2", "memory": "8Gi", "maxDeployments": 2}, teamNamespaces=[TEAM])
    assert env.apply(tenant).returncode == 0
    wait.until(lambda: "requests.cpu" in env.kubectl(
        "get", "resourcequota", "greenlang-tenant-quota", "-n", PROD, "-o", "jsonpath={.status.used}").stdout,
        timeout=60, what="the tenant quota to be counted")
    wait.until(lambda: env.kubectl("get", "namespace", TEAM).returncode == 0, timeout=60,
               what="the team namespace to be provisioned")
    reg.grant_users(env.cluster, TEAM)
    assert env.apply(reg.binding("alice-developer", "alice", "greenlang-registry:developer", TEAM)).returncode == 0
    assert env.apply(reg.example("Agent"), TEAM).returncode == 0
    for version in ("2.3.1", "2.4.0", "2.5.0"):  # agent.published, agent.promoted
        published = env.apply(version_object(version), TEAM, as_user="alice")
        assert published.returncode == 0, published.stderr
        name = naming.object_name(reg.AGENT, version)
        reg.wait_state(env.api, TEAM, name, "draft")
        reg.report_results(env.api, TEAM, name, **reg.GOOD_RESULTS)
        _promote(env, f"exp-{version}", version, "experimental")
    for version in ("2.3.1", "2.4.0"):  # agent.approved, agent.promoted
        _certify(env, version)

    # deployment.created
    deployed = env.apply(deployment_object("cbam", "2.3.1"), PROD)
    assert deployed.returncode == 0, deployed.stderr
    # deployment.rolled_back: on an SLO breach the operator posts this Event (the runtime needs the real
    # node, which these tests leave alone); here it is posted as the operator, through the API server.
    deployment = reg.get(env.api, PROD, "agentdeployments", "cbam")
    events.record(reg.as_operator(env.api), deployment, events.WARNING, events.ROLLED_BACK,
                  "rolled back 2.3.1 -> 2.3.0: error rate 7.1% > SLO 1.0% over 5m")

    # agent.deprecated, then agent.retired by the operator at the sunset
    sunset = (datetime.now(timezone.utc) + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _promote(env, "deprecate-2.3.1", "2.3.1", "deprecated", reason="2.4.0 fixes rounding",
             deprecation={"replacement": "2.4.0", "sunsetAt": sunset})
    reg.wait_state(env.api, TEAM, naming.object_name(reg.AGENT, "2.3.1"), "retired", timeout=30)

    # agent.rolled_back: the 2.5.0 experiment withdrawn
    _promote(env, "withdraw-2.5.0", "2.5.0", "draft", reason="the candidate regressed on steel imports")

    # policy.denied, by the registry's webhooks (a Rego policy) and by the API server's own admission policy
    refused = env.apply(promotion_object("skip-ahead", "2.5.0", "retired"), TEAM, as_user="alice")
    assert refused.returncode != 0
    status_write = env.kubectl("patch", "agentversion", naming.object_name(reg.AGENT, "2.5.0"), "-n", TEAM,
                               "--subresource=status", "--type=merge", "-p", '{"status": {"state": "certified"}}')
    assert status_write.returncode != 0 and "ValidatingAdmissionPolicy" in status_write.stderr, status_write.stderr
    # access.denied: RBAC
    sneaky = env.kubectl("delete", "agent", reg.AGENT, "-n", TEAM, as_user="mallory")
    assert sneaky.returncode != 0 and 'User "mallory" cannot delete resource "agents"' in sneaky.stderr


def _gl(env, *args: str, user: str = AUDITOR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from gl_cli.main import main; main()", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "250",
                                                      "KUBECONFIG": str(env.cluster.user_kubeconfig(user))})


def _query(env, event_type: str, *args: str) -> list[dict]:
    result = _gl(env, "audit", "query", "--event-type", event_type, "-o", "json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["items"]


def _rows(env, event_type: str, expected: int, *args: str) -> list[dict]:
    """The rows of one type, once the mirror holds as many as the story made (some arrive seconds later)."""
    return wait.until(lambda: len(rows := _query(env, event_type, *args)) >= expected and rows, timeout=60,
                      what=f"{expected} {event_type} rows")


def _seen(rows: list[dict]) -> list[tuple]:
    return sorted((r["actor"], r["object"]["kind"], r["object"]["name"]) for r in rows)


def test_each_event_type_is_found_by_its_name(trail):
    env, _ = trail
    version = {v: naming.object_name(reg.AGENT, v) for v in ("2.3.1", "2.4.0", "2.5.0")}
    found = {event_type: _rows(env, event_type, 1) for event_type in audit_events.EVENT_TYPES}
    for event_type, rows in found.items():
        assert {r["eventType"] for r in rows} == {event_type}

    assert _seen(_rows(env, "agent.published", 3)) == [("alice", "AgentVersion", name)
                                                       for name in sorted(version.values())]
    promoted = _rows(env, "agent.promoted", 5)
    assert sorted((r["object"]["name"], r["change"]["from"], r["change"]["to"], r["actor"]) for r in promoted) == [
        (version["2.3.1"], "draft", "experimental", "alice"), (version["2.3.1"], "experimental", "certified", "alice"),
        (version["2.4.0"], "draft", "experimental", "alice"), (version["2.4.0"], "experimental", "certified", "alice"),
        (version["2.5.0"], "draft", "experimental", "alice")]
    assert _seen(_rows(env, "agent.approved", 2)) == [("bob", "Promotion", "cert-2.3.1"),
                                                      ("bob", "Promotion", "cert-2.4.0")]
    (deprecated,) = found["agent.deprecated"]
    assert (deprecated["object"]["name"], deprecated["actor"], deprecated["change"]["from"]) == (
        version["2.3.1"], "alice", "certified")
    (retired,) = found["agent.retired"]
    assert retired["object"]["name"] == version["2.3.1"] and retired["reason"].startswith("sunset ")
    assert retired["actor"] == setup.OPERATOR_USER and retired["tenant"] == TENANT
    (withdrawn,) = found["agent.rolled_back"]
    assert (withdrawn["object"]["name"], withdrawn["change"]["from"], withdrawn["change"]["to"],
            withdrawn["reason"]) == (version["2.5.0"], "experimental", "draft",
                                     "the candidate regressed on steel imports")
    (created,) = found["deployment.created"]
    assert (created["object"], created["tenant"]) == (
        {"kind": "AgentDeployment", "namespace": PROD, "name": "cbam"}, TENANT)
    (rolled_back,) = found["deployment.rolled_back"]
    assert rolled_back["object"]["name"] == "cbam" and "error rate 7.1%" in rolled_back["reason"]

    denied = _rows(env, "policy.denied", 2)
    assert sorted((r["object"]["kind"], r["object"]["name"], r["operation"]) for r in denied) == [
        ("AgentVersion", version["2.5.0"], "patch"), ("Promotion", "skip-ahead", "admission_denial")]
    webhook = next(r for r in denied if r["operation"] == "admission_denial")
    assert webhook["actor"] == "alice" and "retired" in webhook["reason"]
    # The webhook's refusal is one event, though the API server's log holds the same request too.
    access = _rows(env, "access.denied", 1)
    assert ("mallory", "Agent", reg.AGENT, "delete") in [
        (r["actor"], r["object"]["kind"], r["object"]["name"], r["operation"]) for r in access]
    assert all(r["object"]["name"] != "skip-ahead" for r in access)


def test_the_quick_starts_audit_query(trail):
    """`gl audit query --tenant customer-abc-123 --event-type agent.promoted --start-time <date>`, as a table."""
    env, _ = trail
    today = datetime.now(timezone.utc).date()
    _rows(env, "agent.promoted", 5)
    table = _gl(env, "audit", "query", "--tenant", TENANT, "--event-type", "agent.promoted", "--start-time",
                today.isoformat())
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("agent.promoted") == 5 and "state_change" in table.stdout
    tomorrow = _query(env, "agent.promoted", "--start-time", (today + timedelta(days=1)).isoformat())
    assert tomorrow == []
    through_today = _query(env, "agent.promoted", "--start-time", f"{today.isoformat()}T00:00:00Z",
                           "--end-time", today.isoformat())
    assert len(through_today) == 5  # an end date includes its day


def test_an_unknown_event_type_or_time_is_refused_with_what_to_write(trail):
    env, _ = trail
    unknown = _gl(env, "audit", "query", "--event-type", "agent.promotd")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == f"error: unknown event type 'agent.promotd'; use one of: " \
                                     f"{', '.join(audit_events.EVENT_TYPES)}"
    bad_time = _gl(env, "audit", "query", "--start-time", "last week")
    assert bad_time.returncode == 2 and "--start-time must be a date such as 2025-11-01 or an RFC 3339 time" in \
        " ".join(bad_time.stderr.split())
    # The mirror refuses the same, to whoever asks it directly.
    raw = env.kubectl("get", "--raw", "/apis/search.registry.greenlang.ai/v1alpha1/auditevents?eventType=promoted",
                      as_user=AUDITOR)
    assert raw.returncode != 0 and "unknown event type 'promoted'; use one of: agent.published" in raw.stderr


def test_the_mapping_classifies_rows_of_both_sources(tmp_path):
    """The SQL mapping over rows as each source writes them, in a real Postgres: a webhook's refusal is
    one policy.denied event (its Event), not an access.denied one too (its request in the API server's log)."""
    with local_postgres() as postgres:
        migrations.apply(postgres.dsn())
        rows = [  # (kind, operation, change, request_uid, decision, reason) -> the event type
            ("AgentVersion", "create", None, None, None, None, "agent.published"),
            ("AgentVersion", "create", {"source": "kube-apiserver"}, "a1", "allowed", None, None),
            ("AgentVersion", "state_change", {"from": None, "to": "draft"}, None, "draft", "published", None),
            ("AgentVersion", "state_change", {"from": "certified", "to": "experimental"}, None, "experimental",
             "broke", "agent.rolled_back"),
            ("AgentVersion", "state_change", {"from": "deprecated", "to": "certified"}, None, "certified",
             "undo", "agent.rolled_back"),
            ("AgentVersion", "update", {"spec": {}}, None, None, None, None),
            ("Promotion", "admission_denial", {}, None, "denied", "cannot move from draft to retired",
             "policy.denied"),
            ("Promotion", "create", {}, "a2", "denied",
             'admission webhook "promotions.registry.greenlang.ai" denied the request: cannot move', None),
            ("AgentVersion", "patch", {}, "a3", "denied", "agentversions.registry.greenlang.ai \"x\" is forbidden: "
             "ValidatingAdmissionPolicy 'gl-status' with binding 'gl-status' denied request: only the operator",
             "policy.denied"),
            ("Agent", "delete", {}, "a4", "denied", 'agents "x" is forbidden: User "mallory" cannot delete',
             "access.denied"),
            ("AuditEvent", "list", {}, "a5", "denied", None, "access.denied"),
            ("Agent", "get", {}, "a6", "allowed", None, None),
        ]
        with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
            for kind, operation, change, uid, decision, reason, _ in rows:
                conn.execute("SELECT audit_append(NULL, 'someone', NULL, %s, 'team', 'x', NULL, %s, %s, %s, %s, %s)",
                             (kind, operation, Jsonb(change) if change is not None else None, uid, decision, reason))
            found = [r[0] for r in conn.execute(f"SELECT {audit_events.sql_case()} FROM audit_events ORDER BY id")]
    assert found == [expected for *_, expected in rows]
