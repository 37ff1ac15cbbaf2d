"""Once published, agent@version never comes back with other bits: deletion, replacement and re-publication
attacked through the real API server, as a tenant admin and as a cluster admin."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from e2e import registry as reg
from e2e import wait
from e2e.governed import artifact_of, version_object
from gl_api import naming

RECORDS = "greenlang-system"
FORCE = "registry.greenlang.ai/force-delete"


@pytest.fixture
def team(cluster, namespace, operator):
    """The CBAM Agent, alice the namespace's tenant admin (she may delete agentversions), bob an approver."""
    reg.grant_users(cluster, namespace)
    admin = reg.binding("alice-tenant-admin", "alice", "greenlang-registry:tenant_admin", namespace)
    assert reg.apply(cluster, namespace, admin).returncode == 0
    reg.publish_agent(cluster, namespace)
    return namespace


def publish(cluster, api, namespace, version, **spec_changes) -> str:
    result = reg.apply(cluster, namespace, version_object(version, **spec_changes))
    assert result.returncode == 0, result.stderr
    name = naming.object_name(reg.AGENT, version)
    reg.wait_state(api, namespace, name, "draft")
    return name


def to_experimental(cluster, api, namespace, version) -> str:
    name = publish(cluster, api, namespace, version)
    reg.report_results(api, namespace, name, **reg.GOOD_RESULTS)
    reg.promote(cluster, namespace, f"exp-{version}", version, "experimental")
    reg.wait_phase(api, namespace, f"exp-{version}", "Succeeded")
    return name


def rebuilt(version: str) -> dict:
    """The same agent@version with other bits: another artifact."""
    obj = version_object(version)
    digest = artifact_of(f"{version} rebuilt")
    obj["spec"]["artifact"] = {"uri": f"s3://greenlang-agents/sha256/{digest.removeprefix('sha256:')}",
                               "digest": digest}
    return obj


def create(cluster, namespace, obj, as_user=None):
    return cluster.kubectl("create", "-n", namespace, "-f", "-", *([f"--as={as_user}"] if as_user else []),
                           input=json.dumps(obj), check=False)


def test_a_published_version_is_retired_not_deleted_and_never_replaced(cluster, api, team, tmp_path):
    name = to_experimental(cluster, api, team, "2.3.1")
    original = reg.get(api, team, "agentversions", name)

    by_tenant_admin = cluster.kubectl("delete", "agentversion", name, "-n", team, "--as=alice", check=False)
    assert by_tenant_admin.returncode != 0
    assert f"AgentVersion {reg.AGENT}@2.3.1 is experimental: a published version is never deleted" in \
        by_tenant_admin.stderr
    assert "retire it with a Promotion" in by_tenant_admin.stderr
    by_cluster_admin = cluster.kubectl("delete", "agentversion", name, "-n", team, check=False)
    assert by_cluster_admin.returncode != 0 and f"kubectl annotate agentversion {name}" in by_cluster_admin.stderr

    # `kubectl replace --force` deletes, then creates: the delete is refused, so nothing is lost.
    changed = rebuilt("2.3.1")
    (tmp_path / "changed.json").write_text(json.dumps(changed))
    replaced = cluster.kubectl("replace", "--force", "-n", team, "-f", str(tmp_path / "changed.json"), check=False)
    assert replaced.returncode != 0 and "a published version is never deleted" in replaced.stderr
    kept = reg.get(api, team, "agentversions", name)
    assert kept["metadata"]["uid"] == original["metadata"]["uid"]
    assert kept["spec"] == original["spec"] and kept["status"]["state"] == "experimental"

    # Forcing is a cluster admin's act, in two steps; a tenant admin can take neither.
    annotate = ["annotate", "agentversion", name, "-n", team, f"{FORCE}=true"]
    refused = cluster.kubectl(*annotate, "--as=alice", check=False)
    assert refused.returncode != 0 and "can be set or changed only by a cluster admin" in refused.stderr
    assert cluster.kubectl(*annotate, check=False).returncode == 0
    still = cluster.kubectl("delete", "agentversion", name, "-n", team, "--as=alice", check=False)
    assert still.returncode != 0 and "only a cluster admin may force the deletion" in still.stderr
    forced = cluster.kubectl("delete", "agentversion", name, "-n", team, check=False)
    assert forced.returncode == 0, forced.stderr

    # The number stays bound to its bits, for everyone, for good.
    for user in ("alice", None):
        again = create(cluster, team, changed, as_user=user)
        assert again.returncode != 0
        assert f"{reg.AGENT}@2.3.1 was published before with other bits (artifact={artifact_of('2.3.1')}" in \
            again.stderr
    assert create(cluster, team, version_object("2.3.1")).returncode == 0  # the same bits may come back
    reg.wait_state(api, team, name, "draft")


def test_a_deleted_draft_keeps_its_number_bound_to_its_bits(cluster, api, team):
    name = publish(cluster, api, team, "1.0.0")
    deleted = cluster.kubectl("delete", "agentversion", name, "-n", team, "--as=alice", check=False)
    assert deleted.returncode == 0, deleted.stderr  # drafts may be cleaned up
    wait.until(lambda: not reg.exists(lambda: reg.get(api, team, "agentversions", name)), what=f"{name} to go")
    again = create(cluster, team, rebuilt("1.0.0"), as_user="alice")
    assert again.returncode != 0 and "was published before with other bits" in again.stderr


def test_the_record_is_out_of_tenants_reach_append_only_and_outlives_the_namespace(cluster, api, team):
    name = to_experimental(cluster, api, team, "2.0.0")
    record = f"agentversion-digests.{team}.{reg.AGENT}"
    core = client.CoreV1Api(api)
    data = core.read_namespaced_config_map(record, RECORDS).data
    assert data == {name: f"artifact={artifact_of('2.0.0')} image={version_object('2.0.0')['spec']['image']}"}

    assert "forbidden" in cluster.kubectl("get", "configmap", record, "-n", RECORDS, "--as=alice", check=False).stderr
    for attempt in (["patch", "configmap", record, "-n", RECORDS, "--type=json", "-p",
                     json.dumps([{"op": "remove", "path": f"/data/{name}"}])],
                    ["patch", "configmap", record, "-n", RECORDS, "--type=merge", "-p",
                     json.dumps({"data": {name: "artifact=sha256:0 image="}})],
                    ["label", "configmap", record, "-n", RECORDS, "app.kubernetes.io/component-"],
                    ["delete", "configmap", record, "-n", RECORDS]):
        refused = cluster.kubectl(*attempt, check=False)  # even as cluster admin
        assert refused.returncode != 0 and "append-only" in refused.stderr, attempt
    assert core.read_namespaced_config_map(record, RECORDS).data == data

    # Deleting the namespace (a cluster admin's act, let through with its published versions) and making
    # it again erases nothing.
    core.delete_namespace(team)
    wait.until(lambda: not reg.exists(lambda: core.read_namespace(team)), timeout=90, what=f"namespace {team} to go")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=team, labels={"e2e": "true"})))
    reg.publish_agent(cluster, team)
    again = create(cluster, team, rebuilt("2.0.0"))
    assert again.returncode != 0 and "was published before with other bits" in again.stderr


def test_a_record_of_the_whole_namespace_written_before_still_counts(cluster, api, team):
    """Records were one per namespace before they were one per agent: an entry there still binds its
    number to its bits."""
    name = naming.object_name(reg.AGENT, "3.0.0")
    older = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": f"agentversion-digests.{team}", "namespace": RECORDS,
                          "labels": {"app.kubernetes.io/component": "agentversion-digests"}},
             "data": {name: f"artifact={artifact_of('3.0.0')} image={version_object('3.0.0')['spec']['image']}"}}
    assert cluster.kubectl("create", "-f", "-", input=json.dumps(older)).returncode == 0
    refused = create(cluster, team, rebuilt("3.0.0"))
    assert refused.returncode != 0 and "was published before with other bits" in refused.stderr
    assert create(cluster, team, version_object("3.0.0")).returncode == 0  # the bits on record may come back
