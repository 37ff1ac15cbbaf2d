"""The registry API as the API server serves it: established, explained, and strict about input."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from e2e import registry as reg
from e2e import wait
from e2e import REPO
from gl_api import GROUP, kinds, labels

EXAMPLE = REPO / "examples" / "cbam-calculator.yaml"


def _example(kind: str) -> dict:
    return next(doc for doc in yaml.safe_load_all(EXAMPLE.read_text()) if doc["kind"] == kind)


def _apply(cluster, namespace: str, obj: dict, as_user: str | None = None):
    impersonate = [f"--as={as_user}", "--as-group=system:masters"] if as_user else []
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", *impersonate, input=json.dumps(obj), check=False)


def test_kubectl_apply_crds_establishes_all_five(cluster):
    result = cluster.kubectl("apply", "-f", str(REPO / "crds"), check=False)
    assert result.returncode == 0, result.stderr
    listed = json.loads(cluster.kubectl("get", "crd", "-l", "app.kubernetes.io/part-of=greenlang-registry",
                                        "-o", "json").stdout)["items"]
    established = {crd["metadata"]["name"] for crd in listed
                   if any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])}
    assert established == {kind.crd_name for kind in kinds.ALL}


def test_kubectl_explain_shows_field_descriptions(cluster):
    artifact = cluster.kubectl("explain", "agentversion.spec.artifact").stdout
    assert "The packaged agent in S3, pinned by digest." in artifact
    assert re.search(r"digest\s+<string> -required-", artifact)
    assert "sha256 of the artifact bytes" in artifact
    tenant = cluster.kubectl("explain", "tenantpolicy.spec.members.role").stdout
    assert "super_admin" in tenant


def test_sample_applies_and_shows_printer_columns(cluster, namespace):
    result = cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE), check=False)
    assert result.returncode == 0, result.stderr
    assert "agent.registry.greenlang.ai/gl-cbam-calculator-v2 created" in result.stdout
    assert "agentversion.registry.greenlang.ai/gl-cbam-calculator-v2-2.3.1 created" in result.stdout

    table = cluster.kubectl("get", "agentversions", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "AGENT", "VERSION", "STATE", "AGE"]
    assert table[1].split()[:3] == ["gl-cbam-calculator-v2-2.3.1", "gl-cbam-calculator-v2", "2.3.1"]
    agents = cluster.kubectl("get", "gla", "-n", namespace).stdout.splitlines()
    assert agents[0].split()[:4] == ["NAME", "DISPLAY", "NAME", "DOMAIN"]
    assert "sustainability.cbam" in agents[1] and "calculator" in agents[1]


def test_kubectl_get_greenlang_lists_every_kind(cluster, namespace):
    for example in ("cbam-calculator.yaml", "promotion.yaml"):
        assert cluster.kubectl("apply", "-n", namespace, "-f", str(REPO / "examples" / example)).returncode == 0
    listed = cluster.kubectl("get", "greenlang", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(listed) == [
        "agent.registry.greenlang.ai/gl-cbam-calculator-v2",
        "agentversion.registry.greenlang.ai/gl-cbam-calculator-v2-2.3.1",
        "promotion.registry.greenlang.ai/gl-cbam-calculator-v2-2.3.1-to-experimental",
    ]


def test_every_example_is_accepted_by_the_api_server(cluster, namespace):
    checked = 0
    for path in sorted((REPO / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not str((doc or {}).get("apiVersion", "")).startswith(f"{GROUP}/"):
                continue  # agent project manifests, Argo CD Applications
            checked += 1
            if kinds.BY_KIND[doc["kind"]].namespaced:
                doc["metadata"]["namespace"] = namespace  # the examples' tenant namespaces need not exist
            result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(doc), check=False)
            assert result.returncode == 0, f"{path.name} {doc['kind']}: {result.stderr}"
    assert checked >= 7  # the top-level examples and examples/manifests/ at least (nothing skipped by mistake)


# ------------------------------------------------------------------ rejections by the API server itself

@pytest.mark.parametrize("version, name", [("2.3", "gl-cbam-calculator-v2-2.3"),
                                           ("2.3.1+build.7", "gl-cbam-calculator-v2-2.3.1-build.7"),
                                           ("02.3.1", "gl-cbam-calculator-v2-02.3.1")])
def test_invalid_semver_is_rejected_naming_the_field(cluster, namespace, version, name):
    obj = _example("AgentVersion")
    obj["metadata"]["name"], obj["spec"]["version"] = name, version
    result = _apply(cluster, namespace, obj)
    assert result.returncode != 0
    assert "spec.version" in result.stderr
    assert "must be a Semantic Versioning 2.0 version such as 2.3.1" in result.stderr


def test_unknown_type_is_rejected_listing_the_allowed_ones(cluster, namespace):
    obj = _example("Agent")
    obj["spec"]["type"] = "chatbot"
    result = _apply(cluster, namespace, obj)
    assert result.returncode != 0
    assert 'spec.type: Unsupported value: "chatbot"' in result.stderr
    assert '"calculator"' in result.stderr and '"assistant"' in result.stderr


def test_unknown_target_state_is_rejected(cluster, namespace):
    promotion = yaml.safe_load((REPO / "examples" / "promotion.yaml").read_text())
    promotion["spec"]["targetState"] = "production-ready"
    result = _apply(cluster, namespace, promotion)
    assert result.returncode != 0
    assert 'spec.targetState: Unsupported value: "production-ready"' in result.stderr
    assert '"experimental"' in result.stderr


def test_unknown_state_in_status_is_rejected(cluster, namespace):
    assert _apply(cluster, namespace, _example("Agent")).returncode == 0
    assert _apply(cluster, namespace, _example("AgentVersion")).returncode == 0
    result = cluster.kubectl("patch", "agentversion", "gl-cbam-calculator-v2-2.3.1", "-n", namespace,
                             "--subresource=status", "--type=merge", "-p", '{"status":{"state":"approved"}}',
                             check=False)
    assert result.returncode != 0
    assert 'status.state: Unsupported value: "approved"' in result.stderr


def test_published_agentversion_spec_cannot_change(cluster, namespace):
    assert _apply(cluster, namespace, _example("Agent")).returncode == 0
    assert _apply(cluster, namespace, _example("AgentVersion")).returncode == 0
    changed = _example("AgentVersion")
    changed["spec"]["releaseNotes"] = "rewritten after publishing"
    result = _apply(cluster, namespace, changed)
    assert result.returncode != 0
    assert "spec of a published AgentVersion is immutable; publish a new version instead" in result.stderr
    # A raw write that no webhook would see is refused just the same.
    patched = cluster.kubectl("patch", "agentversion", "gl-cbam-calculator-v2-2.3.1", "-n", namespace,
                              "--type=json", "-p", '[{"op":"replace","path":"/spec/image",'
                              '"value":"evil.example.com/x@sha256:' + "1" * 64 + '"}]', check=False)
    assert patched.returncode != 0 and "immutable" in patched.stderr


def test_unknown_field_is_rejected(cluster, namespace):
    obj = _example("Agent")
    obj["spec"]["colour"] = "green"
    result = _apply(cluster, namespace, obj)
    assert result.returncode != 0
    assert 'unknown field "spec.colour"' in result.stderr


def test_agentversion_name_must_follow_the_naming_rule(cluster, namespace):
    obj = _example("AgentVersion")
    obj["metadata"]["name"] = "cbam-latest"
    result = _apply(cluster, namespace, obj)
    assert result.returncode != 0
    assert "metadata.name must be gl-cbam-calculator-v2-2.3.1" in result.stderr


def test_two_objects_cannot_claim_one_agent_version(cluster, namespace):
    assert _apply(cluster, namespace, _example("AgentVersion")).returncode == 0
    duplicate = _example("AgentVersion")
    result = cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(duplicate), check=False)
    assert result.returncode != 0
    assert 'agentversions.registry.greenlang.ai "gl-cbam-calculator-v2-2.3.1" already exists' in result.stderr


def test_promotion_approvals_can_only_be_added(cluster, namespace):
    promotion = yaml.safe_load((REPO / "examples" / "promotion.yaml").read_text())
    assert _apply(cluster, namespace, promotion, as_user="requester").returncode == 0
    promotion["spec"]["approvals"] = [{"user": "admin", "comment": "looks good"}]  # the test runs as admin
    assert _apply(cluster, namespace, promotion).returncode == 0
    promotion["spec"]["approvals"] = [{"user": "admin", "comment": "changed my mind"}]
    result = _apply(cluster, namespace, promotion)
    assert result.returncode != 0
    assert "approvals can be added but never changed or removed" in result.stderr


def test_identity_annotations_are_the_api_servers_not_the_clients(cluster, namespace):
    """created-by and last-modified-by say who sent the request, whatever the client wrote.

    Each write's own answer is checked (the object as that write stored it): the operator, when
    running, handles the Promotion too, and its later writes rightly name it.
    """
    promotion = yaml.safe_load((REPO / "examples" / "promotion.yaml").read_text())
    promotion["metadata"]["annotations"] = {labels.CREATED_BY: "somebody-else", labels.LAST_MODIFIED_BY: "nobody"}
    created = cluster.kubectl("create", "-n", namespace, "-f", "-", "-o", "json", "--as=alice",
                              "--as-group=system:masters", input=json.dumps(promotion), check=False)
    assert created.returncode == 0, created.stderr
    stored = json.loads(created.stdout)["metadata"]["annotations"]
    assert (stored[labels.CREATED_BY], stored[labels.LAST_MODIFIED_BY]) == ("alice", "alice")
    relabelled = cluster.kubectl("annotate", "promotion", promotion["metadata"]["name"], "-n", namespace,
                                 "--overwrite", "--as=mallory", "--as-group=system:masters", "-o", "json",
                                 f"{labels.CREATED_BY}=mallory", "note=mine", check=False)
    assert relabelled.returncode == 0, relabelled.stderr
    stored = json.loads(relabelled.stdout)["metadata"]["annotations"]
    assert (stored[labels.CREATED_BY], stored[labels.LAST_MODIFIED_BY], stored["note"]) == ("alice", "mallory", "mine")


def test_identity_cannot_be_claimed_for_an_object_that_had_none(cluster, namespace):
    """Objects from before the identity policy have no creator; nobody may name one afterwards."""
    agent = reg.example("Agent")
    for kind in ("mutatingadmissionpolicybinding", "validatingadmissionpolicybinding"):
        cluster.kubectl("delete", kind, "identity.registry.greenlang.ai")
    try:
        wait.until(lambda: reg.identity_stamped(cluster, namespace, agent) is False,
                   what="the identity policy to be gone")
        assert _apply(cluster, namespace, agent).returncode == 0
    finally:
        cluster.kubectl("apply", "-f", str(REPO / "crds" / "admission_identity.yaml"))

    def claim(*dry_run: str):
        return cluster.kubectl("annotate", "agent", agent["metadata"]["name"], "-n", namespace, *dry_run,
                               f"{labels.CREATED_BY}=mallory", "--as=mallory", "--as-group=system:masters", check=False)

    fresh = {**agent, "metadata": {"name": "gl-probe-agent"}}
    wait.until(lambda: reg.identity_stamped(cluster, namespace, fresh) and claim("--dry-run=server").returncode != 0,
               what="both identity policies to be back")
    result = claim()
    assert result.returncode != 0
    assert 'registry.greenlang.ai/created-by"] records who created the object and cannot be changed' in result.stderr


def _last_modifier_once_quiet(cluster, namespace: str, name: str) -> str:
    """The Agent's last-modified-by once nothing has written to it for two seconds: the operator,
    when running, records each change it handles in its own annotations, and so names itself."""
    seen: list[tuple[str, str]] = []

    def quiet():
        meta = json.loads(cluster.kubectl("get", "agent", name, "-n", namespace, "-o", "json").stdout)["metadata"]
        seen.append((meta["resourceVersion"], meta["annotations"][labels.LAST_MODIFIED_BY]))
        return len(seen) > 1 and seen[-1] == seen[-2] and seen[-1][1]

    return wait.until(quiet, interval=2, what=f"Agent {name} to be left alone")


def test_a_request_that_changes_nothing_else_cannot_rename_the_last_modifier(cluster, namespace):
    """A repeated apply must write nothing (GitOps), so only a change names its author: a request
    changing nothing but last-modified-by keeps the name it had, and is refused when the stamping
    policy is missing."""
    agent = reg.example("Agent")
    name = agent["metadata"]["name"]
    assert _apply(cluster, namespace, agent, as_user="alice").returncode == 0
    before = _last_modifier_once_quiet(cluster, namespace, name)
    assert before != "mallory"

    def claim(*extra: str):
        return cluster.kubectl("annotate", "agent", name, "-n", namespace, "--overwrite", "-o", "json", *extra,
                               f"{labels.LAST_MODIFIED_BY}=mallory", "--as=mallory", "--as-group=system:masters",
                               check=False)

    kept = claim()
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["metadata"]["annotations"][labels.LAST_MODIFIED_BY] == before
    changed = claim("note=mine")  # a real change: its author is named, whatever the request claims
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["metadata"]["annotations"][labels.LAST_MODIFIED_BY] == "mallory"

    now = _last_modifier_once_quiet(cluster, namespace, name)
    cluster.kubectl("delete", "mutatingadmissionpolicybinding", "identity.registry.greenlang.ai")
    try:
        # Without the stamping policy the validating one refuses every create (no creator): it is alone.
        wait.until(lambda: reg.identity_stamped(cluster, namespace, {**agent, "metadata": {"name": "gl-probe"}})
                   is None, what="the stamping policy to be gone")
        refused = cluster.kubectl("annotate", "agent", name, "-n", namespace, "--overwrite",
                                  f"{labels.LAST_MODIFIED_BY}=eve", "--as=eve", "--as-group=system:masters",
                                  check=False)
    finally:
        cluster.kubectl("apply", "-f", str(REPO / "crds" / "admission_identity.yaml"))
    assert refused.returncode != 0
    assert (f'registry.greenlang.ai/last-modified-by"] must stay {now}: the request changes nothing else'
            in refused.stderr), refused.stderr
    wait.until(lambda: reg.identity_stamped(cluster, namespace, {**agent, "metadata": {"name": "gl-probe"}}),
               what="the stamping policy to be back")


def test_agentdeployment_needs_exactly_one_version_selector(cluster, namespace):
    deployment = yaml.safe_load((REPO / "examples" / "agent-deployment.yaml").read_text())
    deployment["metadata"]["namespace"] = namespace
    deployment["spec"]["version"] = "2.3.1"
    result = _apply(cluster, namespace, deployment)
    assert result.returncode != 0
    assert "set exactly one of spec.version, spec.versionRange or spec.channel" in result.stderr


def test_bad_quantity_is_rejected(cluster, namespace):
    obj = _example("AgentVersion")
    obj["spec"]["runtime"]["resources"]["requests"]["cpu"] = "lots"
    result = _apply(cluster, namespace, obj)
    assert result.returncode != 0
    assert "spec.runtime.resources.requests.cpu" in result.stderr and "quantity" in result.stderr
