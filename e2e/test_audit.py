"""The audit trail: every step recorded with the right actor, append-only, and tamper-evident."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from e2e import governed as setup
from e2e import registry as reg
from e2e import wait
from e2e.governed import TEAM, promotion_object, version_object
from e2e.mirror_process import local_postgres, start_with_query_api
from gl_api import naming


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """The governed registry (webhooks stamp identities) mirrored into Postgres."""
    workdir = tmp_path_factory.mktemp("audited")
    with setup.running(workdir, "regopy") as env, local_postgres() as postgres:
        mirror = start_with_query_api(env.cluster, postgres.dsn(), workdir / "mirror.log")
        try:
            # Caught up: every kind (five and their Events) has been listed and bookmarked.
            wait.until(lambda: _count(postgres, "SELECT count(*) FROM watch_bookmarks") == 6, timeout=60,
                       what="the mirror to list every kind")
            yield env, postgres
        finally:
            mirror.stop()


def _count(postgres, query: str) -> int:
    try:
        with psycopg.connect(postgres.dsn()) as conn:
            return conn.execute(query).fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return 0  # migrations not applied yet


def _rows(postgres, name: str) -> list[tuple[str, str, str | None]]:
    with psycopg.connect(postgres.dsn()) as conn:
        return conn.execute("SELECT operation, actor, decision FROM audit_events WHERE name = %s ORDER BY id",
                            (name,)).fetchall()


def test_every_step_of_a_promotion_is_audited_with_its_actor(audited):
    env, postgres = audited
    assert env.apply(reg.binding("alice-developer", "alice", "greenlang-registry:developer", TEAM)).returncode == 0
    published = env.apply(version_object("5.0.0"), TEAM, as_user="alice")
    assert published.returncode == 0, published.stderr
    name = naming.object_name(reg.AGENT, "5.0.0")
    reg.wait_state(env.api, TEAM, name, "draft")
    reg.report_results(env.api, TEAM, name, **reg.GOOD_RESULTS)
    assert env.apply(promotion_object("audit-exp", "5.0.0", "experimental"), TEAM, as_user="alice").returncode == 0
    reg.wait_phase(env.api, TEAM, "audit-exp", "Succeeded")
    assert env.apply(promotion_object("audit-cert", "5.0.0", "certified", reason="go"), TEAM,
                     as_user="alice").returncode == 0
    reg.wait_phase(env.api, TEAM, "audit-cert", "AwaitingApproval")
    assert reg.approve(env.cluster, TEAM, "audit-cert", "bob").returncode == 0
    reg.wait_phase(env.api, TEAM, "audit-cert", "Succeeded")

    wanted = [("create", "alice", None), ("state_change", "alice", "draft"),
              ("state_change", "alice", "experimental"), ("state_change", "alice", "certified")]
    steps = wait.until(lambda: (rows := [r for r in _rows(postgres, name) if r[0] != "update"]) == wanted and rows,
                       timeout=30, what="the version's audit rows")
    assert steps == wanted
    promotion = wait.until(lambda: ("approval", "bob", "approved") in (rows := _rows(postgres, "audit-cert")) and rows,
                           timeout=30, what="the approval's audit row")
    assert promotion[0] == ("create", "alice", None)


def test_audit_is_queried_through_the_api_server_by_auditors_only(audited):
    env, _ = audited
    assert env.apply(reg.binding("olaf-audits", "olaf", "greenlang-registry:audit-reader")).returncode == 0
    path = "/apis/search.registry.greenlang.ai/v1alpha1/auditevents?actor=alice&limit=2"

    def listed():
        result = env.kubectl("get", "--raw", path, as_user="olaf")
        return result.returncode == 0 and json.loads(result.stdout)

    page = wait.until(listed, timeout=60, what="the audit API")
    assert len(page["items"]) == 2 and page["metadata"]["continue"]
    assert page["items"][0]["id"] > page["items"][1]["id"]  # newest first
    assert all(item["actor"] == "alice" for item in page["items"])
    following = json.loads(env.kubectl("get", "--raw", f"{path}&continue={page['metadata']['continue']}",
                                       as_user="olaf").stdout)
    assert following["items"][0]["id"] < page["items"][1]["id"]
    denied = env.kubectl("get", "--raw", path, as_user="alice")
    assert denied.returncode != 0 and 'cannot list resource "auditevents"' in denied.stderr


def test_admission_denials_are_audited(audited):
    env, postgres = audited
    refused = env.apply(promotion_object("skip-ahead", "2.4.0", "retired"), TEAM, as_user="alice")
    assert refused.returncode != 0
    rows = wait.until(lambda: _rows(postgres, "skip-ahead"), timeout=30, what="the denial's audit row")
    assert rows == [("admission_denial", "alice", "denied")]


def test_the_audit_trail_is_append_only_and_tampering_is_reported(audited):
    env, postgres = audited
    wait.until(lambda: _rows(postgres, naming.object_name(reg.AGENT, "2.3.1")), what="some audit rows")
    verify = [sys.executable, "-m", "gl_mirror", "audit-verify", f"--dsn={postgres.dsn()}"]
    intact = subprocess.run(verify, capture_output=True, text=True)
    assert intact.returncode == 0 and "audit trail intact" in intact.stdout

    postgres.sql("greenlang", "CREATE ROLE mirror_app LOGIN IN ROLE greenlang_app")
    with psycopg.connect(postgres.dsn(user="mirror_app")) as app:
        for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
            app.rollback()
    with psycopg.connect(postgres.dsn()) as owner:  # even the owner is refused by the trigger
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            owner.execute("UPDATE audit_events SET actor = 'mallory'")

    with psycopg.connect(postgres.dsn(), autocommit=True) as superuser:
        (victim,) = superuser.execute("SELECT min(id) + 1 FROM audit_events").fetchone()
        superuser.execute("SET session_replication_role = replica")  # what only a superuser can do
        superuser.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = %s", (victim,))
    tampered = subprocess.run(verify, capture_output=True, text=True)
    assert tampered.returncode == 1
    assert f"audit row {victim}: content changed: hash does not match the row" in tampered.stdout


def test_retention_drops_whole_old_months_and_keeps_the_chain(audited):
    _, postgres = audited
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute("SELECT audit_append(now() - interval '3000 days', 'alice', NULL, 'Agent', 'old', 'ancient', "
                     "NULL, 'create', NULL, NULL, NULL, NULL)")
        (dropped,) = conn.execute("SELECT audit_expire(2555)").fetchone()
        assert dropped == 1
        assert conn.execute("SELECT count(*) FROM audit_events WHERE name = 'ancient'").fetchone() == (0,)
        record = conn.execute("SELECT operation, decision FROM audit_events WHERE operation = 'retention'").fetchone()
        assert record == ("retention", "expired")
