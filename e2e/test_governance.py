"""Governance at `kubectl apply` time: real webhooks in the operator process asking a real policy engine.

The whole module runs twice, once with the embedded regopy interpreter and once with an OPA
server, on its own control plane; every assertion must hold for both, so both decide alike.
"""

from __future__ import annotations

import json

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from e2e import governed as setup
from e2e import registry as reg
from e2e import wait
from e2e import REPO
from e2e.governed import (PROD, RUNTIME_IMAGE, STAGING, TEAM, TENANT, artifact_of, deployment_object, image_of,
                          promotion_object, version_object)
from gl_api import GROUP, VERSION, labels, naming


@pytest.fixture(scope="module", params=["regopy", "opa"])
def governed(request, tmp_path_factory):
    with setup.running(tmp_path_factory.mktemp(f"governed-{request.param}"), request.param) as env:
        yield env


EXPERIMENTAL_IN_PRODUCTION = (
    "agent gl-cbam-calculator-v2@2.4.0 is experimental; tenant customer-abc-123 allows only certified versions "
    "in production (TenantPolicy customer-abc-123, environments[production].allowedStates)")


def test_experimental_version_refused_in_production(governed):
    result = governed.apply(deployment_object("cbam", "2.4.0"), PROD)
    assert result.returncode != 0
    assert 'admission webhook "deployment.registry.greenlang.ai" denied the request' in result.stderr
    assert EXPERIMENTAL_IN_PRODUCTION in result.stderr
    # The Python client gets the same answer.
    with pytest.raises(ApiException) as denied:
        client.CustomObjectsApi(governed.api).create_namespaced_custom_object(
            GROUP, VERSION, PROD, "agentdeployments", deployment_object("cbam", "2.4.0"))
    assert denied.value.status == 403 and EXPERIMENTAL_IN_PRODUCTION in denied.value.body


def test_certified_version_runs_in_production(governed):
    result = governed.apply(deployment_object("cbam-certified", "2.3.1"), PROD)
    assert result.returncode == 0, result.stderr
    assert governed.kubectl("delete", "agentdeployment", "cbam-certified", "-n", PROD).returncode == 0


def test_experimental_allowed_in_staging_with_a_warning(governed):
    result = governed.apply(deployment_object("cbam-canary", "2.4.0"), STAGING)
    assert result.returncode == 0, result.stderr
    assert ("Warning: agent gl-cbam-calculator-v2@2.4.0 is experimental: fine for staging, but production admits "
            "only certified versions") in result.stderr
    assert governed.kubectl("delete", "agentdeployment", "cbam-canary", "-n", STAGING).returncode == 0


def test_blocked_agent_refused(governed):
    blocked = reg.example("Agent")
    blocked["metadata"] = {"name": "gl-scraper-experimental"}
    assert governed.apply(blocked, TEAM).returncode == 0
    deployment = deployment_object("scraper", "1.0.0")
    deployment["spec"]["agent"] = f"{TEAM}/gl-scraper-experimental"
    result = governed.apply(deployment, STAGING)
    assert result.returncode != 0
    assert ("agent gl-scraper-experimental (domain sustainability.cbam) is blocked for tenant customer-abc-123 "
            "(TenantPolicy customer-abc-123, spec.agents.deny)") in result.stderr


def test_quota_exceeded_refused(governed):
    too_big = governed.apply(deployment_object("huge", "2.3.1", replicas=10), PROD)
    assert too_big.returncode != 0
    assert "needs up to 2.5 CPU (10 replicas x 0.25)" in too_big.stderr
    assert "TenantPolicy customer-abc-123, spec.quotas.cpu" in too_big.stderr
    for name in ("one", "two"):
        assert governed.apply(deployment_object(name, "2.3.1"), PROD).returncode == 0
    third = governed.apply(deployment_object("three", "2.3.1"), PROD)
    assert third.returncode != 0
    assert ("tenant customer-abc-123 allows at most 2 AgentDeployments per environment and customer-abc-123-prod "
            "already has 2") in third.stderr
    for name in ("one", "two"):
        governed.kubectl("delete", "agentdeployment", name, "-n", PROD)


def test_status_write_by_a_user_refused(governed):
    assert governed.apply(reg.binding("alice-evaluator", "alice", "greenlang-registry:evaluator", TEAM)).returncode == 0
    name = naming.object_name(reg.AGENT, "2.4.0")
    forged = governed.kubectl("patch", "agentversion", name, "-n", TEAM, "--subresource=status", "--type=merge",
                              "-p", '{"status":{"state":"certified"}}', as_user="alice")
    assert forged.returncode != 0
    assert ("status.state of AgentVersion gl-cbam-calculator-v2-2.4.0 can only be changed by the registry operator; "
            "request a change with a Promotion") in forged.stderr
    results = governed.kubectl("patch", "agentversion", name, "-n", TEAM, "--subresource=status", "--type=merge",
                               "-p", '{"status":{"evaluation":{"passed":true,"score":0.97}}}', as_user="alice")
    assert results.returncode == 0, results.stderr
    assert "replaces an earlier result" in results.stderr  # allowed, with a warning
    assert reg.status(governed.api, TEAM, "agentversions", name)["state"] == "experimental"


def test_forged_approval_refused_and_identity_stamped_by_the_server(governed):
    request = promotion_object("cert-2.4.0", "2.4.0", "certified", reason="ready")
    request["metadata"]["annotations"] = {labels.CREATED_BY: "bob"}  # a lie the server must not keep
    # The create's own answer: the operator annotates the Promotion a moment later (and becomes its
    # last modifier), so a read afterwards could see its write instead of alice's.
    created = governed.kubectl("apply", "-n", TEAM, "-f", "-", "-o", "json", input=json.dumps(request),
                               as_user="alice")
    assert created.returncode == 0, created.stderr
    promotion = json.loads(created.stdout)
    assert promotion["metadata"]["annotations"][labels.CREATED_BY] == "alice"
    assert promotion["metadata"]["annotations"]["registry.greenlang.ai/last-modified-by"] == "alice"
    assert reg.get(governed.api, TEAM, "promotions", "cert-2.4.0")["metadata"]["annotations"][labels.CREATED_BY] \
        == "alice"

    forged = governed.kubectl("patch", "promotion", "cert-2.4.0", "-n", TEAM, "--type=json", "-p",
                              '[{"op":"add","path":"/spec/approvals","value":[{"user":"bob"}]}]', as_user="carol")
    assert forged.returncode != 0
    assert "your own name" in forged.stderr
    assert not reg.get(governed.api, TEAM, "promotions", "cert-2.4.0")["spec"].get("approvals")

    # A genuine approval is stamped with the server's time and the approver's groups (dry run: 2.4.0
    # stays experimental for the other tests).
    stamped = governed.kubectl("patch", "promotion", "cert-2.4.0", "-n", TEAM, "--type=json", "--dry-run=server",
                               "-o", "json", "-p", '[{"op":"add","path":"/spec/approvals","value":[{"user":"bob"}]}]',
                               as_user="bob")
    assert stamped.returncode == 0, stamped.stderr
    approval = json.loads(stamped.stdout)["spec"]["approvals"][0]
    assert approval["user"] == "bob" and approval["at"] and "system:authenticated" in approval["groups"]
    assert governed.kubectl("delete", "promotion", "cert-2.4.0", "-n", TEAM).returncode == 0


def test_publish_without_image_accepted_without_artifact_digest_refused(governed):
    bare = version_object("9.9.9")
    del bare["spec"]["image"]  # the registry's runtime image serves its artifact
    result = governed.apply(bare, TEAM)
    assert result.returncode == 0, result.stderr
    assert governed.kubectl("delete", "agentversion", naming.object_name(reg.AGENT, "9.9.9"), "-n", TEAM).returncode == 0
    unpinned = version_object("9.9.8")
    del unpinned["spec"]["artifact"]["digest"]
    refused = governed.apply(unpinned, TEAM)
    assert refused.returncode != 0 and "digest" in refused.stderr


def _pod(name: str, image: str, env: list[dict] | None = None, **container) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "agent", "image": image, **({"env": env} if env else {}), **container}]}}


def _artifact_env(digest: str) -> list[dict]:
    """The environment the operator gives a runtime container (pod_template), naming one artifact."""
    return [{"name": "GL_ARTIFACT_URI", "value": f"s3://greenlang-agents/sha256/{digest.removeprefix('sha256:')}"},
            {"name": "GL_ARTIFACT_DIGEST", "value": digest}]


def test_runtime_image_runs_only_registered_allowed_artifacts(governed):
    """The registry's runtime image runs whatever GL_ARTIFACT_DIGEST names: it is judged by that artifact."""
    certified = governed.apply(_pod("runtime-certified", RUNTIME_IMAGE, _artifact_env(artifact_of("2.3.1"))), PROD)
    assert certified.returncode == 0, certified.stderr

    unknown_artifact = f"sha256:{'ef' * 32}"
    unregistered = governed.apply(_pod("runtime-unregistered", RUNTIME_IMAGE, _artifact_env(unknown_artifact)), PROD)
    assert unregistered.returncode != 0
    assert 'admission webhook "images-pods.registry.greenlang.ai" denied the request' in unregistered.stderr
    assert (f"Pod runtime-unregistered: image {RUNTIME_IMAGE} runs artifact {unknown_artifact}, which belongs to no "
            f"AgentVersion; publish the artifact to the registry and run it with an AgentDeployment "
            f"(rule images.registered)") in unregistered.stderr

    experimental = governed.apply(_pod("runtime-early", RUNTIME_IMAGE, _artifact_env(artifact_of("2.4.0"))), PROD)
    assert experimental.returncode != 0
    assert (f"runs artifact {artifact_of('2.4.0')} of gl-cbam-calculator-v2@2.4.0 (experimental), which is not "
            f"certified") in experimental.stderr and "rule images.allowed_state" in experimental.stderr

    bare = governed.apply(_pod("runtime-bare", RUNTIME_IMAGE), PROD)
    assert bare.returncode != 0
    assert "set env GL_ARTIFACT_DIGEST" in bare.stderr and "rule images.runtime_artifact" in bare.stderr
    # A digest from a Secret cannot be checked at admission: refused like none at all.
    hidden = governed.apply(_pod("runtime-hidden", RUNTIME_IMAGE, [
        {"name": "GL_ARTIFACT_DIGEST", "valueFrom": {"secretKeyRef": {"name": "artifact", "key": "digest"}}}]), PROD)
    assert hidden.returncode != 0 and "rule images.runtime_artifact" in hidden.stderr

    by_tag = governed.apply(_pod("runtime-tag", "localhost/greenlang/agent-runtime:latest",
                                 _artifact_env(artifact_of("2.3.1"))), PROD)
    assert by_tag.returncode != 0
    assert "image localhost/greenlang/agent-runtime:latest is not pinned by digest" in by_tag.stderr
    assert "rule images.pinned" in by_tag.stderr

    # A certified artifact's digest does not make the runtime image a general-purpose interpreter.
    hijacked = governed.apply(_pod("runtime-hijacked", RUNTIME_IMAGE, _artifact_env(artifact_of("2.3.1")),
                                   command=["/usr/bin/python3.11", "-c", "print('anything')"]), PROD)
    assert hijacked.returncode != 0 and "rule images.runtime_entrypoint" in hijacked.stderr
    # Nor can a preloaded library or code mounted over the runtime's own make it run something else.
    preloaded = _pod("runtime-preloaded", RUNTIME_IMAGE,
                     [*_artifact_env(artifact_of("2.3.1")), {"name": "LD_PRELOAD", "value": "/tmp/x.so"}])
    mounted = _pod("runtime-mounted", RUNTIME_IMAGE, _artifact_env(artifact_of("2.3.1")))
    mounted["spec"]["containers"][0]["volumeMounts"] = [{"name": "code", "mountPath": "/tmp"}]
    mounted["spec"]["volumes"] = [{"name": "code", "configMap": {"name": "not-the-runtime"}}]
    for pod, what in ((preloaded, "env LD_PRELOAD"), (mounted, "volumeMounts /tmp")):
        refused = governed.apply(pod, PROD)
        assert refused.returncode != 0 and f"changes what it runs ({what})" in refused.stderr, refused.stderr

    # Deployments are judged alike (the operator's own Deployments for image-less versions look like this).
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "runtime-direct"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "runtime-direct"}},
                           "template": {"metadata": {"labels": {"app": "runtime-direct"}},
                                        "spec": _pod("x", RUNTIME_IMAGE, _artifact_env(artifact_of("2.4.0")))["spec"]}}}
    refused = governed.apply(deployment, PROD)
    assert refused.returncode != 0
    assert 'admission webhook "images-deployments.registry.greenlang.ai" denied the request' in refused.stderr
    assert "rule images.allowed_state" in refused.stderr
    deployment["spec"]["template"]["spec"] = _pod("x", RUNTIME_IMAGE, _artifact_env(artifact_of("2.3.1")))["spec"]
    allowed = governed.apply(deployment, PROD)
    assert allowed.returncode == 0, allowed.stderr
    for kind, name in (("pod", "runtime-certified"), ("deployment", "runtime-direct")):
        governed.kubectl("delete", kind, name, "-n", PROD, "--wait=false")


def test_image_digest_bypass_refused(governed):
    unknown = governed.apply(_pod("sneaky", f"registry.example.com/other@sha256:{'ab' * 32}"), PROD)
    assert unknown.returncode != 0
    assert "belongs to no AgentVersion; publish it to the registry" in unknown.stderr
    experimental = governed.apply(_pod("early", image_of("2.4.0")), PROD)
    assert experimental.returncode != 0
    assert "belongs to gl-cbam-calculator-v2@2.4.0 (experimental), which is not certified" in experimental.stderr
    unpinned = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "direct"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "direct"}},
                         "template": {"metadata": {"labels": {"app": "direct"}},
                                      "spec": {"containers": [{"name": "a", "image": "nginx:latest"}]}}}}
    refused = governed.apply(unpinned, PROD)
    assert refused.returncode != 0 and "is not pinned by digest" in refused.stderr
    allowed = governed.apply(_pod("certified", image_of("2.3.1")), PROD)
    assert allowed.returncode == 0, allowed.stderr
    # Outside production the guard does not apply.
    assert governed.apply(_pod("anything", "nginx:latest"), STAGING).returncode == 0


def _gl(governed, *args: str):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", "from gl_cli.main import main; main()", *args],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "250",
                                                               "KUBECONFIG": str(governed.cluster.kubeconfig)})


def test_gl_agent_check_asks_the_same_policies_and_creates_nothing(governed):
    denied = _gl(governed, "agent", "check", f"{reg.AGENT}@2.4.0", "-n", TEAM, "--tenant", TENANT,
                 "--environment", "production")
    assert denied.returncode == 1, denied.stderr
    assert "✗ deny" in denied.stdout and EXPERIMENTAL_IN_PRODUCTION in denied.stdout
    warned = _gl(governed, "agent", "check", f"{reg.AGENT}@2.4.0", "-n", TEAM, "-t", TENANT, "-e", "staging")
    assert warned.returncode == 0
    assert "! warn" in warned.stdout and "is experimental: fine for staging" in warned.stdout
    allowed = _gl(governed, "agent", "check", f"{reg.AGENT}@2.3.1", "-n", TEAM, "-t", TENANT, "-e", "production")
    assert allowed.returncode == 0 and "✓ allow" in allowed.stdout
    listed = governed.kubectl("get", "agentdeployments", "-A", "-o", "name")
    assert "gl-check" not in listed.stdout
    unknown = _gl(governed, "agent", "check", f"{reg.AGENT}@2.3.1", "-t", TENANT, "-e", "qa")
    assert unknown.returncode == 2
    assert "tenant customer-abc-123 has no environment 'qa'; it has: dev, staging, production" in unknown.stderr


def test_removing_a_member_removes_access_and_deletion_waits_for_deployments(governed):
    tenant = yaml.safe_load((REPO / "examples" / "tenant-policy.yaml").read_text())
    tenant["metadata"]["name"] = "short-lived"
    tenant["spec"] = {"environments": [{"name": "dev", "namespace": "short-lived-dev"}],
                      "members": [{"kind": "User", "name": "dora", "role": "developer"},
                                  {"kind": "User", "name": "eve", "role": "viewer"}]}
    assert governed.apply(tenant).returncode == 0

    def can_list(user: str) -> bool:
        return governed.kubectl("auth", "can-i", "list", "agentdeployments.registry.greenlang.ai", "-n",
                                "short-lived-dev", as_user=user).stdout.strip() == "yes"

    wait.until(lambda: can_list("eve"), timeout=30, what="eve's access")
    tenant["spec"]["members"] = tenant["spec"]["members"][:1]
    assert governed.apply(tenant).returncode == 0
    wait.until(lambda: not can_list("eve"), timeout=30, what="eve's access to be removed")
    assert can_list("dora")

    deployment = deployment_object("keeps-it", "2.3.1")
    assert governed.apply(deployment, "short-lived-dev").returncode == 0
    assert governed.kubectl("delete", "tenantpolicy", "short-lived", "--wait=false").returncode == 0
    blocked = wait.until(lambda: "DeletionBlocked" in (r := governed.kubectl(
        "get", "tenantpolicy", "short-lived", "-o", "jsonpath={.status.conditions[0].reason}: "
        "{.status.conditions[0].message}")).stdout and r.stdout, timeout=30, what="the deletion to be blocked")
    assert "still has 1 AgentDeployments in its namespaces (short-lived-dev/keeps-it)" in blocked
    assert governed.kubectl("delete", "agentdeployment", "keeps-it", "-n", "short-lived-dev").returncode == 0
    wait.until(lambda: governed.kubectl("get", "tenantpolicy", "short-lived").returncode != 0, timeout=30,
               what="the TenantPolicy to go once its deployments are gone")


PLATFORM_ADMIN = "pat@platform.example.com"


def _tenant_claiming(name: str, *namespaces: str) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TenantPolicy", "metadata": {"name": name},
            "spec": {"environments": [{"name": env, "namespace": ns} for env, ns in zip(("dev", "staging"), namespaces)],
                     "members": [{"kind": "User", "name": "mallory", "role": "tenant_admin"}]}}


def test_a_tenant_policy_cannot_claim_system_foreign_or_existing_namespaces(governed):
    assert governed.apply(reg.binding("e2e-platform-admin", PLATFORM_ADMIN,
                                      "greenlang-registry:platform-admin")).returncode == 0
    refusals = {
        "kube-system": "claims namespace kube-system, which belongs to the cluster or the registry "
                       "(default, greenlang-system, kube-*)",
        "greenlang-system": "claims namespace greenlang-system, which belongs to the cluster or the registry",
        "default": "claims namespace default, which belongs to the cluster or the registry",
        PROD: f"claims namespace {PROD}, which TenantPolicy {TENANT} already claims",
        TEAM: f"claims namespace {TEAM}, which already exists and was not created for this tenant",
    }
    for namespace, reason in refusals.items():
        result = governed.apply(_tenant_claiming("grabby", namespace), as_user=PLATFORM_ADMIN)
        assert result.returncode != 0 and reason in result.stderr, (namespace, result.stderr)
        assert "rule tenancy." in result.stderr
    assert governed.kubectl("get", "tenantpolicy", "grabby").returncode != 0
    # A namespace gained later by update is judged too.
    assert governed.apply(_tenant_claiming("grabby", "grabby-dev"), as_user=PLATFORM_ADMIN).returncode == 0
    result = governed.apply(_tenant_claiming("grabby", "grabby-dev", STAGING), as_user=PLATFORM_ADMIN)
    assert result.returncode != 0 and f"which TenantPolicy {TENANT} already claims" in result.stderr
    rbac = client.RbacAuthorizationV1Api(governed.api)
    for namespace in ("kube-system", PROD, STAGING, TEAM):
        assert not rbac.list_namespaced_role_binding(namespace, label_selector=f"{labels.TENANT}=grabby").items

    # A cluster admin marks an existing namespace adoptable: the claim passes, with a warning.
    assert governed.kubectl("create", "namespace", "legacy-payments").returncode == 0
    assert governed.kubectl("annotate", "namespace", "legacy-payments", f"{labels.ADOPTABLE}=true").returncode == 0
    adopted = governed.apply(_tenant_claiming("payments", "legacy-payments"), as_user=PLATFORM_ADMIN)
    assert adopted.returncode == 0, adopted.stderr
    assert "adopts the existing namespace legacy-payments" in adopted.stderr
    wait.until(lambda: rbac.list_namespaced_role_binding("legacy-payments", label_selector=f"{labels.TENANT}=payments")
               .items, timeout=30, what="the adopted namespace provisioned")
    for name in ("grabby", "payments"):
        assert governed.kubectl("delete", "tenantpolicy", name).returncode == 0


def test_only_platform_admins_write_tenant_policies(governed):
    # Members of a tenant, even its admins, cannot create a tenant or add themselves to one.
    for user in ("alice@abc.example.com", "mallory"):
        created = governed.kubectl("apply", "-f", "-", input=json.dumps(_tenant_claiming("self-made", "self-made-dev")),
                                   as_user=user)
        assert created.returncode != 0 and "forbidden" in created.stderr.lower(), created.stderr
    patch = json.dumps([{"op": "add", "path": "/spec/members/-",
                         "value": {"kind": "User", "name": "alice@abc.example.com", "role": "super_admin"}}])
    escalated = governed.kubectl("patch", "tenantpolicy", TENANT, "--type=json", "-p", patch,
                                 as_user="alice@abc.example.com")
    assert escalated.returncode != 0 and "forbidden" in escalated.stderr.lower(), escalated.stderr
    tenant_admin = governed.cluster.kubectl("patch", "tenantpolicy", TENANT, "--type=json", "-p", patch,
                                            "--as=someone", "--as-group=abc-platform-admins", check=False)
    assert tenant_admin.returncode != 0 and "forbidden" in tenant_admin.stderr.lower(), tenant_admin.stderr
    members = json.loads(governed.kubectl("get", "tenantpolicy", TENANT, "-o", "json").stdout)["spec"]["members"]
    assert not any(m["role"] == "super_admin" for m in members)


def _beta_tenant(**spec) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TenantPolicy", "metadata": {"name": "beta"},
            "spec": {"environments": [{"name": "dev", "namespace": "beta-dev"}],
                     "members": [{"kind": "User", "name": "olga", "role": "tenant_admin"}], **spec}}


def test_rights_come_from_the_tenant_owning_the_namespace_not_the_users_other_tenants(governed):
    # olga is tenant_admin of beta, and may create Promotions in the team namespace, which no tenant owns.
    assert governed.apply(_beta_tenant(teamNamespaces=["beta-team"])).returncode == 0
    assert governed.apply(reg.binding("olga-promoter", "olga", "promoter", TEAM, "Role")).returncode == 0
    fast = promotion_object("olga-fast", "2.4.0", "certified", reason="hotfix",
                            fastTrack={"justification": "CVE-2026-1", "incident": "INC-9"})
    refused = governed.apply(fast, TEAM, as_user="olga")
    assert refused.returncode != 0 and "olga may not fast-track" in refused.stderr, refused.stderr

    # beta's agent, tenant-visible, in beta's team namespace: customer-abc-123 may not run it; once public, it may.
    wait.until(lambda: governed.kubectl("get", "namespace", "beta-team").returncode == 0, timeout=30,
               what="beta's team namespace")
    ledger = reg.example("Agent")
    ledger["metadata"] = {"name": "ledger"}
    ledger["spec"]["visibility"] = "tenant"
    assert governed.apply(ledger, "beta-team").returncode == 0
    deployment = deployment_object("ledger", "1.0.0")
    deployment["spec"]["agent"] = "beta-team/ledger"
    denied = governed.apply(deployment, STAGING)
    assert denied.returncode != 0
    assert ("agent ledger is tenant to tenant beta, which owns namespace beta-team; tenant customer-abc-123 may not "
            "run it (Agent spec.visibility, rule deployment.visibility)") in denied.stderr, denied.stderr
    ledger["spec"]["visibility"] = "public"
    assert governed.apply(ledger, "beta-team").returncode == 0
    wait.until(lambda: "rule deployment.visibility" not in governed.apply(deployment, STAGING, ).stderr, timeout=15,
               what="the public agent to pass the visibility rule")  # the cache sees the change a moment later

    # A team namespace is claimed like an environment: an existing one only when adoptable.
    grabbed = governed.apply(_beta_tenant(teamNamespaces=["beta-team", TEAM]))
    assert grabbed.returncode != 0
    assert f"TenantPolicy beta: spec.teamNamespaces claims namespace {TEAM}, which already exists" in grabbed.stderr
    assert governed.kubectl("delete", "tenantpolicy", "beta").returncode == 0
