"""Watch-backed local caches: list once, then watch, and answer lookups from memory.

An ``Informer`` keeps one registry kind current in a ``Store``: it lists in pages, watches from
the list's resourceVersion (with bookmarks, so a quiet kind still advances), resumes from the
last resourceVersion it saw after a dropped connection, and relists when the API server answers
410 Gone. It keeps each object as the *view* its caller asks for (only the fields it reads), so
100,000 objects cost tens of megabytes, not gigabytes. Indexes map keys (an agent, an image
digest, a namespace) to the objects that have them.

Readers run on other threads than the watch: the store hands out copies of its index entries
under a lock, never a live dict.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from prometheus_client import Counter, Gauge

from gl_api import GROUP, VERSION, kinds
from gl_kube import objects

log = logging.getLogger(__name__)
V = TypeVar("V")
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds
Indexer = Callable[[Any], Iterable[Hashable]]

CACHED = Gauge("greenlang_registry_cache_objects", "Objects held in a watch-backed cache.", ["kind"])
RELISTS = Counter("greenlang_registry_cache_relists_total", "Full relists of a watch-backed cache.", ["kind"])
WATCH_RESTARTS = Counter("greenlang_registry_cache_watch_restarts_total",
                         "Watches of a cache resumed after an error or a dropped connection.", ["kind"])

WATCH_SECONDS = 300  # the server ends each watch after this; the next resumes where it stopped
READ_TIMEOUT = WATCH_SECONDS + 30  # a connection silent for longer than that is dead


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


class Store(Generic[V]):
    """Views by key, plus indexes from index values to keys; safe for one writer and many readers."""

    def __init__(self, indexes: dict[str, Indexer] | None = None):
        self._indexers = dict(indexes or {})
        self._items: dict[Key, V] = {}
        self._indexes: dict[str, dict[Hashable, dict[Key, V]]] = {name: {} for name in self._indexers}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Key) -> V | None:
        return self._items.get(key)

    def by(self, index: str, value: Hashable) -> list[V]:
        with self._lock:
            return list(self._indexes[index].get(value, {}).values())

    def values(self) -> list[V]:
        with self._lock:
            return list(self._items.values())

    def put(self, key: Key, view: V) -> None:
        with self._lock:
            self._unindex(key)
            self._items[key] = view
            self._index(key, view)

    def delete(self, key: Key) -> None:
        with self._lock:
            self._unindex(key)
            self._items.pop(key, None)

    def replace(self, items: dict[Key, V]) -> None:
        indexes: dict[str, dict[Hashable, dict[Key, V]]] = {name: {} for name in self._indexers}
        for key, view in items.items():
            for name, indexer in self._indexers.items():
                for value in indexer(view):
                    indexes[name].setdefault(value, {})[key] = view
        with self._lock:
            self._items, self._indexes = items, indexes

    def _index(self, key: Key, view: V) -> None:
        for name, indexer in self._indexers.items():
            for value in indexer(view):
                self._indexes[name].setdefault(value, {})[key] = view

    def _unindex(self, key: Key) -> None:
        old = self._items.get(key)
        if old is None:
            return
        for name, indexer in self._indexers.items():
            for value in indexer(old):
                entries = self._indexes[name].get(value)
                if entries is not None:
                    entries.pop(key, None)
                    if not entries:
                        del self._indexes[name][value]


class Informer(Generic[V]):
    """Keeps a ``Store`` of one registry kind current from a list and a watch, on its own thread."""

    def __init__(self, api: client.ApiClient, kind: kinds.Kind, view: Callable[[dict[str, Any]], V],
                 indexes: dict[str, Indexer] | None = None):
        self.api, self.kind, self.view = api, kind, view
        self.store: Store[V] = Store(indexes)
        self.synced = threading.Event()
        self._stopping = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"informer-{kind.plural}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._watch is not None:
            self._watch.stop()

    def _relist(self) -> str:
        items: dict[Key, V] = {}
        resource_version = ""
        for page in objects.pages(self.api, self.kind):
            for obj in page["items"]:
                items[key_of(obj)] = self.view(obj)
            resource_version = page["metadata"]["resourceVersion"]
        self.store.replace(items)
        CACHED.labels(kind=self.kind.kind).set(len(items))
        RELISTS.labels(kind=self.kind.kind).inc()
        self.synced.set()
        log.info("cached %d %s at resourceVersion %s", len(items), self.kind.plural, resource_version)
        return resource_version

    def _apply(self, event: dict[str, Any]) -> str:
        obj = event["object"]
        if event["type"] in ("ADDED", "MODIFIED"):
            self.store.put(key_of(obj), self.view(obj))
        elif event["type"] == "DELETED":
            self.store.delete(key_of(obj))
        CACHED.labels(kind=self.kind.kind).set(len(self.store))
        return str(obj["metadata"]["resourceVersion"])

    def _run(self) -> None:
        resource_version: str | None = None
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._relist()
                self._watch = watch.Watch()
                for event in self._watch.stream(
                        objects.custom(self.api).list_cluster_custom_object, GROUP, VERSION, self.kind.plural,
                        resource_version=resource_version, allow_watch_bookmarks=True,
                        timeout_seconds=WATCH_SECONDS, _request_timeout=(10, READ_TIMEOUT), deserialize=False):
                    resource_version = self._apply(event)
                    if self._stopping.is_set():
                        return
                backoff = 0.5
            except ApiException as error:
                if error.status == 410:  # the history was compacted: start over from a fresh list
                    log.info("%s watch history is gone (410); relisting", self.kind.plural)
                    resource_version = None
                    continue
                self._pause(f"{error.status} {error.reason}", backoff)
                backoff = min(backoff * 2, 10)
            except Exception as error:  # connection reset, API server restarting
                self._pause(str(error) or type(error).__name__, backoff)
                backoff = min(backoff * 2, 10)

    def _pause(self, why: str, backoff: float) -> None:
        WATCH_RESTARTS.labels(kind=self.kind.kind).inc()
        log.warning("%s watch interrupted (%s); resuming in %.1fs", self.kind.plural, why, backoff)
        self._stopping.wait(backoff)


def wait_synced(informers: Iterable[Informer[Any]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    return all(informer.synced.wait(max(0.0, deadline - time.monotonic())) for informer in informers)
