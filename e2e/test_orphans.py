"""Registry objects left in a namespace that no longer exists (an interrupted namespace deletion)."""

from __future__ import annotations

import os
import signal
import time

from kubernetes import client

from e2e import registry as reg
from e2e import wait
from e2e.operator_process import TEST_CONFIG
from gl_api import GROUP, VERSION


def orphan(cluster, api, namespace: str) -> None:
    """Delete the namespace and leave its objects behind, as a namespace deletion does when the
    controller's discovery misses a CRD (for instance just after an API server restart): the
    namespace controller is paused while the namespace is finalized by hand."""
    core = client.CoreV1Api(api)
    controller_manager = cluster.processes.pid("kube-controller-manager")
    os.kill(controller_manager, signal.SIGSTOP)
    try:
        core.delete_namespace(namespace)
        ns = core.read_namespace(namespace)
        ns.spec.finalizers = []
        core.replace_namespace_finalize(namespace, ns)
        wait.until(lambda: not reg.exists(lambda: core.read_namespace(namespace)), timeout=10,
                   what="the namespace to be gone")
    finally:
        os.kill(controller_manager, signal.SIGCONT)


def test_objects_left_in_a_deleted_namespace_are_reported_once_and_can_be_deleted(cluster, api, namespace,
                                                                                 operator_process):
    """Versions no one accepted yet, left behind: the operator cannot write to them. It must say so
    once, with the fix, instead of a traceback every resync pass and a kopf retry every minute."""
    operator_process.stop()
    reg.publish_agent(cluster, namespace)
    names = [reg.publish_version(cluster, namespace, f"9.0.{n}") for n in range(3)]
    orphan(cluster, api, namespace)
    operator_process.start()
    log = operator_process.log

    def reported() -> list[str]:
        return [line for line in log.read_text().splitlines() if f"in namespace {namespace}, which no longer" in line]
    wait.until(lambda: len(reported()) == 4, timeout=30, what="one report for the Agent and each version")
    time.sleep(3 * TEST_CONFIG["resyncSeconds"] + 1)  # three more resync passes meet them again
    assert len(reported()) == 4
    assert f"`kubectl create namespace {namespace} && kubectl delete namespace {namespace}`" in reported()[0]
    failures = [line for line in log.read_text().splitlines()
                if namespace in line and ("ERROR" in line or "will try again" in line)]
    assert failures == []

    # They cannot be deleted while the namespace is missing (the admission policies read it), but the
    # fix the report gives works: the namespace controller finishes the deletion.
    refused = cluster.kubectl("delete", "agentversion", names[0], "-n", namespace, "--wait=false", check=False)
    assert f'namespaces "{namespace}" not found' in refused.stderr
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    wait.until(lambda: not reg.exists(lambda: client.CoreV1Api(api).read_namespace(namespace)), timeout=90,
               what="the namespace to go again")
    assert reg.custom(api).list_namespaced_custom_object(GROUP, VERSION, namespace, "agentversions")["items"] == []

