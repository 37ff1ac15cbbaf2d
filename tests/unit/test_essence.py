"""kopf's notion of a change leaves out the labels the operator writes from status, and only those."""

import kopf

from gl_api import labels
from gl_operator.essence import WithoutOperatorLabels
from gl_operator.publishing import labels_drifted


def _version(state, **extra_labels):
    return {"apiVersion": "registry.greenlang.ai/v1alpha1", "kind": "AgentVersion",
            "metadata": {"name": "cbam-1.0.0", "labels": {labels.STATE: state, labels.AGENT: "cbam", **extra_labels}},
            "spec": {"agent": "cbam", "version": "1.0.0"}, "status": {"state": state}}


def test_a_state_label_written_by_the_operator_is_not_a_change():
    storage = WithoutOperatorLabels(prefix="registry.greenlang.ai", key="last-handled-configuration")
    assert storage.build(body=kopf.Body(_version("draft"))) == storage.build(body=kopf.Body(_version("certified")))


def test_labels_of_users_and_the_spec_still_are():
    storage = WithoutOperatorLabels(prefix="registry.greenlang.ai", key="last-handled-configuration")
    essence = storage.build(body=kopf.Body(_version("draft", team="tax")))
    assert essence["metadata"]["labels"] == {"team": "tax"} and essence["spec"]["version"] == "1.0.0"
    assert (storage.build(body=kopf.Body(_version("draft", team="tax")))
            != storage.build(body=kopf.Body(_version("draft", team="vat"))))


def test_drifted_labels_are_seen_for_accepted_versions_only():
    assert not labels_drifted(_version("draft"))
    edited = _version("certified")
    edited["metadata"]["labels"][labels.STATE] = "draft"
    assert labels_drifted(edited)
    unaccepted = _version("draft")
    unaccepted["status"] = {}
    assert not labels_drifted(unaccepted)
