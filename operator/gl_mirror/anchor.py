"""The audit chain's head, anchored outside Postgres, so that removing the newest rows shows.

Every interval (a minute at most) the mirror copies the newest row's id and hash into the
ConfigMap ``greenlang-audit-anchor`` in its namespace. The anchor only moves forward: when the
table no longer holds the anchored row unchanged, followed by the rows after it in order, the
anchor stays where it is, the mirror logs why and ``greenlang_registry_mirror_audit_anchor_refused``
turns 1, so verification keeps reporting what was lost.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg
from kubernetes import client
from kubernetes.client.rest import ApiException
from prometheus_client import Gauge

from gl_api import labels

log = logging.getLogger(__name__)

NAME = "greenlang-audit-anchor"
DEFAULT_NAMESPACE = "greenlang-system"
MAX_INTERVAL = 60.0
ANCHORED = Gauge("greenlang_registry_mirror_audit_anchored_row", "Id of the audit row last anchored outside Postgres.")
REFUSED = Gauge("greenlang_registry_mirror_audit_anchor_refused",
                "1 while the audit table no longer extends the anchored head (rows removed or changed).")


class MalformedAnchor(Exception):
    """The anchor object exists but does not hold an id and a hash: edited by hand, or damaged."""


class Refused(Exception):
    """The table does not extend the anchored head; moving the anchor would hide the loss."""


@dataclass(frozen=True)
class Anchor:
    last_id: int
    hash: str
    time: str

    def to_json(self) -> dict[str, Any]:
        return {"lastId": self.last_id, "hash": self.hash, "time": self.time}


def location(namespace: str) -> str:
    return f"ConfigMap {namespace}/{NAME}"


def check_interval(seconds: float) -> float:
    if not 0 < seconds <= MAX_INTERVAL:
        raise ValueError(f"--anchor-interval must be more than 0 and at most {MAX_INTERVAL:g} seconds (the chain "
                         f"head is anchored at least every minute), got {seconds:g}")
    return seconds


def _read(api: client.ApiClient, namespace: str) -> tuple[Anchor | None, str | None]:
    try:
        config_map = client.CoreV1Api(api).read_namespaced_config_map(NAME, namespace)
    except ApiException as error:
        if error.status == 404:
            return None, None
        raise
    data = config_map.data or {}
    try:
        anchor = Anchor(int(data["lastId"]), data["hash"], data.get("time", ""))
    except (KeyError, ValueError) as error:
        raise MalformedAnchor(f"{location(namespace)} does not hold an anchor (data.lastId as an integer and "
                              f"data.hash): {error!r}") from error
    return anchor, config_map.metadata.resource_version


def read(api: client.ApiClient, namespace: str) -> Anchor | None:
    return _read(api, namespace)[0]


def _write(api: client.ApiClient, namespace: str, anchor: Anchor, resource_version: str | None) -> None:
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=NAME, namespace=namespace, resource_version=resource_version, labels={
            labels.NAME: "greenlang-registry-mirror", labels.COMPONENT: "audit-anchor",
            labels.PART_OF: labels.PART_OF_VALUE, labels.MANAGED_BY: "gl-mirror"}),
        data={"lastId": str(anchor.last_id), "hash": anchor.hash, "time": anchor.time})
    core = client.CoreV1Api(api)
    if resource_version is None:
        core.create_namespaced_config_map(namespace, body)
    else:  # replaced only if unchanged since read: two mirrors never move it past each other's check
        core.replace_namespaced_config_map(NAME, namespace, body)


def advance(conn: psycopg.Connection[Any], api: client.ApiClient, namespace: str) -> Anchor:
    """Anchor the current head if the table still extends the anchored one; raises Refused otherwise."""
    current, resource_version = _read(api, namespace)
    # One statement, one snapshot: the head written is the one checked.
    head_id, head_hash, problems = conn.execute(
        "SELECT h.id, h.hash, (SELECT json_agg(json_build_array(x.id, x.problem) ORDER BY x.id) "
        "                      FROM audit_extends(%s, %s) x) FROM audit_head() h",
        (current.last_id if current else 0, current.hash if current else "genesis")).fetchone()
    conn.rollback()
    if current and problems:
        REFUSED.set(1)
        row, problem = problems[0]
        raise Refused(f"the audit table no longer extends the head anchored in {location(namespace)} (row "
                      f"{current.last_id} at {current.time}): row {row}: {problem}; the anchor stays there")
    REFUSED.set(0)
    if current and (current.last_id, current.hash) == (head_id, head_hash):
        return current
    if current is None and head_id > 0:
        log.warning("no audit anchor in %s; anchoring the head at row %d", location(namespace), head_id)
    anchor = Anchor(head_id, head_hash, datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"))
    _write(api, namespace, anchor, resource_version)
    ANCHORED.set(head_id)
    return anchor


def _brief(error: Exception) -> str:
    if isinstance(error, ApiException):
        return f"{error.status} {error.reason}"
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class Anchoring:
    """Anchor the head every ``interval`` seconds until stopped; failures are retried sooner."""

    def __init__(self, api: client.ApiClient, dsn: str, namespace: str, interval: float):
        self.api, self.dsn, self.namespace, self.interval = api, dsn, namespace, check_interval(interval)
        self.stopping = threading.Event()

    def _run(self) -> None:
        connection: psycopg.Connection[Any] | None = None
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(self.dsn, connect_timeout=5)
                advance(connection, self.api, self.namespace)
                backoff = 0.5
                wait = self.interval
            except Refused as error:
                log.error("%s", error)
                wait = self.interval
            except Exception as error:  # Postgres or the API server away, namespace not there yet, a conflict
                log.warning("anchoring the audit chain failed (%s); retrying in %.1fs", _brief(error),
                            min(backoff, self.interval))
                if connection is not None:
                    connection.close()
                connection = None
                wait = min(backoff, self.interval)
                backoff = min(backoff * 2, self.interval)
            self.stopping.wait(wait)

    def start(self) -> None:
        threading.Thread(target=self._run, name="audit-anchor", daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
