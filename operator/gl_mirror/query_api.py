"""The mirror's query API, served to users through the Kubernetes aggregation layer.

The API server authenticates the user and forwards the request over mutual TLS with its
front-proxy client certificate, naming the user in X-Remote-User / X-Remote-Group. This server
trusts those headers only from a peer whose certificate chains to the request-header CA and
carries an allowed name, authorizes the user with a SubjectAccessReview in the scope asked
(a namespace, or the cluster), and reads as ``greenlang_reader`` with that scope set for the
transaction, so that Postgres row-level security returns only what the user may read.

    GET /apis/search.registry.greenlang.ai/v1alpha1/agentsearches?q=carbon+border+tax
    GET /apis/search.registry.greenlang.ai/v1alpha1/namespaces/NS/agentsearches?q=...
    GET /apis/search.registry.greenlang.ai/v1alpha1/namespaces/NS/auditevents?actor=alice&limit=50
    GET /apis/search.registry.greenlang.ai/v1alpha1/auditevents?actor=alice    (cluster-wide auditors)
    GET /apis/search.registry.greenlang.ai/v1alpha1/namespaces/NS/usagesummaries?agent=gl-cbam-calculator-v2
    GET /apis/search.registry.greenlang.ai/v1alpha1/namespaces/NS/usagesummaries?agent=...&window=30d

With ``window`` and a Prometheus (``--prometheus-url``), each summary also carries the version's
figures measured live over the window. Users never reach Prometheus themselves (it has no
authentication): the mirror asks it only about versions row-level security let the caller see.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from kubernetes import client
from psycopg_pool import ConnectionPool

from gl_api import GROUP as REGISTRY_GROUP
from gl_api import audit_events, slo
from gl_kube import access
from gl_kube.prometheus import Prometheus
from gl_mirror import anchor, audit, json_http, search
from gl_mirror.search_index import default_embedder

log = logging.getLogger(__name__)
GROUP = "search.registry.greenlang.ai"
VERSION = "v1alpha1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
# Namespaced resources answer in a namespace (that namespace's rows) and at the cluster scope, like
# Events; verifying the chain reads every tenant's rows, so it has the cluster scope only.
RESOURCES = {"agentsearches": ("AgentSearchResult", True), "auditevents": ("AuditEvent", True),
             "usagesummaries": ("UsageSummary", True), "auditverifications": ("AuditVerification", False)}
# Verifying the trail is reading all of it: the same permission as listing audit events.
PERMISSION = {"auditverifications": "auditevents"}


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...]


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def discovery_group() -> dict[str, Any]:
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [version],
            "preferredVersion": version}


def discovery_resources() -> dict[str, Any]:
    # None of these joins the `greenlang` category: `kubectl get greenlang` lists every member of it
    # without parameters, and a search without `q` (or an audit query) has no plain list to give.
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": [
        {"name": name, "singularName": kind.lower(), "namespaced": namespaced, "kind": kind, "verbs": ["list"]}
        for name, (kind, namespaced) in RESOURCES.items()]}


class AccessDecisions:
    """SubjectAccessReview answers, an allow remembered for a few seconds.

    Every query asks whether the caller may list what it asks for; most callers ask again within
    seconds (a page, then the next). The API server's own webhook authorizer caches decisions the
    same way (``--authorization-webhook-cache-authorized-ttl``, 5 minutes by default); here an
    allow lives ``ttl`` seconds, so a revoked role stops reading within that, and a denial is not
    remembered, so a role just granted works at once.

    Except where a denial only narrows what is shown (``remember_denial``): whether a caller's
    search may widen to every tenant, or to a namespace's drafts. Most callers are denied that,
    and asking the API server on every search cost more than the search itself; a role just
    granted widens the view within ``ttl``.
    """

    def __init__(self, api: client.ApiClient, ttl: float = 5.0, clock=time.monotonic):  # type: ignore[no-untyped-def]
        self.api, self.ttl, self.clock = api, ttl, clock
        self._answers: dict[tuple[Any, ...], tuple[float, bool]] = {}  # key -> (when, allowed)
        self._lock = threading.Lock()

    def allowed(self, user: str, groups: tuple[str, ...], verb: str, resource: str, group: str,
                namespace: str | None, remember_denial: bool = False) -> bool:
        key = (user, tuple(sorted(groups)), verb, resource, group, namespace)
        now = self.clock()
        with self._lock:
            remembered = self._answers.get(key)
        if remembered is not None and now - remembered[0] < self.ttl and (remembered[1] or remember_denial):
            return remembered[1]
        answer = access.allowed(self.api, user, groups, verb, resource, group=group, namespace=namespace)
        with self._lock:
            if len(self._answers) > 10_000:  # many callers: forget the stale ones
                self._answers = {k: a for k, a in self._answers.items() if now - a[0] < self.ttl}
            self._answers[key] = (now, answer)
        return answer


class QueryService:
    """What the handlers need: Postgres, the Kubernetes API (for SubjectAccessReviews) and trust settings."""

    def __init__(self, dsn: str, api: client.ApiClient, allowed_names: tuple[str, ...] = ("front-proxy-client",),
                 anchor_namespace: str = anchor.DEFAULT_NAMESPACE, prometheus: Prometheus | None = None):
        self.dsn = dsn
        self.api = api
        self.allowed_names = allowed_names
        self.anchor_namespace = anchor_namespace
        self.prometheus = prometheus
        self.decisions = AccessDecisions(api)
        # Connections kept open (settings apply per transaction: read_as uses SET LOCAL), so a query
        # costs no connection set-up and its statements stay prepared.
        self.pool = ConnectionPool(dsn, min_size=1, max_size=8, kwargs={"autocommit": True}, open=True,
                                   name="query-api")

    def allowed(self, who: Identity, verb: str, resource: str, namespace: str | None, group: str = GROUP,
                remember_denial: bool = False) -> bool:
        return self.decisions.allowed(who.user, who.groups, verb, resource, group, namespace, remember_denial)

    def caller(self, conn: psycopg.Connection[Any], who: Identity, namespace: str | None) -> search.Caller:
        """Whose drafts and tenant-only agents a search or usage summary may show.

        The same as ``kubectl get agentversions`` would: everyone's for whoever may list them
        cluster-wide; otherwise those of the tenants the user is a member of, and those of the
        namespace asked about when the user may list its AgentVersions.
        """
        if self.allowed(who, "list", "agentversions", None, group=REGISTRY_GROUP, remember_denial=True):
            return search.Caller(all_tenants=True)
        rows = conn.execute("""
            SELECT DISTINCT name FROM registry_objects, jsonb_array_elements(body -> 'spec' -> 'members') AS m
            WHERE kind = 'TenantPolicy' AND NOT deleted
              AND ((m ->> 'kind' = 'User' AND m ->> 'name' = %s) OR (m ->> 'kind' = 'Group' AND m ->> 'name' = ANY(%s)))
        """, (who.user, list(who.groups))).fetchall()
        readable = namespace and self.allowed(who, "list", "agentversions", namespace, group=REGISTRY_GROUP,
                                              remember_denial=True)
        return search.Caller(tuple(sorted(r[0] for r in rows)), namespaces=(namespace,) if readable else ())

    def agent_searches(self, who: Identity, namespace: str | None, params: dict[str, str]) -> dict[str, Any]:
        query = params.get("q", "").strip()
        if not query:
            raise ValueError("the q parameter is required, e.g. ?q=carbon+border+tax")
        filters = search.Filters(domain=params.get("domain"), type=params.get("type"), state=params.get("state"),
                                 namespace=namespace, tag=params.get("tag"))
        with self.pool.connection() as conn:
            page = search.search(conn, query, self.caller(conn, who, namespace), default_embedder(), filters,
                                 limit=int(params.get("limit", 20)), cursor=params.get("continue"))
        return {"kind": "AgentSearchResultList", "apiVersion": GROUP_VERSION,
                "metadata": {"continue": page.next_cursor or ""},
                "items": [{"kind": "AgentSearchResult", "apiVersion": GROUP_VERSION,
                           "metadata": {"name": h.ref, "namespace": h.namespace}, **h.to_json()} for h in page.hits]}

    def usage_summaries(self, who: Identity, namespace: str | None, params: dict[str, str]) -> dict[str, Any]:
        """Usage per version as last reported in status.usage, for the versions the caller may see; with
        ``window``, also as Prometheus measured it over the window (when the mirror has a Prometheus)."""
        window = params.get("window")
        if window is not None and not re.fullmatch(slo.WINDOW_PATTERN, window):
            raise ValueError(f"window={window!r}: give a number and a unit, e.g. 90m, 24h, 30d")
        with self.pool.connection() as conn:
            caller = self.caller(conn, who, namespace)
            with conn.transaction():
                search.read_as(conn, caller)
                rows = conn.execute("""
                    SELECT uid, namespace, agent, version, state FROM agent_search
                    WHERE (%(ns)s::text IS NULL OR namespace = %(ns)s)
                      AND (%(agent)s::text IS NULL OR agent = %(agent)s)
                    ORDER BY namespace, agent, version""", {"ns": namespace, "agent": params.get("agent")}).fetchall()
            # Readers have no grant on registry_objects: the application reads the usage of exactly the
            # versions row-level security let through.
            usage = dict(conn.execute("SELECT uid, body -> 'status' -> 'usage' FROM registry_objects "
                                      "WHERE uid = ANY(%s)", ([row[0] for row in rows],)).fetchall())
        items = [{"kind": "UsageSummary", "apiVersion": GROUP_VERSION,
                  "metadata": {"name": f"{agent}@{version}", "namespace": ns}, "agent": agent, "version": version,
                  "state": state, "usage": usage.get(uid) or {}} for uid, ns, agent, version, state in rows]
        if window and self.prometheus is not None:
            for item in items:
                # The agent label is where the agent is published (<namespace>/<name>): every tenant's
                # pods of this version, summed; never a series of a version the caller may not see.
                selector = slo.version_selector(f"{item['metadata']['namespace']}/{item['agent']}", item["version"])
                item["measured"] = slo.usage(self.prometheus.query_all(slo.queries(selector, window)), window)
        return {"kind": "UsageSummaryList", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}

    def audit_verification(self) -> dict[str, Any]:
        report = audit.verify_anchored(self.dsn, self.api, self.anchor_namespace)
        return {"kind": "AuditVerification", "apiVersion": GROUP_VERSION, **report}

    def audit_events(self, namespace: str | None, params: dict[str, str]) -> dict[str, Any]:
        """Rows of the namespace asked about; every row only at the cluster scope (the caller's SAR said which)."""
        clauses, values = [], []
        if namespace:
            clauses.append("namespace = %s")
            values.append(namespace)
        for column in ("tenant", "actor", "kind", "namespace", "name", "operation"):
            if params.get(column):
                clauses.append(f"{column} = %s")
                values.append(params[column])
        if params.get("eventType"):
            clauses.append(f"({audit_events.sql_case()}) = %s")
            values.append(audit_events.check(params["eventType"]))
        if params.get("startTime"):
            clauses.append("at >= %s")
            values.append(audit_events.parse_time(params["startTime"], "startTime"))
        if params.get("endTime"):
            clauses.append("at < %s")
            values.append(audit_events.parse_time(params["endTime"], "endTime", end=True))
        if params.get("continue"):
            clauses.append("id < %s")
            values.append(int(params["continue"]))
        limit = min(int(params.get("limit", 100)), 1000)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        scope = search.Caller(namespaces=(namespace,)) if namespace else search.Caller(all_tenants=True)
        with self.pool.connection() as conn, conn.transaction():
            search.read_as(conn, scope)
            rows = conn.execute(f"SELECT id, at, actor, tenant, kind, namespace, name, operation, change, decision, "
                                f"reason, request_uid, {audit_events.sql_case()} FROM audit_events {where} "
                                f"ORDER BY id DESC LIMIT %s", (*values, limit + 1)).fetchall()
        # auditID: the API server's own id of the request (rows from its audit log; null for watch-derived ones).
        # eventType: the row's type in the documented vocabulary (gl_api.audit_events), null for others.
        items = [{"kind": "AuditEvent", "apiVersion": GROUP_VERSION, "metadata": {"name": str(r[0])},
                  "id": r[0], "at": r[1].isoformat(), "actor": r[2], "tenant": r[3], "object": {
                      "kind": r[4], "namespace": r[5], "name": r[6]}, "eventType": r[12], "operation": r[7],
                  "change": r[8], "decision": r[9], "reason": r[10], "auditID": r[11]} for r in rows[:limit]]
        return {"kind": "AuditEventList", "apiVersion": GROUP_VERSION,
                "metadata": {"continue": str(rows[limit - 1][0]) if len(rows) > limit else ""}, "items": items}


def _handler(service: QueryService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive: the aggregator reuses its connection instead of a TLS handshake per request.
        # Headers and body leave in two writes: without TCP_NODELAY the body waits for the
        # peer's delayed ACK (40 ms on Linux) on a kept-alive connection.
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _send(self, code: int, body: dict[str, Any]) -> None:
            json_http.send_json(self, code, body)

        def _identity(self) -> Identity | None:
            peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
            names = {value for field in (peer or {}).get("subject", ()) for key, value in field if key == "commonName"}
            if not names & set(service.allowed_names):
                return None
            user = self.headers.get("X-Remote-User")
            return Identity(user, tuple(self.headers.get_all("X-Remote-Group") or ())) if user else None

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urllib.parse.urlparse(self.path)
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            parts = [p for p in url.path.split("/") if p]
            if url.path in ("/healthz", "/readyz", "/livez"):
                self._send(200, {"status": "ok"})
                return
            who = self._identity()
            if who is None:
                self._send(401, _status(401, "Unauthorized", "requests must come through the Kubernetes API server"))
                return
            try:
                if parts == ["apis"]:
                    self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [discovery_group()]})
                elif parts == ["apis", GROUP]:
                    self._send(200, discovery_group())
                elif parts == ["apis", GROUP, VERSION]:
                    self._send(200, discovery_resources())
                else:
                    self._resource(who, parts[3:] if parts[:3] == ["apis", GROUP, VERSION] else None, params)
            except ValueError as error:
                self._send(400, _status(400, "BadRequest", str(error)))
            except Exception as error:  # a failing backend must answer, not hang the API server
                log.exception("query failed")
                self._send(503, _status(503, "ServiceUnavailable", f"the registry mirror could not answer: {error}"))

        def _resource(self, who: Identity, rest: list[str] | None, params: dict[str, str]) -> None:
            namespace = None
            if rest and len(rest) == 3 and rest[0] == "namespaces":
                namespace, rest = rest[1], rest[2:]
            if not rest or len(rest) != 1 or rest[0] not in RESOURCES:
                self._send(404, _status(404, "NotFound", f"unknown path {self.path}"))
                return
            resource = rest[0]
            if namespace and not RESOURCES[resource][1]:
                self._send(404, _status(404, "NotFound", f"{resource} has the cluster scope only: ask "
                                                         f"/apis/{GROUP_VERSION}/{resource}"))
                return
            if not service.allowed(who, "list", PERMISSION.get(resource, resource), namespace):
                where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
                self._send(403, _status(403, "Forbidden", f'{resource}.{GROUP} is forbidden: User "{who.user}" '
                                                          f'cannot list resource "{resource}" in API group '
                                                          f'"{GROUP}" {where}'))
                return
            if resource == "agentsearches":
                self._send(200, service.agent_searches(who, namespace, params))
            elif resource == "usagesummaries":
                self._send(200, service.usage_summaries(who, namespace, params))
            elif resource == "auditverifications":
                self._send(200, service.audit_verification())
            else:
                self._send(200, service.audit_events(namespace, params))

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("query api: " + format, *args)

    return Handler


def serve(service: QueryService, address: tuple[str, int], certfile: str, keyfile: str,
          client_ca: str) -> ThreadingHTTPServer:
    """Start the HTTPS server in a thread; clients must present a certificate signed by ``client_ca``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    context.load_verify_locations(cafile=client_ca)
    context.verify_mode = ssl.CERT_OPTIONAL  # health probes come without one; data needs one (see _identity)
    server = ThreadingHTTPServer(address, _handler(service))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="query-api", daemon=True).start()
    return server
