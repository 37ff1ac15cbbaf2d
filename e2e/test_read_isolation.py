"""Tenant isolation on the read paths: the aggregated API and Postgres itself.

Two tenants, each with an agent in its environment namespace; tenant A's has a certified public
version and a draft, tenant B's only a draft. Their members are bound in their namespaces the way
TenantPolicy provisioning binds them. The attacks: a tenant's auditor reading another tenant's
audit rows through a namespaced path, filters or the cluster scope; a platform reader of
TenantPolicies (or a member of another tenant) finding tenant A's draft by search or usage; and a
login holding only the reader role reading bodies, or widening its own scope, in plain SQL.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from kubernetes import client

from e2e import registry as reg
from e2e import wait
from e2e.mirror_process import local_postgres, start_with_query_api
from gl_api import GROUP, VERSION, naming
from gl_devenv.registry_services import OPERATOR_IDENTITY
from gl_mirror import search
from gl_mirror.search_index import default_embedder

TENANT_A, TENANT_B = "iso-tenant-a", "iso-tenant-b"
NS_A, NS_B = f"{TENANT_A}-dev", f"{TENANT_B}-dev"
LEDGER, PAYROLL = "iso-ledger-reconciler", "iso-payroll-planner"
AUDITOR_A = "ann@a.example.com"      # tenant A's auditor
MEMBER_B = "bea@b.example.com"       # tenant B's viewer, who may also search everywhere
PLATFORM = "pia@platform.example.com"  # reads every TenantPolicy (not their agents) and searches
AUDITOR = "olaf@platform.example.com"  # the cluster-level auditor
NS_AUDITOR = "nia@a.example.com"     # the audit reader role, bound in tenant A's namespace only
QUERY = "/apis/search.registry.greenlang.ai/v1alpha1"
PROTECTED = ["registry_objects", "registry_object_history", "agent_search", "audit_events"]


def _tenant(name: str, namespace: str, member: str, role: str) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TenantPolicy", "metadata": {"name": name},
            "spec": {"environments": [{"name": "dev", "namespace": namespace}],
                     "members": [{"kind": "User", "name": member, "role": role}]}}


def _publish(cluster, api, namespace: str, name: str, visibility: str, description: str,
             versions: dict[str, str]) -> None:
    agent = reg.example("Agent")
    agent["metadata"] = {"name": name, "namespace": namespace}
    agent["spec"].update(visibility=visibility, domain="finance.accounting", description=description,
                         displayName=name.replace("-", " ").title(), tags=["finance"])
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "agents", agent)
    for version, state in versions.items():
        obj = reg.example("AgentVersion")
        obj["metadata"] = {"name": naming.object_name(name, version), "namespace": namespace}
        obj["spec"].update(agent=name, version=version, capabilities=[{"name": "answer", "description": description}])
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "agentversions", obj)
        # The lifecycle is not under test: write the state the operator would have reached, as the operator.
        patched = cluster.kubectl("patch", "agentversion", naming.object_name(name, version), "-n", namespace,
                                  "--subresource=status", "--type=merge", "-p",
                                  json.dumps({"status": {"state": state}}), f"--as={OPERATOR_IDENTITY}",
                                  "--as-group=system:masters", check=False)
        assert patched.returncode == 0, patched.stderr


def _grants() -> list[dict]:
    tenant_policy_reader = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "iso-tenant-reader"},
        "rules": [{"apiGroups": [GROUP], "resources": ["tenantpolicies"], "verbs": ["get", "list", "watch"]}]}
    return [
        tenant_policy_reader,
        # What provisioning binds for the members of each TenantPolicy.
        reg.binding("iso-ann-auditor", AUDITOR_A, "greenlang-registry:auditor", NS_A),
        reg.binding("iso-bea-viewer", MEMBER_B, "greenlang-registry:viewer", NS_B),
        reg.binding("iso-bea-searches", MEMBER_B, "greenlang-registry:search-reader"),
        reg.binding("iso-pia-searches", PLATFORM, "greenlang-registry:search-reader"),
        reg.binding("iso-pia-tenants", PLATFORM, "iso-tenant-reader"),
        reg.binding("iso-olaf-audits", AUDITOR, "greenlang-registry:audit-reader"),
        reg.binding("iso-nia-audits", NS_AUDITOR, "greenlang-registry:audit-reader", NS_A),
    ]


@pytest.fixture(scope="module")
def isolated(cluster, api, tmp_path_factory):
    # Policies first: their namespaces do not exist yet, so nothing is adopted.
    for tenant, namespace, member, role in ((TENANT_A, NS_A, AUDITOR_A, "auditor"),
                                            (TENANT_B, NS_B, MEMBER_B, "viewer")):
        applied = cluster.kubectl("apply", "-f", "-", input=json.dumps(_tenant(tenant, namespace, member, role)),
                                  check=False)
        assert applied.returncode == 0, applied.stderr
        # The operator, when one runs, creates it for the TenantPolicy first.
        created = cluster.kubectl("apply", "-f", "-", check=False, input=json.dumps(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}))
        assert created.returncode == 0, created.stderr
    granted = cluster.kubectl("apply", "-f", "-", check=False,
                              input=json.dumps({"apiVersion": "v1", "kind": "List", "items": _grants()}))
    assert granted.returncode == 0, granted.stderr
    _publish(cluster, api, NS_A, LEDGER, "public", "Reconciles general ledger entries against bank statements.",
             {"1.0.0": "certified", "1.1.0": "draft"})
    _publish(cluster, api, NS_B, PAYROLL, "tenant", "Plans payroll runs and ledger postings for each month.",
             {"0.1.0": "draft"})
    with local_postgres() as postgres:
        mirror = start_with_query_api(cluster, postgres.dsn(), tmp_path_factory.mktemp("isolation") / "mirror.log")
        try:
            def mirrored():
                try:
                    with psycopg.connect(postgres.dsn()) as conn:
                        indexed = conn.execute("SELECT count(*) FROM agent_search WHERE namespace IN (%s, %s) "
                                               "AND state IS NOT NULL AND tenant IS NOT NULL", (NS_A, NS_B)).fetchone()
                        audited = conn.execute("SELECT count(DISTINCT namespace) FROM audit_events "
                                               "WHERE namespace IN (%s, %s)", (NS_A, NS_B)).fetchone()
                        return indexed[0] == 3 and audited[0] == 2
                except psycopg.Error:
                    return False
            wait.until(mirrored, timeout=90, interval=0.5, what="both tenants mirrored, indexed and audited")
            wait.until(lambda: cluster.kubectl(
                "get", "apiservice", "v1alpha1.search.registry.greenlang.ai", "-o",
                'jsonpath={.status.conditions[?(@.type=="Available")].status}', check=False).stdout.strip() == "True",
                timeout=60, what="the aggregated API to be available")
            yield postgres
        finally:
            mirror.stop()
            cluster.kubectl("delete", "-f", "-", "--wait=false", check=False,
                            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": _grants()}))
            for namespace in (NS_A, NS_B):
                cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
            for tenant in (TENANT_A, TENANT_B):
                cluster.kubectl("delete", "tenantpolicy", tenant, "--wait=false", check=False)


def _get(cluster, path: str, user: str | None):
    return cluster.kubectl("get", "--raw", f"{QUERY}/{path}", *([f"--as={user}"] if user else []), check=False)


def _items(cluster, path: str, user: str | None) -> list[dict]:
    result = _get(cluster, path, user)
    assert result.returncode == 0, f"{path} as {user}: {result.stderr}"
    return json.loads(result.stdout)["items"]


def _namespaces(events: list[dict]) -> set[str]:
    return {e["object"]["namespace"] for e in events}


def test_a_tenant_auditor_reads_only_its_namespace_and_not_the_cluster(cluster, isolated):
    own = _items(cluster, f"namespaces/{NS_A}/auditevents?limit=1000", AUDITOR_A)
    assert own and _namespaces(own) == {NS_A}
    assert {(e["object"]["kind"], e["object"]["name"]) for e in own} >= {
        ("AgentVersion", naming.object_name(LEDGER, "1.1.0")), ("Agent", LEDGER)}
    # Filters narrow the namespace's rows; they never reach past it.
    assert _items(cluster, f"namespaces/{NS_A}/auditevents?namespace={NS_B}", AUDITOR_A) == []
    assert _items(cluster, f"namespaces/{NS_A}/auditevents?tenant={TENANT_B}", AUDITOR_A) == []

    for path in ("auditevents", f"namespaces/{NS_B}/auditevents", "auditverifications"):
        denied = _get(cluster, path, AUDITOR_A)
        assert denied.returncode != 0 and "Forbidden" in denied.stderr, (path, denied.stderr)
        assert f'User "{AUDITOR_A}" cannot list resource "' in denied.stderr

    # The audit reader role bound in one namespace: that namespace's rows, and no verification of the
    # chain, which reads every tenant's rows, so exists at the cluster scope only.
    assert _namespaces(_items(cluster, f"namespaces/{NS_A}/auditevents?limit=1000", NS_AUDITOR)) == {NS_A}
    scoped = _get(cluster, f"namespaces/{NS_A}/auditverifications", NS_AUDITOR)
    assert scoped.returncode != 0 and "auditverifications has the cluster scope only" in scoped.stderr, scoped.stderr

    # Bound cluster-wide: every tenant's rows, and the verification.
    assert _namespaces(_items(cluster, "auditevents?limit=1000", AUDITOR)) >= {NS_A, NS_B}
    verified = _get(cluster, "auditverifications", AUDITOR)
    assert verified.returncode == 0 and json.loads(verified.stdout)["intact"] is True, verified.stderr


def test_a_role_granted_reads_at_once_and_a_role_revoked_stops_reading_within_seconds(cluster, isolated):
    """The query API remembers an allow for a few seconds (AccessDecisions), never a denial."""
    path, newcomer = f"namespaces/{NS_A}/usagesummaries", "nico@a.example.com"
    denied = _get(cluster, path, newcomer)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
    granted = reg.binding("nico-reads", newcomer, "greenlang-registry:viewer", NS_A)
    assert cluster.kubectl("apply", "-f", "-", input=json.dumps(granted)).returncode == 0
    assert _get(cluster, path, newcomer).returncode == 0  # the denial just before was not remembered
    assert cluster.kubectl("delete", "rolebinding", "nico-reads", "-n", NS_A).returncode == 0
    wait.until(lambda: _get(cluster, path, newcomer).returncode != 0, timeout=15, what="the revoked role to stop reading")


def test_discovery_tells_the_scope_of_each_resource(cluster, isolated):
    def names(namespaced: str) -> set[str]:
        listed = cluster.kubectl("api-resources", "--api-group=search.registry.greenlang.ai",
                                 f"--namespaced={namespaced}", "-o", "name", check=False)
        assert listed.returncode == 0, listed.stderr
        return {line.split(".")[0] for line in listed.stdout.split()}

    assert names("true") == {"agentsearches", "usagesummaries", "auditevents"}
    assert names("false") == {"auditverifications"}


def _refs(cluster, path: str, user: str | None) -> set[str]:
    return {f"{i['agent']}@{i['version']}" for i in _items(cluster, path, user)}


def test_search_and_usage_never_show_another_tenants_drafts(cluster, isolated):
    draft_a, certified_a, draft_b = f"{LEDGER}@1.1.0", f"{LEDGER}@1.0.0", f"{PAYROLL}@0.1.0"
    for user in (PLATFORM, MEMBER_B):
        for path in ("agentsearches?q=ledger+reconciler", f"namespaces/{NS_A}/agentsearches?q=ledger+reconciler",
                     "usagesummaries", f"namespaces/{NS_A}/usagesummaries?agent={LEDGER}"):
            refs = _refs(cluster, path, user)
            assert certified_a in refs and draft_a not in refs, (user, path, refs)
    # Tenant B's member still sees her own tenant's draft; the platform reader sees nobody's.
    assert draft_b in _refs(cluster, "agentsearches?q=payroll+planner", MEMBER_B)
    assert draft_b in _refs(cluster, f"namespaces/{NS_B}/usagesummaries", MEMBER_B)
    assert draft_b not in _refs(cluster, "agentsearches?q=payroll+planner", PLATFORM)
    # Whoever may list every AgentVersion (a cluster admin) sees every draft, as kubectl would show them.
    assert {draft_a, draft_b} <= _refs(cluster, "usagesummaries", None)


def test_the_reader_role_cannot_read_bodies_or_widen_its_own_scope(isolated):
    isolated.sql("greenlang", "CREATE ROLE iso_reader LOGIN IN ROLE greenlang_reader")
    (partition,) = isolated.sql("greenlang", "SELECT inhrelid::regclass FROM pg_inherits "
                                             "WHERE inhparent = 'audit_events'::regclass LIMIT 1").split()

    with psycopg.connect(isolated.dsn(user="iso_reader"), autocommit=True) as reader:
        reader.execute("SET ROLE greenlang_reader")
        for statement in ("SELECT body FROM registry_objects", "SELECT body FROM registry_object_history",
                          f"SELECT count(*) FROM {partition}", "SET ROLE greenlang_app"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(statement)

        # The scope settings the query API uses, set by the reader itself, and a fake catalog
        # table that would make a function with an unpinned search path trust this session.
        reader.execute("CREATE TEMP TABLE pg_class (oid oid, relowner oid)")
        reader.execute("INSERT INTO pg_temp.pg_class SELECT 'public.registry_objects'::regclass, oid "
                       "FROM pg_roles WHERE rolname = 'iso_reader'")
        reader.execute("SELECT set_config('greenlang.all', 'on', false), set_config('greenlang.tenants', %s, false), "
                       "set_config('greenlang.namespaces', %s, false)", (f"{TENANT_A},{TENANT_B}", f"{NS_A},{NS_B}"))
        rows = reader.execute("SELECT agent, version, state FROM agent_search WHERE namespace IN (%s, %s) "
                              "ORDER BY agent, version", (NS_A, NS_B)).fetchall()
        assert rows == [(LEDGER, "1.0.0", "certified")]
        assert reader.execute("SELECT count(*) FROM audit_events").fetchone() == (0,)

    # Forced: the tables' owner is bound by the policies too (its own lets the mirror write).
    forced = isolated.sql("greenlang", "SELECT relname FROM pg_class WHERE relrowsecurity AND relforcerowsecurity")
    assert set(PROTECTED) <= set(forced.split())

    # The same settings from the application's own session (which authorised the user first) do count.
    with psycopg.connect(isolated.dsn(), autocommit=True) as app:
        with app.transaction():
            search.read_as(app, search.Caller((TENANT_A,)))
            assert app.execute("SELECT count(*) FROM agent_search WHERE namespace = %s", (NS_A,)).fetchone() == (2,)
            assert app.execute("SELECT count(*) FROM agent_search WHERE namespace = %s", (NS_B,)).fetchone() == (0,)
        with app.transaction():
            search.read_as(app, search.Caller(namespaces=(NS_B,)))
            assert {r[0] for r in app.execute("SELECT DISTINCT namespace FROM audit_events")} == {NS_B}
        page = search.search(app, "payroll planner", search.Caller((TENANT_A,)), default_embedder())
        assert f"{PAYROLL}@0.1.0" not in {h.ref for h in page.hits}


def test_the_application_role_reads_the_whole_trail_but_no_bodies(isolated):
    isolated.sql("greenlang", "CREATE ROLE iso_app LOGIN IN ROLE greenlang_app")
    with psycopg.connect(isolated.dsn(user="iso_app"), autocommit=True) as app:
        namespaces = {r[0] for r in app.execute("SELECT DISTINCT namespace FROM audit_events")}
        assert {NS_A, NS_B} <= namespaces
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT body FROM registry_objects")


# Team namespaces and private agents. Tenant C publishes in a team namespace (TenantPolicy
# spec.teamNamespaces): a private agent and a tenant agent, drafts both; and a tenant agent in a
# second namespace that its TenantPolicy lists only later. Its members are bound the way
# provisioning would: one in the team namespace, one in the dev namespace only (who also searches
# everywhere). The attacks: the tenant scope reaching the private agent, another tenant reaching
# either, and search and audit rows of a team namespace that name no tenant.
TENANT_C = "iso-tenant-c"
NS_C, TEAM_C, LATER_TEAM_C = f"{TENANT_C}-dev", "iso-team-c", "iso-team-c-later"
SANDBOX, FILER, ARCHIVER = "iso-tax-sandbox", "iso-tax-filer", "iso-tax-archiver"
TEAM_MEMBER = "tom@c.example.com"  # tenant C's viewer, bound in the team namespace
DEV_MEMBER = "dora@c.example.com"  # tenant C's viewer, bound in its dev namespace only; searches everywhere
TAX = "q=tax+filing"


def _team_tenant(team_namespaces: list[str]) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TenantPolicy", "metadata": {"name": TENANT_C},
            "spec": {"environments": [{"name": "dev", "namespace": NS_C}], "teamNamespaces": team_namespaces,
                     "members": [{"kind": "User", "name": TEAM_MEMBER, "role": "viewer"},
                                 {"kind": "User", "name": DEV_MEMBER, "role": "viewer"}]}}


def _team_grants() -> list[dict]:
    return [reg.binding("iso-tom-viewer", TEAM_MEMBER, "greenlang-registry:viewer", TEAM_C),
            reg.binding("iso-dora-viewer", DEV_MEMBER, "greenlang-registry:viewer", NS_C),
            reg.binding("iso-dora-searches", DEV_MEMBER, "greenlang-registry:search-reader")]


@pytest.fixture(scope="module")
def team(cluster, api, isolated, operator_process):
    # The bindings below are the whole of who reads what: a running operator would bind every member
    # of tenant C in each of its namespaces (the team namespace included), as provisioning does.
    if operator_process.running():
        operator_process.stop()
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                  for ns in (NS_C, TEAM_C, LATER_TEAM_C)]
    try:
        applied = cluster.kubectl("apply", "-f", "-", input=json.dumps(_team_tenant([TEAM_C])), check=False)
        assert applied.returncode == 0, applied.stderr
        for items in (namespaces, _team_grants()):
            created = cluster.kubectl("apply", "-f", "-", check=False,
                                      input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
            assert created.returncode == 0, created.stderr

        def sql(statement: str, *args):
            try:
                with psycopg.connect(isolated.dsn()) as conn:
                    return conn.execute(statement, args).fetchall()
            except psycopg.Error:
                return None

        # The mirror holds the claim before anything is published there, so every audit row may name the tenant.
        wait.until(lambda: sql("SELECT 1 FROM registry_objects WHERE kind = 'TenantPolicy' AND name = %s "
                               "AND body -> 'spec' -> 'teamNamespaces' ? %s", TENANT_C, TEAM_C),
                   timeout=60, what="the mirror to hold tenant C's TenantPolicy")
        _publish(cluster, api, TEAM_C, SANDBOX, "private", "Tries tax filing rules on sample ledgers before they ship.",
                 {"0.1.0": "draft"})
        _publish(cluster, api, TEAM_C, FILER, "tenant", "Prepares tax filing returns from the ledger each quarter.",
                 {"0.1.0": "draft"})
        _publish(cluster, api, LATER_TEAM_C, ARCHIVER, "tenant", "Archives tax filing evidence for the auditors.",
                 {"0.1.0": "draft"})
        expected = [(ARCHIVER, "tenant"), (FILER, "tenant"), (SANDBOX, "private")]
        wait.until(lambda: sql("SELECT agent, visibility FROM agent_search WHERE namespace IN (%s, %s) "
                               "AND state = 'draft' ORDER BY agent", TEAM_C, LATER_TEAM_C) == expected,
                   timeout=90, interval=0.5, what="tenant C's agents indexed")
        yield isolated
    finally:
        cluster.kubectl("delete", "-f", "-", "--wait=false", check=False,
                        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": _team_grants()}))
        for namespace in (NS_C, TEAM_C, LATER_TEAM_C):
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "tenantpolicy", TENANT_C, "--wait=false", check=False)


def test_a_private_agent_shows_only_to_readers_of_its_namespace(cluster, team):
    private, tenant = f"{SANDBOX}@0.1.0", f"{FILER}@0.1.0"
    # Who may read the team namespace sees both there.
    for path in (f"namespaces/{TEAM_C}/agentsearches?{TAX}", f"namespaces/{TEAM_C}/usagesummaries"):
        assert {private, tenant} <= _refs(cluster, path, TEAM_MEMBER), path
    # A member of the same tenant who reads only its dev namespace: the tenant agent, at either
    # scope, never the private one.
    for path in (f"agentsearches?{TAX}", f"namespaces/{TEAM_C}/agentsearches?{TAX}",
                 f"namespaces/{TEAM_C}/usagesummaries"):
        refs = _refs(cluster, path, DEV_MEMBER)
        assert tenant in refs and private not in refs, (path, refs)
    # Another tenant's member: neither.
    for path in (f"agentsearches?{TAX}", f"namespaces/{TEAM_C}/agentsearches?{TAX}",
                 f"namespaces/{TEAM_C}/usagesummaries"):
        refs = _refs(cluster, path, MEMBER_B)
        assert not {private, tenant} & refs, (path, refs)


def test_audit_rows_of_a_team_namespace_name_its_tenant(team):
    with psycopg.connect(team.dsn()) as conn:
        rows = conn.execute("SELECT kind, name, tenant FROM audit_events WHERE namespace = %s", (TEAM_C,)).fetchall()
    assert {("Agent", SANDBOX), ("Agent", FILER), ("AgentVersion", naming.object_name(SANDBOX, "0.1.0"))} <= \
        {(kind, name) for kind, name, _ in rows}
    assert {tenant for _, _, tenant in rows} == {TENANT_C}, rows


def test_listing_a_team_namespace_later_brings_its_agents_into_the_tenant(cluster, team):
    archiver, path = f"{ARCHIVER}@0.1.0", "agentsearches?q=tax+filing+evidence"
    assert archiver not in _refs(cluster, path, DEV_MEMBER)  # nobody's namespace yet
    patched = cluster.kubectl("patch", "tenantpolicy", TENANT_C, "--type=merge", "-p",
                              json.dumps({"spec": {"teamNamespaces": [TEAM_C, LATER_TEAM_C]}}), check=False)
    assert patched.returncode == 0, patched.stderr
    wait.until(lambda: archiver in _refs(cluster, path, DEV_MEMBER), timeout=60, interval=0.5,
               what=f"{archiver} to show to tenant C's members once {LATER_TEAM_C} is a team namespace")
    assert archiver not in _refs(cluster, path, MEMBER_B)
