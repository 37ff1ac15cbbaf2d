"""Search through the mirror: typos, meaning, filters, stable pages, and tenant visibility in the database."""

from __future__ import annotations

import json

import psycopg
import pytest
from kubernetes import client

from e2e import registry as reg
from e2e import wait
from e2e.mirror_process import local_postgres, start_with_query_api
from gl_api import GROUP, VERSION, naming
from gl_devenv import identities
from gl_mirror import search
from gl_mirror.search_index import default_embedder

TENANT_A, TENANT_B = "search-tenant-a", "search-tenant-b"
NS_A, NS_B = f"{TENANT_A}-dev", f"{TENANT_B}-dev"

AGENTS = {
    # namespace, name, visibility, domain, description, {version: state}
    "cbam": (NS_A, reg.AGENT, "public", "sustainability.cbam", None, {"2.3.1": "certified", "2.4.0": "draft"}),
    "hr": (NS_A, "hr-onboarding-assistant", "tenant", "people.onboarding",
           "Answers new employees' questions about benefits, equipment and first-week schedules.",
           {"1.0.0": "certified"}),
    "vat": (NS_B, "vat-invoice-validator", "public", "finance.tax",
            "Checks VAT rates and reverse-charge rules on supplier invoices.", {"1.2.0": "certified"}),
    "payroll": (NS_B, "payroll-withholding", "tenant", "finance.payroll",
                "Computes income tax withholding for monthly payroll runs.", {"0.9.0": "draft"}),
}


def _tenant(name: str, namespace: str) -> dict:
    member = "bea" if name == TENANT_B else "ann"
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TenantPolicy", "metadata": {"name": name},
            "spec": {"environments": [{"name": "dev", "namespace": namespace}],
                     "members": [{"kind": "User", "name": member, "role": "viewer"}]}}


@pytest.fixture(scope="module")
def indexed(cluster, api, tmp_path_factory):
    custom = client.CustomObjectsApi(api)
    for tenant, namespace in ((TENANT_A, NS_A), (TENANT_B, NS_B)):
        cluster.kubectl("create", "namespace", namespace, check=False)
        assert cluster.kubectl("apply", "-f", "-", input=json.dumps(_tenant(tenant, namespace))).returncode == 0
    for namespace, name, visibility, domain, description, versions in AGENTS.values():
        agent = reg.example("Agent")
        agent["metadata"] = {"name": name, "namespace": namespace}
        agent["spec"].update(visibility=visibility, domain=domain, displayName=name.replace("-", " ").title())
        if description:
            agent["spec"].update(description=description, tags=[domain.split(".")[-1]])
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "agents", agent)
        for version, state in versions.items():
            obj = reg.example("AgentVersion")
            obj["metadata"] = {"name": naming.object_name(name, version), "namespace": namespace}
            obj["spec"].update(agent=name, version=version)
            if name != reg.AGENT:
                obj["spec"]["capabilities"] = [{"name": "answer", "description": description}]
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "agentversions", obj)
            # The lifecycle is not under test here: set the state an operator would have reached, as the operator.
            patched = cluster.kubectl("patch", "agentversion", naming.object_name(name, version), "-n", namespace,
                                      "--subresource=status", "--type=merge", "-p",
                                      json.dumps({"status": {"state": state}}), f"--as={identities.OPERATOR}",
                                      "--as-group=system:masters", check=False)
            assert patched.returncode == 0, patched.stderr
    with local_postgres() as postgres:
        mirror = start_with_query_api(cluster, postgres.dsn(), tmp_path_factory.mktemp("search") / "m.log")
        try:
            def indexed_states():
                try:
                    with psycopg.connect(postgres.dsn()) as conn:
                        return conn.execute("SELECT count(*) FROM agent_search WHERE namespace IN (%s, %s) "
                                            "AND state IS NOT NULL AND tenant IS NOT NULL",
                                            (NS_A, NS_B)).fetchone()[0] == 5
                except psycopg.Error:
                    return False
            wait.until(indexed_states, timeout=90, interval=0.5, what="the search index")
            yield postgres
        finally:
            mirror.stop()
        for namespace in (NS_A, NS_B):
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        for tenant in (TENANT_A, TENANT_B):
            cluster.kubectl("delete", "tenantpolicy", tenant, "--wait=false", check=False)


def _search(postgres, query: str, caller: search.Caller, **kwargs) -> search.Page:
    with psycopg.connect(postgres.dsn()) as conn:
        return search.search(conn, query, caller, default_embedder(), **kwargs)


EVERYONE = search.Caller(all_tenants=True)


def test_typos_still_find_the_agent(indexed):
    hits = _search(indexed, "cbam calculater", EVERYONE).hits
    assert hits[0].agent == reg.AGENT
    assert any("close spelling" in why or "words match" in why for why in hits[0].why)


def test_meaning_finds_cbam_for_carbon_border_tax(indexed):
    example_text = json.dumps(reg.example("Agent")) + json.dumps(reg.example("AgentVersion"))
    assert "tax" not in example_text.lower()  # the CBAM agent never says "tax"
    hits = _search(indexed, "carbon border tax", EVERYONE).hits
    assert hits[0].agent == reg.AGENT
    assert any(why.startswith("similar meaning") for why in hits[0].why)


def test_filters_and_stable_pages(indexed):
    certified = search.Filters(state="certified")
    seen, cursor = [], None
    while True:
        page = _search(indexed, "agent", EVERYONE, filters=certified, limit=1, cursor=cursor)
        seen += [h.ref for h in page.hits]
        cursor = page.next_cursor
        if not cursor:
            break
    everything = [h.ref for h in _search(indexed, "agent", EVERYONE, filters=certified, limit=50).hits]
    assert seen == everything and len(seen) == len(set(seen))
    assert all(h.state == "certified" for h in _search(indexed, "agent", EVERYONE, filters=certified).hits)
    finance = _search(indexed, "tax", EVERYONE, filters=search.Filters(domain="finance")).hits
    assert {h.agent for h in finance} <= {"vat-invoice-validator", "payroll-withholding"} and finance


def test_tenants_see_their_drafts_and_only_certified_public_agents_of_others(indexed):
    tenant_a = {h.ref for h in _search(indexed, "cbam calculator", search.Caller((TENANT_A,))).hits}
    tenant_b = {h.ref for h in _search(indexed, "cbam calculator", search.Caller((TENANT_B,))).hits}
    assert f"{reg.AGENT}@2.4.0" in tenant_a  # a draft inside its own tenant
    assert f"{reg.AGENT}@2.4.0" not in tenant_b and f"{reg.AGENT}@2.3.1" in tenant_b
    onboarding = {h.agent for h in _search(indexed, "employee onboarding benefits", search.Caller((TENANT_B,))).hits}
    assert "hr-onboarding-assistant" not in onboarding  # tenant-only visibility


def test_row_level_security_holds_for_plain_sql(indexed):
    # A login with only the reader role: the tenants it names itself do not count (the query API's
    # session names them, after the API server authorised the user), so it sees certified public agents.
    indexed.sql("greenlang", "DO $$ BEGIN CREATE ROLE tenant_b_reader LOGIN IN ROLE greenlang_reader; "
                              "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    with psycopg.connect(indexed.dsn(user="tenant_b_reader")) as conn:
        conn.execute("SELECT set_config('greenlang.tenants', %s, false)", (TENANT_B,))
        rows = conn.execute("SELECT namespace, agent, version FROM agent_search WHERE namespace IN (%s, %s) "
                            "ORDER BY namespace, version", (NS_A, NS_B)).fetchall()
        assert rows == [(NS_A, reg.AGENT, "2.3.1"), (NS_B, "vat-invoice-validator", "1.2.0")]
    with psycopg.connect(indexed.dsn(), autocommit=True) as app, app.transaction():
        search.read_as(app, search.Caller((TENANT_B,)))
        (own,) = app.execute("SELECT count(*) FROM agent_search WHERE namespace = %s", (NS_B,)).fetchone()
        assert own == 2


SEARCH_API = "/apis/search.registry.greenlang.ai/v1alpha1"


def _kubectl_search(cluster, query: str, as_user: str | None, namespace: str | None = None):
    path = f"{SEARCH_API}/namespaces/{namespace}/agentsearches" if namespace else f"{SEARCH_API}/agentsearches"
    impersonate = [f"--as={as_user}"] if as_user else []
    return cluster.kubectl("get", "--raw", f"{path}?q={query.replace(' ', '+')}", *impersonate, check=False)


def test_the_aggregated_api_searches_as_the_user_with_their_rbac(cluster, indexed):
    searcher = reg.binding("bea-searches", "bea", "greenlang-registry:search-reader")
    assert cluster.kubectl("apply", "-f", "-", input=json.dumps(searcher)).returncode == 0
    wait.until(lambda: cluster.kubectl(
        "get", "apiservice", "v1alpha1.search.registry.greenlang.ai", "-o",
        'jsonpath={.status.conditions[?(@.type=="Available")].status}', check=False).stdout.strip() == "True",
        timeout=60, what="the aggregated API to be available")

    found = _kubectl_search(cluster, "cbam calculator", "bea")
    assert found.returncode == 0, found.stderr
    refs = [item["ref"] for item in json.loads(found.stdout)["items"]]
    assert f"{reg.AGENT}@2.3.1" in refs and f"{reg.AGENT}@2.4.0" not in refs  # tenant A's draft stays hidden
    as_admin = [i["ref"] for i in json.loads(_kubectl_search(cluster, "cbam calculator", None).stdout)["items"]]
    assert f"{reg.AGENT}@2.4.0" in as_admin  # platform admins see every tenant

    denied = _kubectl_search(cluster, "cbam", "nobody")
    assert denied.returncode != 0
    assert ('agentsearches.search.registry.greenlang.ai is forbidden: User "nobody" cannot list resource '
            '"agentsearches"') in denied.stderr
    usage = cluster.kubectl("get", "--raw", f"{SEARCH_API}/namespaces/{NS_A}/usagesummaries?agent={reg.AGENT}",
                            "--as=bea", check=False)
    assert usage.returncode == 0, usage.stderr
    assert [i["version"] for i in json.loads(usage.stdout)["items"]] == ["2.3.1"]  # not the draft
    discovery = cluster.kubectl("api-resources", "--api-group=search.registry.greenlang.ai", check=False)
    assert "agentsearches" in discovery.stdout and "auditevents" in discovery.stdout


def test_the_database_not_the_index_decides_what_a_caller_reads(indexed):
    """The mirror's index only narrows and ranks: a row it wrongly holds as public and certified (here
    forged into it) is still refused by row-level security, and the page is filled by the next best."""
    from gl_mirror import ranked_index

    tenant_b = search.Caller((TENANT_B,))
    honest = [h.ref for h in _search(indexed, "cbam calculator vat", tenant_b, limit=2).hits]
    assert len(honest) == 2 and f"{reg.AGENT}@2.4.0" not in honest
    with psycopg.connect(indexed.dsn()) as conn:
        index = ranked_index.ranked_index(conn)
        uid, written = conn.execute("SELECT uid::text, written::text::bigint FROM agent_search "
                                    "WHERE agent = %s AND version = '2.4.0'", (reg.AGENT,)).fetchone()
        row = dict(zip(("namespace", "agent", "display_name", "domain", "type", "tags", "description", "capabilities",
                        "embedding"), conn.execute(
            "SELECT namespace, agent, display_name, domain, type, tags, description, capabilities, embedding "
            "FROM agent_search WHERE uid = %s", (uid,)).fetchone()))
    try:
        index.apply(uid, written + 1, {**row, "tenant": TENANT_A, "visibility": "public", "state": "certified"})
        forged = [r.uid for r in index.rank(["cbam", "calculator", "vat"],
                                            default_embedder().embed(["cbam calculator vat"])[0], tenant_b, {}, 2)]
        assert uid in forged  # the index would show the draft
        assert [h.ref for h in _search(indexed, "cbam calculator vat", tenant_b, limit=2).hits] == honest
    finally:
        ranked_index._indexes.clear()  # the next search reads the table afresh


def test_a_full_load_cut_short_is_done_again_next_time(indexed):
    """A reload that fails halfway (here: a login that may not read the table) leaves the index to load
    everything next time, not to follow changes from where the last complete load ended."""
    from gl_mirror.ranked_index import RankedIndex

    indexed.sql("greenlang", "DO $$ BEGIN CREATE ROLE search_nobody LOGIN; "
                             "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    index = RankedIndex()
    with psycopg.connect(indexed.dsn()) as conn:
        index.sync(conn)
    loaded = len(index)
    assert loaded >= 5
    index.RELOAD_AFTER = 0.0  # the next sync reloads
    with psycopg.connect(indexed.dsn(user="search_nobody")) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        index.sync(conn)
    index.RELOAD_AFTER = RankedIndex.RELOAD_AFTER
    with psycopg.connect(indexed.dsn()) as conn:
        index.sync(conn)
    assert len(index) == loaded
