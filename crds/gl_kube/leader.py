"""Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it.

One replica holds the Lease and renews it every ``renew_seconds``; the others watch it. A
standby takes over once it has seen the record unchanged for ``lease_seconds`` by its *own*
clock (no trust in other machines' clocks). A leader that cannot renew within ``renew_deadline``
has lost the Lease and must stop acting at once (``on_lost``). On a clean shutdown the leader
releases the Lease, so its successor takes over within one retry.

    kubectl get lease -n greenlang-system greenlang-registry-operator   # HOLDER shows the leader
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from kubernetes import client
from kubernetes.client.rest import ApiException

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Timing:
    """A standby takes over at most ``lease_seconds + retry_seconds`` after the leader's last renewal
    (10 s by default); a leader cut off from the API server stops after ``renew_deadline``, before
    any standby can take over."""

    lease_seconds: int = 8
    renew_seconds: float = 2
    renew_deadline: float = 5
    retry_seconds: float = 1


class LeaderElector:
    def __init__(self, api: client.ApiClient, namespace: str, name: str, identity: str,
                 timing: Timing = Timing()):
        self.coordination = client.CoordinationV1Api(api)
        self.namespace, self.name, self.identity, self.timing = namespace, name, identity, timing
        self.leading = threading.Event()
        self._observed: tuple[str | None, str | None] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0  # our monotonic clock when that record last changed
        self._last_renewal = 0.0

    # -------------------------------------------------------------- one attempt

    def _spec(self, lease: client.V1Lease | None) -> client.V1LeaseSpec:
        now = _now()
        previous = lease.spec if lease is not None else None
        taking_over = previous is None or previous.holder_identity != self.identity
        return client.V1LeaseSpec(
            holder_identity=self.identity, lease_duration_seconds=self.timing.lease_seconds,
            acquire_time=now if taking_over or previous.acquire_time is None else previous.acquire_time,
            renew_time=now,
            lease_transitions=((previous.lease_transitions or 0) + (1 if taking_over else 0)) if previous else 0)

    def try_acquire_or_renew(self) -> bool:
        """One round: take a free or expired Lease, or renew our own. True while we lead."""
        try:
            lease = self.coordination.read_namespaced_lease(self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                log.warning("cannot read Lease %s/%s: %s", self.namespace, self.name, error.reason)
                return False
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
                                  spec=self._spec(None))
            try:
                self.coordination.create_namespaced_lease(self.namespace, body)
            except ApiException as create_error:
                log.info("another replica created Lease %s/%s first (%s)", self.namespace, self.name,
                         create_error.reason)
                return False
            self._renewed()
            return True
        spec = lease.spec
        record = (spec.holder_identity, str(spec.renew_time))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        held_by_other = bool(spec.holder_identity) and spec.holder_identity != self.identity
        duration = spec.lease_duration_seconds or self.timing.lease_seconds
        if held_by_other and time.monotonic() - self._observed_at < duration:
            return False
        lease.spec = self._spec(lease)
        try:  # the resourceVersion in metadata makes this a compare-and-swap
            self.coordination.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as error:
            log.info("lost the race for Lease %s/%s (%s)", self.namespace, self.name, error.reason)
            return False
        if held_by_other:
            log.info("took over Lease %s/%s from %s, silent for %.1fs", self.namespace, self.name,
                     spec.holder_identity, time.monotonic() - self._observed_at)
        self._renewed()
        return True

    def _renewed(self) -> None:
        self._last_renewal = time.monotonic()
        if not self.leading.is_set():
            log.info("%s now leads (Lease %s/%s)", self.identity, self.namespace, self.name)
        self.leading.set()

    # -------------------------------------------------------------- loops

    def acquire(self, stop: threading.Event) -> bool:
        """Block until this replica leads (True) or ``stop`` is set (False)."""
        log.info("%s waiting to lead (Lease %s/%s)", self.identity, self.namespace, self.name)
        while not stop.is_set():
            if self.try_acquire_or_renew():
                return True
            stop.wait(self.timing.retry_seconds)
        return False

    def keep(self, stop: threading.Event, on_lost: Callable[[], None]) -> threading.Thread:
        """Renew in the background; call ``on_lost`` once the Lease could not be renewed in time."""
        def renew() -> None:
            while not stop.wait(self.timing.renew_seconds):
                if self.try_acquire_or_renew():
                    continue
                if time.monotonic() - self._last_renewal >= self.timing.renew_deadline:
                    self.leading.clear()
                    log.error("%s lost Lease %s/%s", self.identity, self.namespace, self.name)
                    on_lost()
                    return

        thread = threading.Thread(target=renew, name="leader-renew", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        """Give the Lease up (clean shutdown), so a standby need not wait for it to expire."""
        if not self.leading.is_set():
            return
        self.leading.clear()
        try:
            lease = self.coordination.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            self.coordination.replace_namespaced_lease(self.name, self.namespace, lease)
            log.info("%s released Lease %s/%s", self.identity, self.namespace, self.name)
        except ApiException as error:
            log.warning("could not release Lease %s/%s: %s", self.namespace, self.name, error.reason)
