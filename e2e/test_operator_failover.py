"""Two operator replicas: one leads on the Lease and reconciles, the other waits; killing the leader
hands the work to the standby within 15 seconds, and a clean stop hands it over at once."""

from __future__ import annotations

import signal
import time

import pytest
from kubernetes import client

from e2e import registry as reg
from e2e.operator_process import OperatorProcess

LEASE = ("greenlang-registry-operator", "greenlang-system")


def _holder(api) -> str | None:
    return client.CoordinationV1Api(api).read_namespaced_lease(*LEASE).spec.holder_identity


@pytest.fixture
def replicas(cluster, operator_process, tmp_path):
    """Replicas a and b in place of the session's operator (the `operator` fixture restarts it later)."""
    operator_process.stop()
    pair = [OperatorProcess(operator_process.kubeconfig, tmp_path, identity=name) for name in ("replica-a", "replica-b")]
    pair[0].start()
    pair[1].start(wait=False)
    pair[1].wait_role("standby")
    yield pair
    for replica in pair:
        replica.stop()  # SIGTERM: the survivor releases the Lease for the session's operator


def _published(cluster, api, namespace: str, version: str) -> str:
    name = reg.publish_version(cluster, namespace, version)
    reg.wait_state(api, namespace, name, "draft")
    return name


def test_one_replica_leads_and_the_standby_takes_over_within_15_seconds(cluster, api, namespace, replicas):
    leader, standby = replicas
    reg.publish_agent(cluster, namespace)
    name = _published(cluster, api, namespace, "1.0.0")
    time.sleep(3)  # several renewals: the standby stays standby while the leader lives
    assert (leader.role(), standby.role(), _holder(api)) == ("leader", "standby", "replica-a")
    published = [e for e in reg.events(api, namespace, name) if e[1] == "Published"]
    assert len(published) == 1, f"only the leader reconciles, once: {published}"

    leader.stop(signal.SIGKILL)  # no chance to release the Lease
    killed = time.monotonic()
    standby.wait_role("leader", timeout=20)
    took = time.monotonic() - killed
    assert took < 15, f"the standby took over {took:.1f}s after the leader died"
    assert _holder(api) == "replica-b"
    _published(cluster, api, namespace, "1.1.0")  # and it reconciles


def test_a_leader_stopping_cleanly_hands_over_at_once(cluster, api, namespace, replicas):
    leader, standby = replicas
    leader.stop(signal.SIGTERM)  # releases the Lease on the way out
    stopped = time.monotonic()
    standby.wait_role("leader", timeout=10)
    assert time.monotonic() - stopped < 5
    reg.publish_agent(cluster, namespace)
    _published(cluster, api, namespace, "1.0.0")
