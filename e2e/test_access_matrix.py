"""The access matrix: every role, in either of two tenants, gets exactly what docs/governance.md says.

The table in the governance guide ("Roles: least privilege") is this test's data. The operator
provisions two tenants from TenantPolicies holding a member of each of the seven tenant roles
(tenant A's members are users, tenant B's are groups); the registry's own roles are bound by hand,
in tenant A's namespaces or cluster-wide. Then, for every subject:

- the API server's authorizer (a SubjectAccessReview, what `kubectl auth can-i` asks) answers every
  verb on every resource the table names, and on Kubernetes' sensitive ones it does not, in the
  subject's own namespaces, the other tenant's, the registry's own namespace and cluster-wide;
- a representative subset is done for real as that user with kubectl (get, list, create, delete, an
  approval, a status write, TenantPolicies, Secrets), and every aggregated resource is read with
  `kubectl get --raw` in a namespace of each tenant and at the cluster scope.

Zero unexpected allows and zero unexpected denies; a failure lists every differing cell. Last, a
draft of tenant A must be invisible to tenant B everywhere: the API, search, usage, audit and `gl`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import yaml
from kubernetes import client
from kubernetes import config as kube_config

from e2e import REPO
from e2e import registry as reg
from e2e import wait
from e2e.governed import TEST_OPERATOR_CONFIG, artifact_of, image_of
from e2e.mirror_process import local_postgres, start_with_query_api
from gl_api import GROUP, VERSION, naming
from gl_api.models.tenant_policy import Role
from gl_devenv import cluster as local_cluster
from gl_devenv import crd_install, registry_services

DOC = REPO / "docs" / "governance.md"
REGISTRY_ROLES = REPO / "crds" / "rbac_registry-roles.yaml"
QUERY_GROUP = "search.registry.greenlang.ai"
QUERY = f"/apis/{QUERY_GROUP}/v1alpha1"
RBAC = "rbac.authorization.k8s.io"
ROLE_PREFIX = "greenlang-registry:"

READ, WRITE = ("get", "list", "watch"), ("create", "update", "patch", "delete")
# The registry's custom verbs are asked on every registry resource: granted anywhere else they would
# mean nothing today and whatever a later check makes of them.
VERBS = (*READ, *WRITE, "deletecollection", "approve", "force-delete")
CORE_VERBS = (*READ, *WRITE, "deletecollection")
# Every resource asked about, as (API group, namespaced).
REGISTRY = {
    **{name: (GROUP, True) for name in ("agents", "agents/status", "agentversions", "agentversions/status",
                                        "promotions", "promotions/status", "agentdeployments",
                                        "agentdeployments/status")},
    "tenantpolicies": (GROUP, False), "tenantpolicies/status": (GROUP, False),
    "agentsearches": (QUERY_GROUP, True), "usagesummaries": (QUERY_GROUP, True), "auditevents": (QUERY_GROUP, True),
    "auditverifications": (QUERY_GROUP, False),
}
# Kubernetes' own: those some role is granted, and sensitive ones that no role may touch.
CORE = {
    **{name: ("", True) for name in ("pods", "pods/log", "pods/exec", "services", "configmaps", "secrets", "events",
                                     "serviceaccounts", "resourcequotas", "limitranges")},
    "deployments": ("apps", True), "replicasets": ("apps", True), "rolebindings": (RBAC, True),
    "roles": (RBAC, True), "networkpolicies": ("networking.k8s.io", True),
    "namespaces": ("", False), "clusterrolebindings": (RBAC, False),
}
RESOURCES = {**REGISTRY, **CORE}
OBJECTS_COLUMN = "Kubernetes objects"
BOUND = ("tenant", "namespace", "cluster")

TENANTS = {"a": "am-tenant-a", "b": "am-tenant-b"}
NAMESPACES = {t: (f"{name}-dev", f"{name}-prod") for t, name in TENANTS.items()}
DEV = {t: namespaces[0] for t, namespaces in NAMESPACES.items()}
SYSTEM = crd_install.SYSTEM_NAMESPACE
# Tenant A: a certified public agent with a draft; tenant B: a tenant-only agent, a draft too.
LEDGER, PAYROLL = "am-ledger", "am-payroll"
AGENT_IN = {DEV["a"]: LEDGER, DEV["b"]: PAYROLL}
VERSION_IN = {DEV["a"]: naming.object_name(LEDGER, "1.0.0"), DEV["b"]: naming.object_name(PAYROLL, "0.1.0")}
DRAFT_REF, DRAFT_NAME = f"{LEDGER}@1.1.0", naming.object_name(LEDGER, "1.1.0")
CERTIFIED_REF = f"{LEDGER}@1.0.0"
VICTIM = "am-victim"  # an Agent in each dev namespace that subjects try to delete (server-side dry run)
# A member of tenant B (viewer) who may also search cluster-wide: the widest view a B member can have.
SEEKER = "bea@b.example.com"


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Row:
    role: str
    bound: str
    grants: dict[str, frozenset[str]]

    def __str__(self) -> str:
        return f"{self.role} (bound {self.bound})"


def _verbs(text: str, where: str) -> frozenset[str]:
    text = text.strip()
    if text in ("—", "-", ""):
        return frozenset()
    verbs: set[str] = set()
    for term in (t.strip() for t in text.split(",")):
        if term == "read":
            verbs |= set(READ)
        elif term == "write":
            verbs |= set(WRITE)
        elif term in VERBS:
            verbs.add(term)
        else:
            raise ValueError(f"{where}: {term!r} is not a verb; write read, write or one of {', '.join(VERBS)}")
    return frozenset(verbs)


def _objects_cell(text: str, where: str) -> dict[str, frozenset[str]]:
    """`read, write: pods, services; read: events` -> {pods: ..., services: ..., events: ...}."""
    grants: dict[str, frozenset[str]] = {}
    if text.strip() in ("—", "-", ""):
        return grants
    for segment in text.split(";"):
        verbs, sep, names = segment.partition(":")
        if not sep:
            raise ValueError(f"{where}: {segment.strip()!r} should read `verbs: resources`")
        for name in (n.strip() for n in names.split(",")):
            if name not in CORE:
                raise ValueError(f"{where}: {name!r} is not one of the Kubernetes objects the test asks about "
                                 f"({', '.join(CORE)}); add it to CORE in e2e/test_access_matrix.py")
            grants[name] = grants.get(name, frozenset()) | _verbs(verbs, where)
    return grants


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def access_table(text: str) -> list[Row]:
    """The access table of docs/governance.md: the table whose header begins `| Role | Bound |`."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("| Role | Bound |")]
    if len(starts) != 1:
        raise ValueError(f"{DOC} must hold exactly one table starting `| Role | Bound |` (found {len(starts)})")
    header = _cells(lines[starts[0]])
    columns = header[2:]
    for column in columns:
        for name in column.split(","):
            if column != OBJECTS_COLUMN and name.strip() not in REGISTRY:
                raise ValueError(f"column {column!r}: {name.strip()!r} is none of {', '.join(REGISTRY)}")
    named = {name.strip() for column in columns if column != OBJECTS_COLUMN for name in column.split(",")}
    if named != set(REGISTRY):
        raise ValueError(f"the access table has no column for {', '.join(sorted(set(REGISTRY) - named))}")
    rows, seen = [], set()
    for line in lines[starts[0] + 2:]:
        if not line.startswith("|"):
            break
        cells = _cells(line)
        if len(cells) != len(header):
            raise ValueError(f"access table row {line!r} has {len(cells)} cells, the header {len(header)}")
        role, bound = cells[0], cells[1]
        if bound not in BOUND or (role, bound) in seen:
            raise ValueError(f"access table row {role!r}: Bound must be one of {', '.join(BOUND)}, once per role")
        seen.add((role, bound))
        grants: dict[str, frozenset[str]] = {}
        for column, cell in zip(columns, cells[2:]):
            where = f"access table, {role} ({bound}), column {column!r}"
            if column == OBJECTS_COLUMN:
                grants.update(_objects_cell(cell, where))
                continue
            for name in column.split(","):
                grants[name.strip()] = _verbs(cell, where)
        cluster_only = [r for r, verbs in grants.items() if verbs and not RESOURCES[r][1]]
        if bound != "cluster" and cluster_only:
            raise ValueError(f"access table, {role} ({bound}): a RoleBinding grants nothing at the cluster scope, "
                             f"yet the row grants {', '.join(cluster_only)}")
        rows.append(Row(role, bound, grants))
    tenant_roles = {r.role for r in rows if r.bound == "tenant"}
    if tenant_roles != {role.value for role in Role}:
        raise ValueError(f"the access table's tenant rows must be the seven tenant roles, not {sorted(tenant_roles)}")
    return rows


def test_the_documented_table_parses_and_names_every_registry_role():
    rows = access_table(DOC.read_text())
    # The ClusterRoles people are bound to; the file's one Role (promotion-policy-reader) is bound to
    # every authenticated user in greenlang-system and grants no registry resource (said under the table).
    defined = {doc["metadata"]["name"].removeprefix(ROLE_PREFIX)
               for doc in yaml.safe_load_all(REGISTRY_ROLES.read_text()) if doc and doc["kind"] == "ClusterRole"}
    assert {r.role for r in rows if r.bound != "tenant"} == defined


# ------------------------------------------------------------------ who asks


@dataclass(frozen=True)
class Subject:
    row: Row
    user: str
    groups: tuple[str, ...]  # besides system:authenticated, which every authenticated user has
    tenant: str | None  # the tenant in whose namespaces the row's role is bound (None: cluster-wide)

    def __str__(self) -> str:
        where = f"tenant {self.tenant.upper()}" if self.tenant else "cluster-wide"
        group = f", group {self.groups[0]}" if self.groups else ""
        return f"{self.user} [{self.row.role}, {where}{group}]"

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.user.lower()).strip("-")

    def impersonate(self) -> list[str]:
        return [f"--as={self.user}", *[f"--as-group={g}" for g in self.groups]]

    def expected(self, resource: str, namespace: str | None) -> frozenset[str]:
        """The table's answer for ``resource`` in ``namespace`` (None: the cluster scope)."""
        verbs = self.row.grants.get(resource, frozenset())
        if self.row.bound == "cluster":
            return verbs
        return verbs if namespace is not None and namespace in NAMESPACES[self.tenant] else frozenset()


def subjects(rows: list[Row]) -> list[Subject]:
    result = []
    for row in rows:
        if row.bound == "tenant":
            result.append(Subject(row, f"{row.role}@a.example.com", (), "a"))
            result.append(Subject(row, f"{row.role}@b.example.com", (f"am-b-{row.role}",), "b"))
        elif row.bound == "namespace":
            result.append(Subject(row, f"{row.role}.ns@a.example.com", (), "a"))
        else:
            result.append(Subject(row, f"{row.role}@platform.example.com", (), None))
    return result


def _tenant_policy(tenant: str, people: list[Subject]) -> dict[str, Any]:
    members = [{"kind": "Group", "name": s.groups[0], "role": s.row.role} if s.groups else
               {"kind": "User", "name": s.user, "role": s.row.role}
               for s in people if s.row.bound == "tenant" and s.tenant == tenant]
    if tenant == "b":
        members.append({"kind": "User", "name": SEEKER, "role": "viewer"})
    dev, prod = NAMESPACES[tenant]
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TenantPolicy", "metadata": {"name": TENANTS[tenant]},
            "spec": {"environments": [{"name": "dev", "namespace": dev},
                                      {"name": "production", "namespace": prod, "allowedStates": ["certified"]}],
                     "members": members}}


def _bindings(people: list[Subject]) -> list[dict[str, Any]]:
    """The registry's own roles, bound by hand: per namespace in tenant A, or cluster-wide."""
    result = [reg.binding("am-seeker-searches", SEEKER, ROLE_PREFIX + "search-reader")]
    for s in people:
        role = ROLE_PREFIX + s.row.role
        if s.row.bound == "namespace":
            result += [reg.binding(f"am-{s.slug}", s.user, role, ns) for ns in NAMESPACES[s.tenant]]
        elif s.row.bound == "cluster":
            result.append(reg.binding(f"am-{s.slug}", s.user, role))
    return result


# ------------------------------------------------------------------ the registry under test


@dataclass
class Registry:
    cluster: local_cluster.LocalCluster
    api: client.ApiClient
    people: list[Subject]

    def kubectl(self, *args: str, who: Subject | None = None, input: str | None = None):
        return self.cluster.kubectl(*args, *(who.impersonate() if who else []), input=input, check=False)


def _apply(cluster, items: list[dict[str, Any]]) -> None:
    applied = cluster.kubectl("apply", "-f", "-", check=False,
                              input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    assert applied.returncode == 0, applied.stderr


def _provisioned(cluster, tenant: dict[str, Any]) -> bool:
    got = cluster.kubectl("get", "tenantpolicy", tenant["metadata"]["name"], "-o", "json", check=False)
    if got.returncode != 0:
        return False
    status = json.loads(got.stdout).get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    wanted = len(tenant["spec"]["members"]) * len(tenant["spec"]["environments"])
    return ready and len(status.get("roleBindings") or []) == wanted


def _agent(namespace: str, name: str, visibility: str = "tenant") -> dict[str, Any]:
    agent = reg.example("Agent")
    agent["metadata"] = {"name": name, "namespace": namespace}
    agent["spec"].update(visibility=visibility, domain="finance.accounting", displayName=name.replace("-", " ").title(),
                         description=f"{name}: reconciles ledger entries against bank statements.", tags=["finance"])
    return agent


def _version(namespace: str, agent: str, version: str) -> dict[str, Any]:
    obj = reg.example("AgentVersion")
    digest = artifact_of(f"{agent}-{version}")
    obj["metadata"] = {"name": naming.object_name(agent, version), "namespace": namespace}
    obj["spec"].update(agent=agent, version=version, image=image_of(f"{agent}-{version}"),
                       artifact={**obj["spec"]["artifact"], "digest": digest,
                                 "uri": f"s3://greenlang-agents/sha256/{digest.removeprefix('sha256:')}"})
    return obj


def _publish(cluster, api) -> None:
    objects = [_agent(DEV["a"], LEDGER, "public"), _agent(DEV["b"], PAYROLL),
               _agent(DEV["a"], VICTIM), _agent(DEV["b"], VICTIM),
               _version(DEV["a"], LEDGER, "1.0.0"), _version(DEV["a"], LEDGER, "1.1.0"),
               _version(DEV["b"], PAYROLL, "0.1.0")]
    _apply(cluster, objects)
    for obj in objects[4:]:
        reg.wait_state(api, obj["metadata"]["namespace"], obj["metadata"]["name"], "draft")
    # The lifecycle is not under test: write the state the operator would reach, as the operator.
    certified = cluster.kubectl("patch", "agentversion", VERSION_IN[DEV["a"]], "-n", DEV["a"], "--subresource=status",
                                "--type=merge", "-p", json.dumps({"status": {"state": "certified"}}),
                                f"--as={registry_services.OPERATOR_IDENTITY}", "--as-group=system:masters",
                                check=False)
    assert certified.returncode == 0, certified.stderr


def _promotions(people: list[Subject]) -> list[dict[str, Any]]:
    """One Promotion per subject in each dev namespace, for that subject to approve (of a version that does
    not exist, so the operator never acts on an approval)."""
    return [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "Promotion",
             "metadata": {"name": f"am-approve-{s.slug}", "namespace": ns},
             "spec": {"agentVersion": f"{AGENT_IN[ns]}@9.9.9", "targetState": "experimental"}}
            for s in people for ns in DEV.values()]


def _mirrored(dsn: str) -> bool:
    try:  # autocommit: no lock held between the reads while the mirror may still be migrating
        with psycopg.connect(dsn, autocommit=True) as conn:
            indexed = conn.execute("SELECT count(*) FROM agent_search WHERE namespace = ANY(%s) AND tenant IS NOT NULL "
                                   "AND state IS NOT NULL", (list(DEV.values()),)).fetchone()[0]
            certified = conn.execute("SELECT count(*) FROM agent_search WHERE agent = %s AND version = '1.0.0' "
                                     "AND state = 'certified'", (LEDGER,)).fetchone()[0]
            audited = conn.execute("SELECT count(DISTINCT namespace) FROM audit_events WHERE namespace = ANY(%s)",
                                   (list(DEV.values()),)).fetchone()[0]
            tenants = conn.execute("SELECT count(*) FROM registry_objects WHERE kind = 'TenantPolicy' AND NOT deleted "
                                   "AND name = ANY(%s)", (list(TENANTS.values()),)).fetchone()[0]
            return indexed == 3 and certified == 1 and audited == 2 and tenants == 2
    except psycopg.Error:
        return False


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[Registry]:
    people = subjects(access_table(DOC.read_text()))
    workdir = tmp_path_factory.mktemp("access-matrix")
    cluster = local_cluster.LocalCluster(workdir / "cluster")
    cluster.start()
    try:
        crd_install.install(cluster)
        registry_services.start_operator(cluster, TEST_OPERATOR_CONFIG)
        api = kube_config.new_client_from_config(config_file=str(cluster.kubeconfig))
        tenants = [_tenant_policy(t, people) for t in TENANTS]
        _apply(cluster, tenants)
        for tenant in tenants:
            wait.until(lambda: _provisioned(cluster, tenant), timeout=60,
                       what=f"TenantPolicy {tenant['metadata']['name']} provisioned with a RoleBinding per member")
        _apply(cluster, _bindings(people))  # into the namespaces provisioning made
        _publish(cluster, api)
        _apply(cluster, _promotions(people))
        with local_postgres() as postgres:
            mirror = start_with_query_api(cluster, postgres.dsn(), workdir / "mirror.log")
            try:
                wait.until(lambda: _mirrored(postgres.dsn()), timeout=90, interval=0.5,
                           what="both tenants mirrored, indexed and audited")
                wait.until(lambda: cluster.kubectl(
                    "get", "apiservice", "v1alpha1.search.registry.greenlang.ai", "-o",
                    'jsonpath={.status.conditions[?(@.type=="Available")].status}', check=False).stdout == "True",
                    timeout=60, what="the aggregated API to be available")
                yield Registry(cluster, api, people)
            finally:
                mirror.stop()
    finally:
        registry_services.stop_operator(cluster)
        cluster.stop()


def _fail_on(mismatches: list[str], what: str) -> None:
    if mismatches:
        pytest.fail(f"{len(mismatches)} {what} differ from the access table in docs/governance.md:\n"
                    + "\n".join(sorted(mismatches)), pytrace=False)


# ------------------------------------------------------------------ the authorizer, cell by cell


def _allowed(api: client.ApiClient, who: Subject, resource: str, verb: str, namespace: str | None) -> bool:
    group = RESOURCES[resource][0]
    name, _, subresource = resource.partition("/")
    attributes = {"group": group, "resource": name, "verb": verb, **({"subresource": subresource} if subresource else {}),
                  **({"namespace": namespace} if namespace else {})}
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": who.user, "groups": [*who.groups, "system:authenticated"],
                       "resourceAttributes": attributes}}
    # Plain JSON in and out: this runs some twenty thousand times.
    response = api.call_api("/apis/authorization.k8s.io/v1/subjectaccessreviews", "POST", body=review,
                            header_params={"Content-Type": "application/json", "Accept": "application/json"},
                            auth_settings=["BearerToken"], _preload_content=False)
    raw = response[0] if isinstance(response, tuple) else response
    return bool(json.loads(raw.data)["status"].get("allowed"))


def _scopes(resource: str) -> list[str | None]:
    """Namespaces (and None, the cluster scope) to ask about ``resource`` in."""
    if not RESOURCES[resource][1]:
        return [None]
    if resource in REGISTRY:
        return [*NAMESPACES["a"], *NAMESPACES["b"], SYSTEM, None]
    return [DEV["a"], DEV["b"], SYSTEM, None]


def _where(namespace: str | None) -> str:
    return f"in {namespace}" if namespace else "cluster-wide"


def test_every_role_in_either_tenant_gets_exactly_the_documented_access(registry):
    questions = [(who, resource, verb, namespace)
                 for who in registry.people for resource in RESOURCES for namespace in _scopes(resource)
                 for verb in (VERBS if resource in REGISTRY else CORE_VERBS)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda q: _allowed(registry.api, *q), questions))
    mismatches = [f"{who}: {verb} {resource} {_where(namespace)}: the API server "
                  f"{'allows' if allowed else 'denies'} it, the table says {'allowed' if not allowed else 'denied'}"
                  for (who, resource, verb, namespace), allowed in zip(questions, answers)
                  if allowed != (verb in who.expected(resource, namespace))]
    _fail_on(mismatches, f"of {len(questions)} answers")


# ------------------------------------------------------------------ real requests


@dataclass
class Outcomes:
    who: Subject
    mismatches: list[str] = field(default_factory=list)

    def check(self, what: str, needs: list[tuple[str, str, str | None]], result: subprocess.CompletedProcess) -> bool:
        """Compare one real request with the table (it needs every (resource, verb, scope) listed)."""
        wanted = all(verb in self.who.expected(resource, namespace) for resource, verb, namespace in needs)
        if result.returncode == 0:
            got = True
        elif "forbidden" in result.stderr.lower():
            got = False
        else:
            self.mismatches.append(f"{self.who}: {what}: failed for another reason: {result.stderr.strip()[:300]}")
            return False
        if got != wanted:
            self.mismatches.append(f"{self.who}: {what}: {'succeeded' if got else 'refused'}, the table says "
                                   f"{'allowed' if wanted else 'denied'}"
                                   + ("" if got else f" ({result.stderr.strip()[:200]})"))
        return got


def _namespace_requests(registry: Registry, who: Subject, out: Outcomes, ns: str) -> None:
    version = VERSION_IN[ns]
    out.check(f"kubectl get agentversions -n {ns}", [("agentversions", "list", ns)],
              registry.kubectl("get", "agentversions", "-n", ns, "-o", "name", who=who))
    out.check(f"kubectl get agentversion {version} -n {ns}", [("agentversions", "get", ns)],
              registry.kubectl("get", "agentversion", version, "-n", ns, "-o", "name", who=who))
    out.check(f"kubectl get secrets -n {ns}", [("secrets", "list", ns)],
              registry.kubectl("get", "secrets", "-n", ns, "-o", "name", who=who))

    # Create an Agent; delete it for real when created, else try deleting another (server-side dry run).
    name = f"am-{who.slug}"
    created = out.check(f"kubectl create agent {name} -n {ns}", [("agents", "create", ns)],
                        registry.kubectl("create", "-f", "-", who=who, input=json.dumps(_agent(ns, name))))
    target, dry = (name, []) if created else (VICTIM, ["--dry-run=server"])
    deleted = out.check(f"kubectl delete agent {target} -n {ns} {' '.join(dry)}".strip(), [("agents", "delete", ns)],
                        registry.kubectl("delete", "agent", target, "-n", ns, "--wait=false", *dry, who=who))
    if created and not deleted:
        registry.kubectl("delete", "agent", name, "-n", ns, "--wait=false")

    approval = [{"op": "add", "path": "/spec/approvals", "value": [{"user": who.user, "comment": "access matrix"}]}]
    out.check(f"approve promotion am-approve-{who.slug} -n {ns}",
              [("promotions", "patch", ns), ("promotions", "approve", ns)],
              registry.kubectl("patch", "promotion", f"am-approve-{who.slug}", "-n", ns, "--type=json",
                               "-p", json.dumps(approval), who=who))
    results = {"status": {"evaluation": {"passed": True, "score": 0.9, "suite": "access-matrix"}}}
    out.check(f"report evaluation results on {version} -n {ns}", [("agentversions/status", "patch", ns)],
              registry.kubectl("patch", "agentversion", version, "-n", ns, "--subresource=status", "--type=merge",
                               "-p", json.dumps(results), who=who))
    for path, resource in (("agentsearches?q=ledger", "agentsearches"), ("usagesummaries", "usagesummaries"),
                           ("auditevents?limit=5", "auditevents")):
        out.check(f"kubectl get --raw {QUERY}/namespaces/{ns}/{path}", [(resource, "list", ns)],
                  registry.kubectl("get", "--raw", f"{QUERY}/namespaces/{ns}/{path}", who=who))


def _cluster_requests(registry: Registry, who: Subject, out: Outcomes) -> None:
    out.check("kubectl get agentversions -A", [("agentversions", "list", None)],
              registry.kubectl("get", "agentversions", "-A", "-o", "name", who=who))
    out.check("kubectl get tenantpolicies", [("tenantpolicies", "list", None)],
              registry.kubectl("get", "tenantpolicies", "-o", "name", who=who))
    name = f"am-tp-{who.slug}"
    scratch = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TenantPolicy", "metadata": {"name": name},
               "spec": {"displayName": "access matrix scratch tenant"}}
    created = out.check(f"kubectl create tenantpolicy {name}", [("tenantpolicies", "create", None)],
                        registry.kubectl("create", "-f", "-", who=who, input=json.dumps(scratch)))
    target, dry = (name, []) if created else (TENANTS["b"], ["--dry-run=server"])
    deleted = out.check(f"kubectl delete tenantpolicy {target} {' '.join(dry)}".strip(),
                        [("tenantpolicies", "delete", None)],
                        registry.kubectl("delete", "tenantpolicy", target, "--wait=false", *dry, who=who))
    if created and not deleted:
        registry.kubectl("delete", "tenantpolicy", name, "--wait=false")
    for path, resource in (("agentsearches?q=ledger", "agentsearches"), ("usagesummaries", "usagesummaries"),
                           ("auditevents?limit=5", "auditevents"), ("auditverifications", "auditverifications")):
        out.check(f"kubectl get --raw {QUERY}/{path}", [(resource, "list", None)],
                  registry.kubectl("get", "--raw", f"{QUERY}/{path}", who=who))


def test_real_requests_as_each_member_get_the_documented_answers(registry):
    def requests(who: Subject) -> list[str]:
        out = Outcomes(who)
        for ns in DEV.values():
            _namespace_requests(registry, who, out, ns)
        _cluster_requests(registry, who, out)
        return out.mismatches

    with ThreadPoolExecutor(4) as pool:
        mismatches = [m for found in pool.map(requests, registry.people) for m in found]
    _fail_on(mismatches, "real requests")


# ------------------------------------------------------------------ drafts stay in their tenant


def _gl(registry: Registry, user: str, groups: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    """`gl` as ``user``, authenticated by a client certificate (no impersonation)."""
    kubeconfig = registry.cluster.user_kubeconfig(user, groups)
    return subprocess.run([sys.executable, "-c", "from gl_cli.main import main; main()", *args], capture_output=True,
                          text=True, env={**os.environ, "KUBECONFIG": str(kubeconfig), "COLUMNS": "250"},
                          timeout=120)


def _shows_draft(result: subprocess.CompletedProcess[str]) -> bool:
    return DRAFT_REF in result.stdout or DRAFT_NAME in result.stdout


def test_a_draft_of_tenant_a_is_invisible_to_tenant_b_everywhere(registry):
    member = {s.row.role: s for s in registry.people if s.row.bound == "tenant" and s.tenant == "b"}
    seeker = Subject(Row("viewer", "tenant", {}), SEEKER, (), "b")
    own = {s.row.role: s for s in registry.people if s.row.bound == "tenant" and s.tenant == "a"}
    a, b = DEV["a"], DEV["b"]
    raw = [f"{QUERY}/{path}" for path in (
        f"namespaces/{b}/agentsearches?q=ledger+reconciler", f"namespaces/{a}/agentsearches?q=ledger+reconciler",
        "agentsearches?q=ledger+reconciler", f"namespaces/{b}/usagesummaries", f"namespaces/{a}/usagesummaries",
        "usagesummaries", f"namespaces/{b}/auditevents?limit=1000", f"namespaces/{b}/auditevents?name={DRAFT_NAME}",
        f"namespaces/{a}/auditevents?name={DRAFT_NAME}", f"auditevents?name={DRAFT_NAME}")]
    calls: list[tuple[Subject, list[str]]] = [
        (who, args) for who in [*member.values(), seeker] for args in (
            ["get", "agentversion", DRAFT_NAME, "-n", a, "-o", "json"], ["get", "agentversions", "-n", a, "-o", "json"],
            ["get", "agentversions", "-A", "-o", "json"], ["get", "agents", "-A", "-o", "json"],
            *(["get", "--raw", path] for path in raw))]

    def leaks(call: tuple[Subject, list[str]]) -> str | None:
        who, args = call
        result = registry.kubectl(*args, who=who)
        return f"{who}: kubectl {' '.join(args)} shows the draft" if _shows_draft(result) else None

    gl_b = [(member["super_admin"], ("agent", "list", "-n", a, "-o", "json")),
            (member["super_admin"], ("agent", "get", LEDGER, "-n", a, "-o", "json")),
            (member["super_admin"], ("agent", "search", "ledger reconciler", "-n", b, "-o", "json")),
            (member["super_admin"], ("agent", "metrics", LEDGER, "-n", a, "-o", "json")),
            (member["developer"], ("agent", "metrics", LEDGER, "-n", b, "-o", "json")),
            (member["auditor"], ("audit", "query", "--object", DRAFT_NAME, "-o", "json")),
            (member["auditor"], ("audit", "query", "-n", b, "--object", DRAFT_NAME, "-o", "json")),
            (member["auditor"], ("audit", "query", "-n", a, "--object", DRAFT_NAME, "-o", "json")),
            (seeker, ("agent", "search", "ledger reconciler", "-o", "json")),
            (seeker, ("agent", "list", "-A", "-o", "json"))]
    gl_a = [(own["developer"], ("agent", "get", LEDGER, "-n", a, "-o", "json")),
            (own["developer"], ("agent", "search", "ledger reconciler", "-n", a, "-o", "json")),
            (own["developer"], ("agent", "metrics", LEDGER, "-n", a, "-o", "json")),
            (own["auditor"], ("audit", "query", "-n", a, "--object", DRAFT_NAME, "-o", "json"))]
    with ThreadPoolExecutor(4) as pool:
        found = [leak for leak in pool.map(leaks, calls) if leak]
        gl_runs = list(pool.map(lambda c: _gl(registry, c[0].user, c[0].groups, *c[1]), gl_b + gl_a))
    found += [f"{who}: gl {' '.join(args)} shows the draft"
              for (who, args), result in zip(gl_b, gl_runs) if _shows_draft(result) or DRAFT_REF in result.stderr]
    if found:
        pytest.fail(f"tenant A's draft {DRAFT_REF} reached tenant B in {len(found)} places:\n" + "\n".join(found),
                    pytrace=False)

    # Not vacuous: the same paths show the draft inside tenant A, and tenant A's certified public
    # version to tenant B's widest searcher.
    for (who, args), result in zip(gl_a, gl_runs[len(gl_b):]):
        assert result.returncode == 0 and "1.1.0" in result.stdout, (who, args, result.stderr)
    for who, path in ((own["super_admin"], f"namespaces/{a}/agentsearches?q=ledger+reconciler"),
                      (own["developer"], f"namespaces/{a}/usagesummaries"),
                      (own["auditor"], f"namespaces/{a}/auditevents?name={DRAFT_NAME}")):
        shown = registry.kubectl("get", "--raw", f"{QUERY}/{path}", who=who)
        assert shown.returncode == 0 and _shows_draft(shown), (str(who), path, shown.stderr)
    searched = registry.kubectl("get", "--raw", f"{QUERY}/agentsearches?q=ledger+reconciler", who=seeker)
    assert searched.returncode == 0 and CERTIFIED_REF in searched.stdout, searched.stderr
    # And tenant B's members are refused, not shown an empty page, where the draft lives.
    refused = registry.kubectl("get", "agentversion", DRAFT_NAME, "-n", a, who=member["super_admin"])
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), refused.stderr
