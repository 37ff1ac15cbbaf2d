"""Integrity rules the API server holds itself (crds/admission_status.yaml, crds/admission_events.yaml and
the Promotion CRD), proven with no webhook registered: `gl-operator run` alone, the default setup.

Each attack goes through the real API server as a user bound to the registry's own roles.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest

from e2e import registry as reg
from gl_api import GROUP, VERSION
from gl_devenv import identities

EVALUATOR, TENANT_ADMIN = "eve", "mallory"
REPORTERS = "status.evaluation, status.securityScan and status.usage"


@pytest.fixture
def draft(cluster, api, namespace, operator):
    """A team namespace with gl-cbam-calculator-v2 2.3.1 in draft, and no webhook configuration anywhere."""
    webhooks = cluster.kubectl("get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-o", "name")
    assert "greenlang-registry" not in webhooks.stdout  # the rules must hold without the webhook server
    reg.publish_agent(cluster, namespace)
    name = reg.publish_version(cluster, namespace, "2.3.1")
    reg.wait_state(api, namespace, name, "draft")
    return namespace, name


def _grant(cluster, namespace: str, user: str, role: str) -> None:
    applied = reg.apply(cluster, namespace, reg.binding(f"{user}-{role}", user, f"greenlang-registry:{role}", namespace))
    assert applied.returncode == 0, applied.stderr


def _patch_status(cluster, namespace: str, kind: str, name: str, patch, user: str, patch_type: str = "merge"):
    return cluster.kubectl("patch", kind, name, "-n", namespace, "--subresource=status", f"--type={patch_type}",
                           "-p", json.dumps(patch), f"--as={user}", check=False)


FORGED_HISTORY = {"from": "draft", "to": "certified", "by": identities.OPERATOR, "at": "2026-01-01T00:00:00Z",
                  "reason": "forged"}


@pytest.mark.parametrize("field, patch", [
    ("state", {"status": {"state": "certified"}}),
    ("stateHistory", [{"op": "add", "path": "/status/stateHistory/-", "value": FORGED_HISTORY}]),
])
def test_an_evaluator_cannot_change_the_lifecycle(cluster, api, draft, field, patch):
    namespace, name = draft
    _grant(cluster, namespace, EVALUATOR, "evaluator")
    forged = _patch_status(cluster, namespace, "agentversion", name, patch, EVALUATOR,
                           "merge" if isinstance(patch, dict) else "json")
    assert forged.returncode != 0
    assert (f"status.{field} of AgentVersion {name} can only be changed by the registry operator; "
            "request a change with a Promotion") in forged.stderr
    assert f"an evaluator writes only {REPORTERS}" in forged.stderr
    status = reg.status(api, namespace, "agentversions", name)
    assert status["state"] == "draft" and [h["to"] for h in status["stateHistory"]] == ["draft"]


def test_an_evaluator_writes_evaluation_scan_and_usage(cluster, api, draft):
    namespace, name = draft
    _grant(cluster, namespace, EVALUATOR, "evaluator")
    reported = _patch_status(cluster, namespace, "agentversion", name, {"status": reg.GOOD_RESULTS}, EVALUATOR)
    assert reported.returncode == 0, reported.stderr
    status = reg.status(api, namespace, "agentversions", name)
    assert {k: status[k] for k in reg.GOOD_RESULTS} == reg.GOOD_RESULTS and status["state"] == "draft"


def test_a_promotion_outcome_is_the_operators_alone(cluster, api, draft):
    """A user allowed to write promotions/status still cannot turn a rejected request into a success."""
    namespace, name = draft
    reg.grant_users(cluster, namespace)
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "promotion-status-writer", "namespace": namespace},
            "rules": [{"apiGroups": [GROUP], "resources": ["promotions", "promotions/status"],
                       "verbs": ["get", "patch", "update"]}]}
    assert reg.apply(cluster, namespace, role).returncode == 0
    assert reg.apply(cluster, namespace, reg.binding("mallory-status", TENANT_ADMIN, "promotion-status-writer",
                                                     namespace, "Role")).returncode == 0
    reg.promote(cluster, namespace, "skip-ahead", "2.3.1", "certified")  # draft -> certified is not a transition
    reg.wait_phase(api, namespace, "skip-ahead", "Rejected")

    forged = _patch_status(cluster, namespace, "promotion", "skip-ahead", {"status": {"phase": "Succeeded"}},
                           TENANT_ADMIN)
    assert forged.returncode != 0
    assert ("status of Promotion skip-ahead (phase, checks, conditions) is written only by the registry operator"
            in forged.stderr)
    assert reg.status(api, namespace, "promotions", "skip-ahead")["phase"] == "Rejected"
    assert reg.status(api, namespace, "agentversions", name)["state"] == "draft"


def test_approvals_cannot_be_removed_as_a_whole(cluster, api, draft):
    namespace, _ = draft
    reg.grant_users(cluster, namespace)
    reg.promote(cluster, namespace, "certify", "2.3.1", "certified")
    assert reg.approve(cluster, namespace, "certify", "bob").returncode == 0

    erased = cluster.kubectl("patch", "promotion", "certify", "-n", namespace, "--type=json", "-p",
                             json.dumps([{"op": "remove", "path": "/spec/approvals"}]), "--as=alice", check=False)
    assert erased.returncode != 0
    assert "spec.approvals: Forbidden" in erased.stderr
    assert "approvals can be added but never changed or removed" in erased.stderr
    approvals = reg.get(api, namespace, "promotions", "certify")["spec"]["approvals"]
    assert [a["user"] for a in approvals] == ["bob"]


def _core_event(namespace: str, version: str, reason: str, labelled: bool) -> dict:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{version}.{uuid.uuid4().hex[:12]}", "namespace": namespace,
                         "annotations": {f"{GROUP}/actor": "alice"},
                         **({"labels": {f"{GROUP}/audit": "true"}} if labelled else {})},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentVersion", "name": version,
                               "namespace": namespace},
            "type": "Warning", "reason": reason, "message": "agent gl-cbam-calculator-v2@2.3.1 is draft",
            "source": {"component": "gl-webhooks"}, "reportingComponent": "gl-webhooks"}


def _events_api_event(namespace: str, version: str) -> dict:
    """The same forgery through events.k8s.io/v1, the newer API onto the same Events."""
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": f"{version}.{uuid.uuid4().hex[:12]}", "namespace": namespace,
                         "annotations": {f"{GROUP}/actor": "alice"}},
            "eventTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": "gl-webhooks", "reportingInstance": "gl-webhooks-0", "action": "Admit",
            "regarding": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgentVersion", "name": version,
                          "namespace": namespace},
            "type": "Warning", "reason": "AdmissionDenied", "note": "agent gl-cbam-calculator-v2@2.3.1 is draft"}


def _create(cluster, obj: dict, *identity: str):
    return cluster.kubectl("create", "-f", "-", *identity, input=json.dumps(obj), check=False)


@pytest.mark.parametrize("form", ["core", "labelled", "events.k8s.io", "rolled-back"])
def test_a_tenant_admin_cannot_forge_an_audited_event(cluster, draft, form):
    namespace, name = draft
    _grant(cluster, namespace, TENANT_ADMIN, "super_admin")  # may create Events in the namespace
    # ... and through events.k8s.io too, as a role granting `create events` may.
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "event-poster", "namespace": namespace},
            "rules": [{"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]}]}
    assert reg.apply(cluster, namespace, role).returncode == 0
    assert reg.apply(cluster, namespace, reg.binding("mallory-events", TENANT_ADMIN, "event-poster", namespace,
                                                     "Role")).returncode == 0
    event = {"core": lambda: _core_event(namespace, name, "AdmissionDenied", labelled=False),
             "labelled": lambda: _core_event(namespace, name, "AdmissionDenied", labelled=True),
             "events.k8s.io": lambda: _events_api_event(namespace, name),
             "rolled-back": lambda: _core_event(namespace, name, "RolledBack", labelled=False)}[form]()
    forged = _create(cluster, event, f"--as={TENANT_ADMIN}")
    assert forged.returncode != 0
    assert "only the registry's own components post them" in forged.stderr
    listed = cluster.kubectl("get", "events", "-n", namespace, "-o", "jsonpath={.items[*].reason}").stdout.split()
    assert "AdmissionDenied" not in listed and "RolledBack" not in listed


def test_ordinary_events_and_the_registrys_own_are_still_posted(cluster, draft):
    namespace, name = draft
    _grant(cluster, namespace, TENANT_ADMIN, "super_admin")
    ordinary = _core_event(namespace, name, "Evaluated", labelled=False)
    del ordinary["metadata"]["annotations"]
    assert _create(cluster, ordinary, f"--as={TENANT_ADMIN}").returncode == 0
    denial = _core_event(namespace, name, "AdmissionDenied", labelled=True)
    posted = _create(cluster, denial, f"--as={identities.WEBHOOKS}", "--as-group=system:masters")
    assert posted.returncode == 0, posted.stderr
    rollback = _core_event(namespace, name, "RolledBack", labelled=True)
    del rollback["metadata"]["annotations"]
    posted = _create(cluster, rollback, f"--as={identities.OPERATOR}", "--as-group=system:masters")
    assert posted.returncode == 0, posted.stderr
    # The webhook server is the one that denies; the operator does not post denials.
    by_operator = _create(cluster, _core_event(namespace, name, "AdmissionDenied", labelled=True),
                          f"--as={identities.OPERATOR}", "--as-group=system:masters")
    assert by_operator.returncode != 0 and "only the registry's own components post them" in by_operator.stderr
