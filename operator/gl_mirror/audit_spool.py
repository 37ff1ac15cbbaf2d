"""The API server's audit batches on local disk until Postgres has their rows.

The API server gives up on a batch after a few minutes of retries, and Postgres may be away for
longer. So the listener answers 200 once a batch is here (written, fsync'd, renamed into place,
the directory fsync'd), and one flusher appends the batches to the trail in arrival order,
deleting each file only after its transaction committed. A crash between the commit and the
delete appends nothing twice: rows are looked up by ``auditID`` first (``request_log.store``).

A file is named ``<arrival number>-<first auditID>-<rows>.json`` and holds the batch as received.
A batch Postgres refuses for its content (not for being away) would hold up every batch behind
it forever, so it is moved to ``rejected/`` and logged; it stays there for an operator.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import Counter, Gauge

from gl_mirror import request_log

log = logging.getLogger(__name__)
SUFFIX = ".json"
REJECTED = "rejected"
_NAME = re.compile(r"^(\d{12})-")
# Postgres away: try again soon, but not in a tight loop.
RETRY_MIN, RETRY_MAX = 0.5, 5.0
# The idle flusher looks at the spool this often even if nobody woke it.
IDLE = 5.0

SPOOLED = Gauge("greenlang_registry_mirror_audit_spooled_batches",
                "Audit batches from the API server on disk, waiting to be appended to the trail (--audit-spool-dir).")
FLUSHED = Counter("greenlang_registry_mirror_audit_flushed_batches",
                  "Spooled audit batches appended to the trail (their transaction committed, their file deleted).")
SET_ASIDE = Counter("greenlang_registry_mirror_audit_rejected_batches",
                    "Spooled audit batches Postgres refused for their content, moved to rejected/ in the spool.")
EVENTS = Counter("greenlang_registry_mirror_apiserver_audit_events_total",
                 "Audit events received from the API server, by what became of them.", ["result"])


def _arrival(path: Path) -> int:
    found = _NAME.match(path.name)
    return int(found.group(1)) if found else 0


class Spool:
    """A directory of batches, oldest first; one mirror at a time may use it."""

    def __init__(self, directory: Path):
        self.directory = directory.resolve()
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)  # request bodies: not for every user
            (self.directory / REJECTED).mkdir(exist_ok=True, mode=0o700)
            self._owner = (self.directory / ".lock").open("a")
        except OSError as error:
            raise ValueError(f"--audit-spool-dir {self.directory} cannot be used: {error}") from error
        try:
            fcntl.flock(self._owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise ValueError(f"--audit-spool-dir {self.directory} is in use by another gl-mirror: give each mirror "
                             "its own directory") from error
        # Half-written batches were never answered 200: the API server sends them again.
        for unfinished in self.directory.glob("*.tmp"):
            unfinished.unlink()
        self._lock = threading.Lock()
        known = [*self.pending(), *(self.directory / REJECTED).glob(f"*{SUFFIX}")]
        self._next = max(map(_arrival, known), default=0) + 1
        SPOOLED.set(len(self.pending()))

    def pending(self) -> list[Path]:
        """The batches waiting, in arrival order."""
        return sorted(p for p in self.directory.glob(f"*{SUFFIX}") if _NAME.match(p.name))

    def add(self, body: bytes, first_audit_id: str, rows: int) -> str:
        """Put a batch on disk, behind every batch before it; returns its name once it is durable."""
        unfinished = self.directory / f"{uuid.uuid4().hex}.tmp"
        try:
            with unfinished.open("wb") as file:
                file.write(body)
                file.flush()
                os.fsync(file.fileno())
            with self._lock:  # the number and the rename together: the flusher never sees a later one first
                name = f"{self._next:012d}-{re.sub(r'[^A-Za-z0-9-]', '', first_audit_id)[:64]}-{rows}{SUFFIX}"
                self._next += 1
                os.rename(unfinished, self.directory / name)
        except BaseException:
            unfinished.unlink(missing_ok=True)
            raise
        _fsync_directory(self.directory)
        SPOOLED.inc()
        return name

    def remove(self, path: Path) -> None:
        path.unlink()  # not fsync'd: a file that comes back is appended again, adding nothing
        SPOOLED.dec()

    def set_aside(self, path: Path) -> Path:
        target = self.directory / REJECTED / path.name
        os.rename(path, target)
        _fsync_directory(self.directory)
        SPOOLED.dec()
        return target


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Flusher:
    """The one writer of spooled batches into Postgres, in arrival order."""

    def __init__(self, dsn: str, spool: Spool):
        self.dsn, self.spool = dsn, spool
        self._changed = threading.Condition()
        self._waiting: set[str] = set()
        self._done: dict[str, dict[str, Any]] = {}
        self._reachable = True
        self._conn: psycopg.Connection[Any] | None = None

    def start(self) -> None:
        """Drain what an earlier run left, then whatever arrives."""
        threading.Thread(target=self._run, name="audit-spool-flusher", daemon=True).start()

    def outcome(self, name: str, timeout: float) -> dict[str, Any] | None:
        """Wake the flusher for batch ``name``: what became of it (rows stored and stored before, or set
        aside), or None when Postgres is away or ``timeout`` passes first (the batch then waits on disk)."""
        with self._changed:
            self._waiting.add(name)
            self._changed.notify_all()
            try:
                self._changed.wait_for(lambda: name in self._done or not self._reachable, timeout)
                return self._done.pop(name, None)
            finally:
                self._waiting.discard(name)

    def _run(self) -> None:
        pause = RETRY_MIN
        while True:
            with self._changed:  # listed under the lock that outcome() notifies under: no wake-up is missed
                batches = self.spool.pending()
                if not batches:
                    self._changed.wait(IDLE)
                    continue
            try:
                for path in batches:
                    self._flush(path)
                pause = RETRY_MIN
            except psycopg.Error as error:
                self._unreachable(error, len(batches))
                time.sleep(pause)
                pause = min(pause * 2, RETRY_MAX)
            except Exception:  # the disk, say: the batches stay, and so must the only thread that appends them
                log.exception("appending spooled audit batches failed; trying again in %gs", RETRY_MAX)
                time.sleep(RETRY_MAX)

    def _flush(self, path: Path) -> None:
        try:
            found = request_log.records(json.loads(path.read_bytes()))
            stored, duplicates = request_log.store(self._connection(), found)
        except (ValueError, psycopg.DataError) as error:
            # The content, not the connection: retrying would stall the trail behind this batch.
            target = self.spool.set_aside(path)
            SET_ASIDE.inc()
            log.error("audit batch %s refused (%s); moved to %s, the trail goes on without it", path.name,
                      _first_line(error), target)
            self._report(path.name, {"rejected": str(target), "message": _first_line(error)})
            return
        self.spool.remove(path)
        FLUSHED.inc()
        EVENTS.labels(result="stored").inc(stored)
        EVENTS.labels(result="duplicate").inc(duplicates)
        self._report(path.name, {"stored": stored, "duplicates": duplicates})

    def _report(self, name: str, answer: dict[str, Any]) -> None:
        with self._changed:  # a batch dealt with: the flusher is moving again
            if not self._reachable:
                log.info("Postgres is back: appending the spooled audit batches")
                self._reachable = True
            if name in self._waiting:
                self._done[name] = answer
            self._changed.notify_all()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        return self._conn

    def _unreachable(self, error: psycopg.Error, waiting: int) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
        with self._changed:
            if self._reachable:
                log.warning("cannot append audit batches (%s); %d and any that arrive wait in %s until Postgres "
                            "answers", _first_line(error), waiting, self.spool.directory)
            self._reachable = False
            self._changed.notify_all()


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    detail = error.diag.message_detail if isinstance(error, psycopg.Error) else None
    return f"{first}: {detail}" if detail else first  # Postgres says which value only in the detail
