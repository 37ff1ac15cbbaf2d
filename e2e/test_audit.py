"""The audit trail: every step recorded with the right actor, append-only, and tamper-evident.

Tampering is done as the database superuser (the one thing no trigger or grant can stop) and must
be reported by `gl audit verify`, through the API server, naming the first bad row.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from e2e import governed as setup
from e2e import registry as reg
from e2e import wait
from e2e.governed import TEAM, promotion_object, version_object
from e2e.mirror_process import count, local_postgres, start_with_query_api
from gl_api import naming
from gl_mirror import anchor, migrations

ANCHOR_SECONDS = 1  # the mirror anchors the head every second here (at most a minute in production)
AUDITOR = "olaf"
# The trail's beginning, written years ago: two months past the 2555-day retention and one within it.
OLD_ROWS = [(3000, "ancient-1"), (3000, "ancient-2"), (2800, "old-1"), (2800, "old-2"), (2000, "kept-1"),
            (2000, "kept-2")]
# What audit_append wrote then; the function takes its time from the clock, so a superuser writes it.
_BACKDATED_APPEND = """DO $$ DECLARE r audit_events; head record; BEGIN
    SELECT * INTO head FROM audit_head();
    r := jsonb_populate_record(NULL::audit_events, {row});
    r.id := head.id + 1;
    r.at := now() - make_interval(days => {days});
    r.digest_version := 2;
    r.prev_hash := head.hash;
    r.hash := audit_digest_v2(r);
    PERFORM audit_ensure_partition(r.at);
    INSERT INTO audit_events SELECT r.*;
END $$"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """The governed registry (webhooks stamp identities) mirrored into Postgres, whose trail began years ago."""
    workdir = tmp_path_factory.mktemp("audited")
    with setup.running(workdir, "regopy") as env, local_postgres() as postgres:
        migrations.apply(postgres.dsn())
        with psycopg.connect(postgres.dsn(), autocommit=True) as superuser:
            for days, name in OLD_ROWS:
                row = {"actor": "alice", "kind": "Agent", "namespace": "old", "name": name, "operation": "create"}
                superuser.execute(sql.SQL(_BACKDATED_APPEND).format(row=sql.Literal(json.dumps(row)),
                                                                   days=sql.Literal(days)))
            superuser.execute("CREATE ROLE mirror_app LOGIN IN ROLE greenlang_app")
        assert env.apply(reg.binding("olaf-audits", AUDITOR, "greenlang-registry:audit-reader")).returncode == 0
        mirror = start_with_query_api(env.cluster, postgres.dsn(), workdir / "mirror.log",
                                      (f"--anchor-interval={ANCHOR_SECONDS}",
                                       f"--anchor-namespace={anchor.DEFAULT_NAMESPACE}"))
        try:
            # Caught up: every kind (five and their Events) has been listed and bookmarked.
            wait.until(lambda: count(postgres.dsn(), "SELECT count(*) FROM watch_bookmarks") == 6, timeout=60,
                       what="the mirror to list every kind")
            yield env, postgres
        finally:
            mirror.stop()


def _rows(postgres, name: str) -> list[tuple[str, str, str | None]]:
    with psycopg.connect(postgres.dsn()) as conn:
        return conn.execute("SELECT operation, actor, decision FROM audit_events WHERE name = %s ORDER BY id",
                            (name,)).fetchall()


def _gl(env, *args: str, user: str = AUDITOR) -> subprocess.CompletedProcess[str]:
    """The real `gl`, as an auditor with their own kubeconfig: verification goes through the API server."""
    return subprocess.run([sys.executable, "-c", "from gl_cli.main import main; main()", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "COLUMNS": "250",
                                                      "KUBECONFIG": str(env.cluster.user_kubeconfig(user))})


def _anchored(env) -> tuple[int, str] | None:
    found = anchor.read(env.api, anchor.DEFAULT_NAMESPACE)
    return (found.last_id, found.hash) if found else None


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


def test_rows_are_chained_in_arrival_order_with_the_event_time_beside_them(audited):
    env, postgres = audited
    name = naming.object_name(reg.AGENT, "2.3.1")
    history = reg.status(env.api, TEAM, "agentversions", name)["stateHistory"]
    with psycopg.connect(postgres.dsn()) as conn:
        rows = conn.execute("SELECT id, at, tableoid::regclass::text FROM audit_events ORDER BY id").fetchall()
        recorded = conn.execute("SELECT occurred_at, at FROM audit_events WHERE name = %s AND operation = "
                                "'state_change' ORDER BY id", (name,)).fetchall()
    # The mirror first saw 2.3.1 after its promotions: the times they happened are kept beside the
    # rows, which are stamped when they arrived, in id order, without gaps.
    ids = [r[0] for r in rows]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert all(earlier[1] <= later[1] for earlier, later in zip(rows, rows[1:]))
    runs = [partition for i, (_, _, partition) in enumerate(rows) if i == 0 or rows[i - 1][2] != partition]
    assert len(runs) == len(set(runs)), f"a partition holds more than one range of ids: {runs}"
    assert [occurred.isoformat().replace("+00:00", "Z") for occurred, _ in recorded] == [
        entry["at"] for entry in history]
    assert all(at > occurred for occurred, at in recorded)


def test_the_app_role_and_even_the_owner_cannot_change_or_truncate_the_trail(audited):
    _, postgres = audited
    wait.until(lambda: _rows(postgres, naming.object_name(reg.AGENT, "2.3.1")), what="some audit rows")
    with psycopg.connect(postgres.dsn()) as conn:
        (partition,) = conn.execute("SELECT tableoid::regclass::text FROM audit_events ORDER BY id DESC LIMIT 1"
                                    ).fetchone()
    with psycopg.connect(postgres.dsn(user="mirror_app")) as app:
        for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events",
                          f"TRUNCATE {partition}", f"DROP TABLE {partition}",
                          f"ALTER TABLE audit_events DETACH PARTITION {partition}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
            app.rollback()
    with psycopg.connect(postgres.dsn()) as owner:  # the triggers refuse even the owner
        for statement in ("UPDATE audit_events SET actor = 'mallory'", "TRUNCATE audit_events",
                          f"TRUNCATE {partition}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                owner.execute(statement)
            owner.rollback()


@contextlib.contextmanager
def _tampering(env, postgres) -> Iterator[psycopg.Connection]:
    """A superuser session that may bypass the triggers, with appends held until the trail is restored.

    The rows it is about to change are saved first (``_save``) and put back afterwards, so that each
    attack starts from an intact, anchored trail.
    """
    with psycopg.connect(postgres.dsn(), autocommit=True) as superuser:
        superuser.execute("SELECT pg_advisory_lock(7412002)")  # audit_append's lock: the mirror waits
        try:
            head = superuser.execute("SELECT id, hash FROM audit_head()").fetchone()
            wait.until(lambda: _anchored(env) == head, timeout=30, what="the head to be anchored")
            superuser.execute("CREATE TEMP TABLE saved (LIKE audit_events)")
            superuser.execute("SET session_replication_role = replica")  # what only a superuser can do
            try:
                yield superuser
            finally:
                superuser.execute("DELETE FROM audit_events WHERE id IN (SELECT id FROM saved)")
                superuser.execute("INSERT INTO audit_events SELECT * FROM saved")
        finally:
            superuser.execute("SELECT pg_advisory_unlock_all()")


def _save(superuser, where: str) -> int:
    superuser.execute(f"INSERT INTO saved SELECT * FROM audit_events WHERE {where}")
    return superuser.execute("SELECT min(id) FROM saved").fetchone()[0]


def _verify_reports(env, first_bad_row: int, problem: str) -> None:
    tampered = _gl(env, "audit", "verify")
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert f"✗ audit row {first_bad_row}: {problem}" in tampered.stdout
    assert f"audit trail NOT intact: first bad row {first_bad_row};" in tampered.stderr


def _newest_partition(superuser) -> str:
    return superuser.execute("SELECT tableoid::regclass::text FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()[0]


def test_an_update_by_the_superuser_is_reported_with_its_row(audited):
    env, postgres = audited
    with _tampering(env, postgres) as superuser:
        victim = _save(superuser, f"id = (SELECT min(id) FROM audit_events WHERE operation = 'create' "
                                  f"AND namespace = '{TEAM}')")
        superuser.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = %s", (victim,))
        _verify_reports(env, victim, "content changed: hash does not match the row")
        # The mirror's own command, straight against Postgres and the anchor, says the same.
        direct = subprocess.run([sys.executable, "-m", "gl_mirror", "audit-verify", f"--dsn={postgres.dsn()}",
                                 f"--kubeconfig={env.cluster.kubeconfig}"], capture_output=True, text=True)
        assert direct.returncode == 1 and f"audit row {victim}: content changed" in direct.stdout
    assert _gl(env, "audit", "verify").returncode == 0


def test_a_value_shifted_into_the_neighbouring_column_is_reported(audited):
    env, postgres = audited
    with _tampering(env, postgres) as superuser:
        # request_uid is empty and decision holds "approved": moving the value one column left kept
        # the old digest (which skipped NULLs) unchanged.
        victim = _save(superuser, "id = (SELECT min(id) FROM audit_events WHERE operation = 'approval' "
                                  "AND request_uid IS NULL)")
        superuser.execute("UPDATE audit_events SET request_uid = decision, decision = NULL WHERE id = %s", (victim,))
        _verify_reports(env, victim, "content changed: hash does not match the row")
    assert _gl(env, "audit", "verify").returncode == 0


def test_deleting_the_newest_row_is_reported_and_the_anchor_does_not_follow(audited):
    env, postgres = audited
    with _tampering(env, postgres) as superuser:
        victim = _save(superuser, "id = (SELECT max(id) FROM audit_events)")
        anchored = _anchored(env)
        superuser.execute("DELETE FROM audit_events WHERE id = %s", (victim,))
        _verify_reports(env, victim, f"row {victim} missing: the anchored head is row {victim}, the table ends at "
                                     f"row {victim - 1}")
        time.sleep(3 * ANCHOR_SECONDS)  # several anchoring rounds: the shorter table must not become the head
        assert _anchored(env) == anchored
    assert _gl(env, "audit", "verify").returncode == 0


def test_truncating_the_newest_partition_is_reported(audited):
    env, postgres = audited
    with _tampering(env, postgres) as superuser:
        partition = _newest_partition(superuser)
        first = _save(superuser, f"tableoid = '{partition}'::regclass")
        (head,) = superuser.execute("SELECT max(id) FROM saved").fetchone()
        superuser.execute(f"TRUNCATE {partition}")
        _verify_reports(env, first, f"rows {first} to {head} missing: the anchored head is row {head}, the table ends "
                                    f"at row {first - 1}")
    assert _gl(env, "audit", "verify").returncode == 0


def test_truncating_an_older_partition_is_reported(audited):
    env, postgres = audited
    with _tampering(env, postgres) as superuser:
        first = _save(superuser, "name LIKE 'kept-%'")  # the month 2000 days ago, within the retention
        partition = superuser.execute("SELECT tableoid::regclass::text FROM audit_events WHERE id = %s",
                                      (first,)).fetchone()[0]
        superuser.execute(f"TRUNCATE {partition}")
        _verify_reports(env, first, f"rows {first} to {first + 1} missing: row {first + 2} follows row {first - 1}")
    assert _gl(env, "audit", "verify").returncode == 0


def test_the_row_hash_covers_every_column_and_tells_null_from_empty(audited):
    _, postgres = audited
    other = {"bigint": "999", "smallint": "9", "text": "x", "uuid": "00000000-0000-0000-0000-000000000001",
             "jsonb": {"x": 1}, "timestamp with time zone": "2001-02-03T04:05:06Z"}
    with psycopg.connect(postgres.dsn()) as conn:
        columns = conn.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = "
                               "'audit_events' AND column_name <> 'hash'").fetchall()
        (row_id,) = conn.execute("SELECT max(id) FROM audit_events").fetchone()
        for column, data_type in columns:
            changed = conn.execute(
                "SELECT audit_digest_v2(e) <> audit_digest_v2(jsonb_populate_record(e, jsonb_build_object(%s::text, "
                "CASE WHEN to_jsonb(e) -> %s::text = 'null' THEN %s::jsonb END))) FROM audit_events e WHERE id = %s",
                (column, column, json.dumps(other[data_type]), row_id)).fetchone()[0]
            assert changed, f"the row hash does not cover audit_events.{column}"
        null_or_empty = conn.execute(
            "SELECT audit_digest_v2(jsonb_populate_record(e, '{\"tenant\": null}')) <> "
            "audit_digest_v2(jsonb_populate_record(e, '{\"tenant\": \"\"}')) FROM audit_events e WHERE id = %s",
            (row_id,)).fetchone()[0]
    assert null_or_empty


def test_expiry_drops_only_whole_months_past_the_retention_and_the_trail_still_verifies(audited):
    env, postgres = audited
    with psycopg.connect(postgres.dsn(user="mirror_app"), autocommit=True) as app:
        (dropped,) = app.execute("SELECT audit_expire()").fetchone()
        assert dropped == 2
        assert app.execute("SELECT audit_expire()").fetchone() == (0,)
        names = [r[0] for r in app.execute("SELECT name FROM audit_events WHERE namespace = 'old' ORDER BY id")]
        assert names == ["kept-1", "kept-2"]  # the month 2000 days ago is within the retention
        expired = app.execute("SELECT change -> 'lastId' FROM audit_events WHERE operation = 'retention' ORDER BY id"
                              ).fetchall()
        assert expired == [(2,), (4,)]
    verified = _gl(env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit trail intact" in verified.stdout and "rows up to 4 expired after the retention" in verified.stdout


def test_no_caller_can_shorten_the_retention(audited):
    _, postgres = audited
    with psycopg.connect(postgres.dsn(user="mirror_app")) as app:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            app.execute("SELECT audit_expire(0)")
    refused = subprocess.run([sys.executable, "-m", "gl_mirror", "audit-expire", f"--dsn={postgres.dsn()}",
                              "--retention-days=0"], capture_output=True, text=True)
    assert refused.returncode == 2 and "unrecognized arguments: --retention-days=0" in refused.stderr
    with psycopg.connect(postgres.dsn()) as conn:
        assert conn.execute("SELECT count(*) FROM audit_events WHERE name LIKE 'kept-%'").fetchone() == (2,)


def test_rows_written_before_the_chain_upgrade_keep_verifying(audited, tmp_path):
    """A trail written by migrations 0001-0003 verifies under its old digest after 0004, and continues."""
    _, postgres = audited
    postgres.sql("postgres", "CREATE DATABASE before_upgrade")
    dsn = postgres.dsn(database="before_upgrade")
    for path in sorted(migrations.MIGRATIONS.glob("000[1-3]_*.sql")):
        shutil.copy(path, tmp_path)
    migrations.apply(dsn, tmp_path)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, decision in (("a", None), ("b", "approved")):
            conn.execute("SELECT audit_append(now() - interval '1 day', 'alice', NULL, 'Agent', 'team', %s, NULL, "
                         "'create', NULL, NULL, %s, NULL)", (name, decision))
    assert 4 in migrations.apply(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT * FROM audit_verify()").fetchall() == []
        (new,) = conn.execute("SELECT audit_append(NULL, 'bob', NULL, 'Agent', 'team', 'c', NULL, 'update', NULL, "
                              "NULL, 'approved', NULL)").fetchone()
        assert conn.execute("SELECT id, digest_version FROM audit_events ORDER BY id").fetchall() == [
            (1, 1), (2, 1), (new, 2)]
        assert conn.execute("SELECT * FROM audit_verify()").fetchall() == []
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE audit_events SET request_uid = decision, decision = NULL WHERE id = %s", (new,))
        assert conn.execute("SELECT * FROM audit_verify()").fetchall() == [
            (new, "content changed: hash does not match the row")]
