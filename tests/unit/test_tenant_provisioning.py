from pathlib import Path

import yaml

from gl_operator import tenant_provisioning

EXAMPLE = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "tenant-policy.yaml").read_text())
# The environments alone; team namespaces have tests of their own.
TENANT = {**EXAMPLE, "metadata": {"name": "customer-abc-123", "uid": "u-1"},
          "spec": {k: v for k, v in EXAMPLE["spec"].items() if k != "teamNamespaces"}}


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def test_one_namespace_per_environment_labelled_with_tenant_and_environment():
    namespaces = by_kind(tenant_provisioning.desired_objects(TENANT), "Namespace")
    assert [n["metadata"]["name"] for n in namespaces] == [
        "customer-abc-123-dev", "customer-abc-123-staging", "customer-abc-123-prod"]
    prod = namespaces[2]["metadata"]["labels"]
    assert prod["registry.greenlang.ai/tenant"] == "customer-abc-123"
    assert prod["registry.greenlang.ai/environment"] == "production"
    assert "ownerReferences" not in namespaces[2]["metadata"]  # deleting the policy never deletes workloads


def test_quota_covers_compute_and_storage():
    quota = by_kind(tenant_provisioning.desired_objects(TENANT), "ResourceQuota")[0]
    assert quota["spec"]["hard"] == {"requests.cpu": "8", "requests.memory": "16Gi", "requests.storage": "100Gi"}


def test_members_map_to_role_bindings_in_every_environment():
    bindings = by_kind(tenant_provisioning.desired_objects(TENANT), "RoleBinding")
    assert len(bindings) == 3 * 3
    alice = [b for b in bindings if b["subjects"][0]["name"] == "alice@abc.example.com"]
    assert {b["roleRef"]["name"] for b in alice} == {"greenlang-registry:developer"}
    assert {b["metadata"]["namespace"] for b in alice} == {"customer-abc-123-dev", "customer-abc-123-staging",
                                                           "customer-abc-123-prod"}
    assert alice[0]["metadata"]["name"].startswith("greenlang-developer-user-")


def test_network_policy_denies_by_default():
    policy = by_kind(tenant_provisioning.desired_objects(TENANT), "NetworkPolicy")[0]
    assert policy["spec"]["podSelector"] == {} and policy["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_team_namespaces_get_the_members_roles_but_no_workload_limits():
    tenant = {**TENANT, "spec": {**TENANT["spec"], "teamNamespaces": ["abc-climate-team"]}}
    objects = [o for o in tenant_provisioning.desired_objects(tenant)
               if o["metadata"].get("namespace", o["metadata"]["name"]) == "abc-climate-team"]
    assert {o["kind"] for o in objects} == {"Namespace", "RoleBinding"}
    (namespace,) = by_kind(objects, "Namespace")
    assert namespace["metadata"]["labels"]["registry.greenlang.ai/tenant"] == "customer-abc-123"
    assert "registry.greenlang.ai/environment" not in namespace["metadata"]["labels"]
    assert len(by_kind(objects, "RoleBinding")) == len(TENANT["spec"]["members"])
