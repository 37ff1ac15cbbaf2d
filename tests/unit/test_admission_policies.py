"""The admission policies in crds/ that restate a model's fields keep up with the model."""

import re

import yaml

from gl_api import crdgen
from gl_api.models.agent_version import AgentVersionStatus

REPORTER_FIELDS = {"evaluation", "securityScan", "usage"}


def test_the_status_policy_closes_every_agentversion_status_field_but_the_reporters():
    """A status field added to the model is the operator's until the policy says otherwise."""
    policy = yaml.safe_load((crdgen.CRD_DIR / "admission_status.yaml").read_text().split("\n---\n")[0])
    changed = next(v["expression"] for v in policy["spec"]["variables"] if v["name"] == "operatorFieldsChanged")
    guarded = set(re.findall(r"'status\.(\w+)'", changed))
    fields = {field.alias or name for name, field in AgentVersionStatus.model_fields.items()}
    assert guarded == fields - REPORTER_FIELDS
