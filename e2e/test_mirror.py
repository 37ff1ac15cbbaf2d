"""The Postgres mirror against a real API server and a real Postgres: exact, and nothing lost."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from kubernetes import client

from e2e import registry as reg
from e2e import wait
from e2e.mirror_process import MirrorProcess, local_postgres
from gl_api import GROUP, VERSION, naming
from gl_devenv.cluster import LocalCluster
from gl_mirror import migrations, store

KIND = "AgentVersion"


@pytest.fixture(scope="module")
def postgres():
    with local_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def mirror(cluster, postgres, tmp_path_factory):
    process = MirrorProcess(Path(cluster.kubeconfig), postgres.dsn(), tmp_path_factory.mktemp("mirror") / "mirror.log")
    process.start()
    yield process
    process.stop()


def _create_versions(api, namespace: str, versions: list[str]) -> None:
    custom = client.CustomObjectsApi(api)
    for version in versions:
        obj = reg.example("AgentVersion")
        obj["metadata"] = {"name": naming.object_name(reg.AGENT, version), "namespace": namespace}
        obj["spec"]["version"] = version
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "agentversions", obj)


def _delete_versions(api, namespace: str, versions: list[str]) -> None:
    custom = client.CustomObjectsApi(api)
    for version in versions:
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "agentversions",
                                               naming.object_name(reg.AGENT, version))


def _api_names(api, namespace: str) -> set[str]:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, namespace,
                                                                       "agentversions")["items"]
    return {item["metadata"]["name"] for item in items}


def _mirrored(postgres, namespace: str) -> tuple[set[str], set[str]]:
    with psycopg.connect(postgres.dsn()) as conn:
        rows = conn.execute("SELECT name, deleted FROM registry_objects WHERE kind = %s AND namespace = %s",
                            (KIND, namespace)).fetchall()
    return {n for n, deleted in rows if not deleted}, {n for n, deleted in rows if deleted}


def _wait_exact(api, postgres, namespace: str, timeout: float = 90) -> set[str]:
    def exact():
        live, _ = _mirrored(postgres, namespace)
        return live == _api_names(api, namespace) and live
    return wait.until(exact, timeout=timeout, interval=0.5, what="the mirror to match the API server")


def test_500_versions_are_mirrored_exactly(api, namespace, postgres, mirror):
    _create_versions(api, namespace, [f"1.0.{n}" for n in range(500)])
    live = _wait_exact(api, postgres, namespace)
    assert len(live) == 500
    with psycopg.connect(postgres.dsn()) as conn:
        (history,) = conn.execute("SELECT count(DISTINCT uid) FROM registry_object_history WHERE kind = %s "
                                  "AND namespace = %s", (KIND, namespace)).fetchone()
    assert history == 500


def test_postgres_down_during_a_burst_loses_nothing(api, namespace, postgres, mirror):
    _create_versions(api, namespace, [f"2.0.{n}" for n in range(50)])
    _wait_exact(api, postgres, namespace)
    postgres.stop("immediate")
    try:
        _create_versions(api, namespace, [f"2.1.{n}" for n in range(100)])
        _delete_versions(api, namespace, [f"2.0.{n}" for n in range(20)])
    finally:
        postgres.start()
    live = _wait_exact(api, postgres, namespace)
    assert len(live) == 130
    _, deleted = _mirrored(postgres, namespace)
    assert deleted == {naming.object_name(reg.AGENT, f"2.0.{n}") for n in range(20)}


def test_restart_after_compaction_relists_and_stays_exact(cluster, api, namespace, postgres, mirror):
    assert isinstance(cluster, LocalCluster), "compacting etcd needs the local control plane"
    _create_versions(api, namespace, [f"3.0.{n}" for n in range(40)])
    _wait_exact(api, postgres, namespace)
    mirror.stop()
    _delete_versions(api, namespace, [f"3.0.{n}" for n in range(30)])
    _create_versions(api, namespace, [f"3.1.{n}" for n in range(150)])
    # The history the mirror would resume from is gone: compacted in etcd, and not in the restarted
    # API server's watch cache either (as after a long outage), so the watch answers 410 Gone.
    cluster.compact_etcd()
    cluster.restart_apiserver()
    mirror.start()
    live = _wait_exact(api, postgres, namespace)
    assert len(live) == 160
    _, deleted = _mirrored(postgres, namespace)
    assert {naming.object_name(reg.AGENT, f"3.0.{n}") for n in range(30)} <= deleted
    with psycopg.connect(postgres.dsn()) as conn:
        (vanished,) = conn.execute("SELECT count(*) FROM registry_object_history WHERE event_type = 'VANISHED' "
                                   "AND namespace = %s", (namespace,)).fetchone()
    assert vanished == 30


def test_replaying_events_changes_nothing(postgres):
    migrations.apply(postgres.dsn())
    obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
           "metadata": {"uid": "6f1c0f4e-0000-4000-8000-000000000001", "name": "replay-1.0.0", "namespace": "replay",
                        "resourceVersion": "42"}, "spec": {}}
    batch = store.Batch([store.Change(KIND, "ADDED", obj)], {})
    with psycopg.connect(postgres.dsn()) as conn:
        store.write(conn, batch)
        store.write(conn, batch)
        older = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "41"}, "spec": {"stale": True}}
        store.write(conn, store.Batch([store.Change(KIND, "MODIFIED", older)], {}))
        rows = conn.execute("SELECT resource_version, body->'spec' FROM registry_objects WHERE namespace = 'replay'")
        assert rows.fetchall() == [(42, {})]
        (history,) = conn.execute("SELECT count(*) FROM registry_object_history WHERE namespace = 'replay'").fetchone()
        assert history == 2  # 42 ADDED once, and the late 41 MODIFIED kept as history only


def test_a_failing_migration_leaves_the_database_as_it_was(postgres, tmp_path):
    (tmp_path / "0001_fine.sql").write_text("CREATE TABLE fine_table (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE half_done (id int); SELECT no_such_function();")
    postgres.sql("greenlang", "CREATE DATABASE migration_test")
    dsn = postgres.dsn(database="migration_test")
    with pytest.raises(migrations.MigrationError, match="0002_broken failed and was rolled back"):
        migrations.apply(dsn, tmp_path)
    with psycopg.connect(dsn) as conn:
        tables = {t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert "fine_table" in tables and "half_done" not in tables
    assert versions == [1]


def _search_rows(postgres, namespace: str) -> dict[str, tuple[int, str | None]]:
    """Each version's search row: the transaction that wrote it, and the description it carries."""
    try:
        with psycopg.connect(postgres.dsn()) as conn:
            return {version: (int(written), description) for version, written, description in conn.execute(
                "SELECT version, written::text, description FROM agent_search WHERE namespace = %s", (namespace,))}
    except psycopg.errors.UndefinedTable:  # the mirror has not migrated the database yet
        return {}


def test_a_new_version_rewrites_its_own_search_row_and_an_agent_change_all_of_them(api, namespace, postgres, mirror):
    agent = reg.example("Agent")
    agent["metadata"] = {"name": reg.AGENT, "namespace": namespace}
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "agents", agent)
    _create_versions(api, namespace, ["1.0.0", "1.1.0"])
    before = wait.until(lambda: (rows := _search_rows(postgres, namespace)).keys() == {"1.0.0", "1.1.0"} and rows,
                        timeout=60, what="both versions' search rows")
    _create_versions(api, namespace, ["1.2.0"])
    after = wait.until(lambda: "1.2.0" in (rows := _search_rows(postgres, namespace)) and rows, timeout=60,
                       what="the new version's search row")
    assert {v: after[v] for v in before} == before  # the others were left as written, not rebuilt

    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "agents", reg.AGENT, {"spec": {"description": "Now also for cement imports."}})
    def described():
        rows = _search_rows(postgres, namespace)
        return all(d == "Now also for cement imports." for _, d in rows.values()) and rows
    rewritten = wait.until(described, timeout=60, what="every version's row to carry the Agent's new description")
    assert rewritten.keys() == {"1.0.0", "1.1.0", "1.2.0"}
