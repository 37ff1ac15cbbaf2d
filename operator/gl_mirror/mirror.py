"""Watch the registry's kinds (and the Events about them) and write them to Postgres, losing nothing.

One thread per kind lists and watches the API server and queues what it sees; one writer thread
drains the queue into Postgres in transactions, retrying with backoff while Postgres is away (the
queue is the buffer). A watch resumes from the resourceVersion last *written*, so a restart
replays at most what was not yet stored, and replays are harmless. When the API server answers
410 Gone (the history was compacted), the kind is relisted and rows for objects that vanished
meanwhile are marked deleted.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from prometheus_client import Counter, Gauge

from gl_api import API_VERSION, GROUP, VERSION, kinds
from gl_mirror import store

log = logging.getLogger(__name__)

LAG = Gauge("greenlang_registry_mirror_lag_events", "Events seen but not yet written to Postgres.")
POSTGRES_UP = Gauge("greenlang_registry_mirror_postgres_up", "1 when the last write to Postgres succeeded.")
WRITTEN = Counter("greenlang_registry_mirror_events_written_total", "Watch events written to Postgres.", ["kind"])
RELISTS = Counter("greenlang_registry_mirror_relists_total", "Full relists after the watch history was lost.",
                  ["kind"])
EVENT_KIND = "Event"


@dataclass(frozen=True)
class Source:
    kind: str
    list_fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    field_selector: str | None = None


def sources(api: client.ApiClient) -> list[Source]:
    custom = client.CustomObjectsApi(api)
    result = [Source(k.kind, custom.list_cluster_custom_object, (GROUP, VERSION, k.plural)) for k in kinds.ALL]
    result.append(Source(EVENT_KIND, client.CoreV1Api(api).list_event_for_all_namespaces,
                         field_selector=f"involvedObject.apiVersion={API_VERSION}"))
    return result


class Mirror:
    def __init__(self, api: client.ApiClient, dsn: str, watch_timeout: int = 60, deletes_logged: bool = False):
        self.api = api
        self.dsn = dsn
        # The API server's audit log names who deleted; a watch cannot (audit.records).
        self.deletes_logged = deletes_logged
        self.watch_timeout = watch_timeout
        self.queue: queue.Queue[store.Change | store.Relist] = queue.Queue()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self._bookmarks: dict[str, int] = {}

    # ------------------------------------------------------------------ watching

    def _list(self, source: Source) -> tuple[list[dict[str, Any]], int]:
        extra = {"field_selector": source.field_selector} if source.field_selector else {}
        reply = source.list_fn(*source.args, _preload_content=False, **extra)
        data = json.loads(reply.data)
        for item in data["items"]:  # list items carry no kind; the store wants whole objects
            item.setdefault("kind", source.kind)
        return data["items"], int(data["metadata"]["resourceVersion"])

    def _relist(self, source: Source) -> int:
        items, resource_version = self._list(source)
        RELISTS.labels(kind=source.kind).inc()
        self.queue.put(store.Relist(source.kind, items, resource_version))
        LAG.set(self.queue.qsize())
        log.info("relisted %d %s objects at resourceVersion %d", len(items), source.kind, resource_version)
        return resource_version

    def _watch(self, source: Source) -> None:
        resource_version = self._bookmarks.get(source.kind)
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._relist(source)
                extra = {"field_selector": source.field_selector} if source.field_selector else {}
                stream = watch.Watch().stream(source.list_fn, *source.args, resource_version=str(resource_version),
                                              allow_watch_bookmarks=True, timeout_seconds=self.watch_timeout, **extra)
                for event in stream:
                    obj = event["raw_object"]
                    if event["type"] == "ERROR":
                        if obj.get("code") == 410:
                            raise ApiException(status=410, reason="Gone")
                        raise RuntimeError(f"watch error: {obj.get('message')}")
                    resource_version = int(obj["metadata"]["resourceVersion"])
                    if event["type"] != "BOOKMARK":
                        obj.setdefault("kind", source.kind)
                        self.queue.put(store.Change(source.kind, event["type"], obj))
                        LAG.set(self.queue.qsize())
                    if self.stopping.is_set():
                        return
                backoff = 0.5
            except ApiException as error:
                if error.status == 410:
                    log.warning("%s watch history is gone (410); relisting", source.kind)
                    resource_version = None
                    continue
                log.warning("%s watch failed (%s); retrying in %.1fs", source.kind, error.reason, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)
            except Exception as error:  # connection reset, API server restart
                log.warning("%s watch interrupted (%s); retrying in %.1fs", source.kind, error, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)

    # ------------------------------------------------------------------ writing

    def _next_batch(self, limit: int = 500) -> store.Batch:
        batch = store.Batch()
        try:
            batch.changes.append(self.queue.get(timeout=0.5))
        except queue.Empty:
            return batch
        while len(batch.changes) < limit:
            try:
                batch.changes.append(self.queue.get_nowait())
            except queue.Empty:
                break
        for item in batch.changes:
            batch.bookmarks[item.kind] = max(batch.bookmarks.get(item.kind, 0), item.resource_version)
        return batch

    def _write_forever(self) -> None:
        connection: psycopg.Connection[Any] | None = None
        backoff = 0.5
        while not self.stopping.is_set() or not self.queue.empty():
            batch = self._next_batch()
            if not batch.changes:
                continue
            while True:  # never drop a batch: retry until Postgres takes it
                try:
                    if connection is None or connection.closed:
                        connection = psycopg.connect(self.dsn, connect_timeout=3)
                    store.write(connection, batch, deletes_logged=self.deletes_logged)
                    POSTGRES_UP.set(1)
                    backoff = 0.5
                    break
                except psycopg.Error as error:
                    POSTGRES_UP.set(0)
                    log.warning("Postgres write failed (%s); %d events buffered; retrying in %.1fs",
                                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
                                len(batch.changes) + self.queue.qsize(), backoff)
                    if connection is not None:
                        connection.close()
                    connection = None
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 5)
            for item in batch.changes:
                WRITTEN.labels(kind=item.kind).inc()
            LAG.set(self.queue.qsize())

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        with psycopg.connect(self.dsn, connect_timeout=5) as conn:
            self._bookmarks = store.bookmarks(conn)
        writer = threading.Thread(target=self._write_forever, name="mirror-writer", daemon=True)
        self.threads = [writer] + [threading.Thread(target=self._watch, args=(s,), name=f"watch-{s.kind}",
                                                    daemon=True) for s in sources(self.api)]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
