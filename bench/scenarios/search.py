"""`python -m bench search`: search latency at N versions, lexical, typo and semantic, as a tenant user.

The stack: the local control plane, a Postgres of its own and the mirror with its aggregated
query API. N versions are seeded straight into the mirror's search table (as the mirror writes
them: the same INSERT, the same wordllama embeddings), spread over tenants, half public, most
certified, so the tenant user sees their own drafts and everyone's certified public agents.

Measured, alternated round by round, one request at a time:

- ``api``: ``GET .../agentsearches?q=...`` through the API server as the tenant user (the aggregator,
  the mirror's SubjectAccessReview and its query); the target: p95 < 20 ms at 100,000 versions;
- ``in-process``: ``gl_mirror.search.search`` called directly on one connection: the query alone;
- baseline ``sql``: a plain indexed SQL query on the same table (full-text ``@@`` for lexical and
  semantic queries, trigram ``<%`` for typos) with ``LIMIT``, on one connection.

And the result beside a full scan (every row the caller may read, read from Postgres and scored one
by one in Python, with the same scoring: the reference): how many queries give the same page, and
what the scan costs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import Figures, rss_mb
from bench.scenarios import common
from gl_api import API_VERSION
from gl_devenv import registry_services
from gl_devenv.postgres import LocalPostgres
from gl_mirror import ranked_index, search, search_index, text_match

SCALES = {"tiny": {"versions": 300, "tenants": 2, "rounds": 1, "repeat": 2, "reference": 3},
          "10k": {"versions": 10_000, "tenants": 10, "rounds": 3, "repeat": 10, "reference": 9},
          "100k": {"versions": 100_000, "tenants": 20, "rounds": 3, "repeat": 10, "reference": 3}}
USER = "bench-search-user"
QUERIES = {
    "lexical": ["carbon border", "vat invoice", "payroll withholding", "supplier emissions"],
    "typo": ["carbn bordr adjustmnt", "payrol witholding", "invoce validaton"],
    "semantic": ["tax on imported steel", "help new employees settle in", "check tax on bills from suppliers"],
}
SEARCH_API = "/apis/search.registry.greenlang.ai/v1alpha1/agentsearches"

# Synthetic agents: a domain, its words, and descriptions built from them.
DOMAINS = {
    "sustainability.cbam": ["carbon", "border", "adjustment", "embedded", "emissions", "steel", "cement", "import"],
    "sustainability.scope3": ["supplier", "emissions", "scope", "footprint", "procurement", "spend"],
    "finance.tax": ["vat", "invoice", "validator", "reverse", "charge", "rates", "supplier"],
    "finance.payroll": ["payroll", "withholding", "income", "tax", "monthly", "salary"],
    "people.onboarding": ["onboarding", "employee", "benefits", "equipment", "schedule", "welcome"],
    "legal.contracts": ["contract", "clause", "review", "obligation", "renewal", "liability"],
    "support.tickets": ["ticket", "triage", "customer", "priority", "routing", "reply"],
    "energy.grid": ["grid", "load", "forecast", "demand", "renewable", "storage"],
}
KINDS = ("calculator", "assistant", "validator", "classifier")


def synthetic(rng: random.Random, number: int, namespace: str) -> dict[str, Any]:
    """One version's search fields, shaped as ``search_index.refresh`` shapes them."""
    domain = rng.choice(list(DOMAINS))
    words = DOMAINS[domain]
    name = f"{'-'.join(rng.sample(words, 2))}-{rng.choice(KINDS)}-{number}"
    description = (f"{rng.choice(['Computes', 'Checks', 'Answers', 'Estimates', 'Reviews'])} "
                   f"{' '.join(rng.sample(words, 3))} for {rng.choice(['importers', 'teams', 'auditors', 'finance'])}.")
    capability = f"{rng.choice(words)}-{rng.choice(['report', 'check', 'estimate'])}"
    fields = {"display_name": name.replace("-", " ").title(), "description": description, "domain": domain,
              "type": rng.choice(KINDS), "tags": [domain.split(".")[-1]],
              "visibility": "public" if rng.random() < 0.5 else "tenant",
              "capability_names": capability, "capability_text": description}
    state = "certified" if rng.random() < 0.7 else "draft"
    return {"fields": fields, "agent": name, "namespace": namespace, "state": state}


def seed(dsn: str, namespaces: list[str], count: int) -> float:
    """Insert ``count`` rows as the mirror would; returns the seconds it took."""
    rng = random.Random(13)
    embedder = search_index.default_embedder()
    started = time.monotonic()
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        for first in range(0, count, 1000):
            batch = [synthetic(rng, n, namespaces[n % len(namespaces)]) for n in range(first, min(count, first + 1000))]
            embeddings = embedder.embed([search_index.semantic_text(v["fields"], v["agent"]) for v in batch])
            cur.executemany(search_index.INSERT, [search_index.insert_parameters(  # the mirror's own statement
                str(uuid.UUID(int=rng.getrandbits(128))), v["namespace"], v["agent"], "1.0.0", v["state"], v["fields"],
                embedding) for v, embedding in zip(batch, embeddings)])
            conn.commit()
        cur.execute("ANALYZE agent_search")
    return time.monotonic() - started


def tenants(cluster: Any, count: int) -> list[str]:
    """TenantPolicies with one dev namespace each; USER is a member of the first."""
    policies = [{"apiVersion": API_VERSION, "kind": "TenantPolicy", "metadata": {"name": f"bench-search-{n}"},
                 "spec": {"environments": [{"name": "dev", "namespace": f"bench-search-{n}-dev"}],
                          "members": [{"kind": "User", "name": USER if n == 0 else f"someone-{n}", "role": "viewer"}]}}
                for n in range(count)]
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "bench-search-reader"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "greenlang-registry:search-reader"},
               "subjects": [{"kind": "User", "name": USER, "apiGroup": "rbac.authorization.k8s.io"}]}
    applied = cluster.kubectl("apply", "-f", "-", check=False,
                              input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [*policies, binding]}))
    if applied.returncode != 0:
        raise RuntimeError(f"creating the TenantPolicies failed: {applied.stderr.strip()}")
    return [p["spec"]["environments"][0]["namespace"] for p in policies]


def remove_tenants(cluster: Any, count: int) -> None:
    """Take back what ``tenants`` made, so a shared control plane (the e2e session's) is left as found.

    The TenantPolicy finalizer is the operator's (it waits for deployments; there are none), and
    the operator may not run here: it is cleared rather than waited for."""
    names = [f"bench-search-{n}" for n in range(count)]
    cluster.kubectl("delete", "clusterrolebinding", "bench-search-reader", "--ignore-not-found", check=False)
    cluster.kubectl("delete", "tenantpolicy", *names, "--ignore-not-found", "--wait=false", check=False)
    for name in names:
        cluster.kubectl("patch", "tenantpolicy", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                        check=False)
    cluster.kubectl("delete", "namespace", *[f"{n}-dev" for n in names], "--ignore-not-found", "--wait=false",
                    check=False)


def until(probe: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.5)


def mirrored(dsn: str, count: int) -> bool:
    try:
        with psycopg.connect(dsn) as conn:
            return conn.execute("SELECT count(*) FROM registry_objects WHERE kind = 'TenantPolicy' AND NOT deleted "
                                "AND name LIKE 'bench-search-%%'").fetchone()[0] == count
    except psycopg.Error:
        return False


_BASELINE = {
    "lexical": "SELECT uid, agent, version FROM agent_search WHERE document @@ websearch_to_tsquery('english', %(q)s) "
               "ORDER BY ts_rank_cd(document, websearch_to_tsquery('english', %(q)s), 32) DESC LIMIT 20",
    "typo": "SELECT uid, agent, version FROM agent_search WHERE %(q)s <%% search_text "
            "ORDER BY word_similarity(%(q)s, search_text) DESC LIMIT 20",
}
_BASELINE["semantic"] = _BASELINE["lexical"]


def reference(conn: psycopg.Connection[Any], query: str, caller: search.Caller, embedder: Any,
              limit: int = 20) -> list[tuple[str, float]]:
    """The search without an index: every row the caller may read, read and scored one by one (one page)."""
    vector = embedder.embed([query])[0]
    query_words = text_match.words(query)
    with conn.transaction():
        search.read_as(conn, caller)
        rows = conn.execute("SELECT uid::text, agent, version, embedding, display_name, domain, tags, description, "
                            "capabilities FROM agent_search").fetchall()
    hits = []
    for uid, agent, version, embedding, display_name, domain, tags, description, capabilities in rows:
        words, _ = text_match.word_score(query_words, text_match.field_words(
            agent, display_name, domain, tags, description, capabilities))
        dot = sum(x * y for x, y in zip(vector, embedding))
        norm = math.sqrt(sum(x * x for x in vector)) * math.sqrt(sum(y * y for y in embedding))
        semantic = dot / norm if norm else 0.0
        if words <= 0 and semantic < ranked_index.SEMANTIC_FLOOR:
            continue
        score = ranked_index.LEXICAL_WEIGHT * min(words, 1.0) + (1 - ranked_index.LEXICAL_WEIGHT) * max(semantic, 0.0)
        hits.append((uid, f"{agent}@{version}", score))
    hits.sort(key=lambda h: (-round(h[2], 6), h[0]))
    return [(ref, round(score, 4)) for _, ref, score in hits[:limit]]


async def measure(http: common.Http, dsn: str, caller: search.Caller, scale: dict[str, Any]) -> dict[str, Figures]:
    embedder = search_index.default_embedder()
    figures = {f"{kind} {mode}": Figures(f"{kind} {mode}") for kind in QUERIES for mode in ("api", "in-process", "sql")}
    with psycopg.connect(dsn, autocommit=True) as conn:
        # The baseline is a plain indexed SQL query: its indexes, which the mirror does not keep.
        conn.execute("CREATE INDEX IF NOT EXISTS bench_search_document ON agent_search USING gin (document)")
        conn.execute("CREATE INDEX IF NOT EXISTS bench_search_trigrams ON agent_search "
                     "USING gin (search_text gin_trgm_ops)")
        search.search(conn, "warm up", caller, embedder)  # loads the search index once, as a running mirror has

        def in_process(query: str) -> tuple[int, str]:
            search.search(conn, query, caller, embedder)
            return 200, ""

        def sql(kind: str, query: str) -> tuple[int, str]:
            with conn.transaction():
                search.read_as(conn, caller)
                conn.execute("SELECT set_config('pg_trgm.word_similarity_threshold', '0.4', true)")
                conn.execute(_BASELINE[kind], {"q": query}).fetchall()
            return 200, ""

        async def api(query: str) -> tuple[int, str]:
            return await http.get(f"{SEARCH_API}?{urllib.parse.urlencode({'q': query, 'limit': 20})}")

        for _ in range(2):  # warm the aggregator's connection and the mirror's index
            await api("warm up")
        for number in range(scale["rounds"]):
            modes = ["api", "in-process", "sql"]
            for mode in (modes if number % 2 == 0 else modes[::-1]):
                for kind, queries in QUERIES.items():
                    def make(n: int, kind: str = kind, queries: list[str] = queries) -> Any:
                        query = queries[n % len(queries)]
                        if mode == "api":
                            return api(query)
                        return asyncio.to_thread(in_process if mode == "in-process" else sql, *(
                            (query,) if mode == "in-process" else (kind, query)))
                    await common.harness.load(figures[f"{kind} {mode}"], make, 0, scale["repeat"] * len(queries), 1)
    return figures


def agreement(dsn: str, caller: search.Caller, samples: int) -> dict[str, Any]:
    """The same page as the full scan? For ``samples`` queries across the kinds, and what the scan costs."""
    embedder = search_index.default_embedder()
    chosen = [q for group in itertools.zip_longest(*QUERIES.values()) for q in group if q][:samples]
    same, scan, indexed = 0, Figures("full scan"), Figures("index query")
    differing = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for query in chosen:
            start = time.perf_counter()
            page = search.search(conn, query, caller, embedder)
            indexed.samples.append(time.perf_counter() - start)
            start = time.perf_counter()
            expected = reference(conn, query, caller, embedder)
            scan.samples.append(time.perf_counter() - start)
            got = [(h.ref, round(h.score, 4)) for h in page.hits]
            same += got == expected
            if got != expected:
                differing.append(query)
    for figures in (scan, indexed):
        figures.seconds = sum(figures.samples)
    return {"queries": len(chosen), "samePage": same, "differing": differing,
            "fullScan": scan.summary(), "indexQuery": indexed.summary()}


def run(args: argparse.Namespace) -> None:
    scale = SCALES[args.scale]
    postgres = LocalPostgres(Path(tempfile.mkdtemp(prefix="gl-bench-pg-")))
    postgres.directory.chmod(0o755)
    with common.control_plane(args.cluster_dir) as cluster:
        if cluster.processes.running(registry_services.MIRROR):
            raise SystemExit("a mirror already runs with this control plane (gl-dev up?): the search benchmark brings "
                             "its own Postgres and mirror; run it on a fresh control plane (without --cluster-dir)")
        postgres.start()
        try:
            dsn = postgres.dsn()
            namespaces = tenants(cluster, scale["tenants"])
            registry_services.start_mirror(cluster, dsn)
            try:
                until(lambda: mirrored(dsn, scale["tenants"]), "the mirror to mirror the TenantPolicies")
                seconds = seed(dsn, namespaces, scale["versions"])
                print(f"seeded {scale['versions']} versions in {seconds:.0f}s", file=sys.stderr)
                until(lambda: cluster.kubectl("get", "--raw", f"{SEARCH_API}?q=carbon", check=False).returncode == 0,
                      "the aggregated search API")
                caller = search.Caller(tenants=("bench-search-0",))
                user = cluster.user_kubeconfig(USER)

                async def measured() -> dict[str, Figures]:
                    http = common.Http(user)
                    try:
                        return await measure(http, dsn, caller, scale)
                    finally:
                        await http.close()

                figures = asyncio.run(measured())
                checked = agreement(dsn, caller, scale["reference"])
                mirror_pid = cluster.processes.pid(registry_services.MIRROR)
                mirror_mb = rss_mb(mirror_pid) if mirror_pid else None  # with its vector index loaded
                with psycopg.connect(dsn) as conn:
                    table_mb = conn.execute("SELECT pg_total_relation_size('agent_search')").fetchone()[0] / 2 ** 20
            finally:
                registry_services.stop_mirror(cluster)
                remove_tenants(cluster, scale["tenants"])
        finally:
            postgres.stop("immediate")
    results = []
    for kind in QUERIES:
        for mode in ("api", "in-process"):
            results.append(common.compare(f"{kind} {mode}", figures[f"{kind} {mode}"], figures[f"{kind} sql"],
                                          f"{kind} plain SQL"))
    common.report("search", args, results, versions=scale["versions"], tenants=scale["tenants"],
                  agreementWithFullScan=checked,
                  resources={"mirrorRssMb": round(mirror_mb, 1) if mirror_mb else None,
                             "searchTableMb": round(table_mb, 1)},
                  targets={"api p95_ms at 100k": 20})
    print(f"\nsame page as the full scan: {checked['samePage']}/{checked['queries']} queries; full scan p50 "
          f"{checked['fullScan']['p50_ms']} ms, index query p50 {checked['indexQuery']['p50_ms']} ms")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench search", description=__doc__.splitlines()[0])
    common.add_common_arguments(parser, SCALES)
    run(parser.parse_args(argv))
