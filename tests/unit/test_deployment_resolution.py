"""Which version an AgentDeployment runs (pure)."""

from gl_operator import deployment_resolution as dr
from gl_operator.deployment_resolution import Outcome

PROD = ("abc", {"name": "production", "namespace": "abc-prod", "allowedStates": ["certified"]})
STAGING = ("abc", {"name": "staging", "namespace": "abc-staging"})
VERSIONS = {"2.2.0": "deprecated", "2.3.1": "certified", "2.4.0": "experimental", "2.5.0": "draft",
            "1.0.0": "retired", "2.6.0": None}


def glad(status=None, annotations=None, **spec):
    return {"metadata": {"name": "cbam", "namespace": "abc-prod", "annotations": annotations or {}},
            "spec": {"agent": "team/cbam", **spec}, "status": status or {}}


def test_environment_by_namespace():
    tenant = {"metadata": {"name": "abc"}, "spec": {"environments": [PROD[1], STAGING[1]]}}
    assert dr.environment([tenant], "abc-staging") == ("abc", STAGING[1])
    assert dr.environment([tenant], "elsewhere") is None


def test_default_allowed_states_follow_the_policy():
    assert dr.allowed_states({"name": "staging"}) == ("experimental", "certified")
    assert dr.allowed_states({"name": "dev"}) == ("draft", "experimental", "certified")


def test_range_skips_states_the_environment_does_not_admit():
    result = dr.resolve(glad(versionRange=">=2.0.0 <3.0.0"), VERSIONS, PROD)
    assert (result.outcome, result.version) == (Outcome.resolved, "2.3.1")
    assert dr.resolve(glad(versionRange=">=2.0.0 <3.0.0"), VERSIONS, STAGING).version == "2.4.0"


def test_channel_follows_the_newest_certified():
    assert dr.resolve(glad(channel="certified"), {**VERSIONS, "2.7.0": "certified"}, PROD).version == "2.7.0"


def test_exact_version_in_a_state_not_admitted_fails_naming_the_policy():
    result = dr.resolve(glad(version="2.4.0"), VERSIONS, PROD)
    assert result.outcome is Outcome.failed and result.reason == "VersionNotAllowed"
    assert result.message == ("team/cbam@2.4.0 is experimental; tenant abc allows only certified versions in "
                              "production (TenantPolicy abc, environments[production].allowedStates)")


def test_retired_is_refused_and_missing_waits():
    assert dr.resolve(glad(version="1.0.0"), VERSIONS, PROD).reason == "VersionRetired"
    assert dr.resolve(glad(version="1.0.0"), VERSIONS, PROD).outcome is Outcome.failed
    assert dr.resolve(glad(version="9.9.9"), VERSIONS, PROD).outcome is Outcome.pending
    assert dr.resolve(glad(version="2.6.0"), VERSIONS, STAGING).reason == "VersionNotAccepted"


def test_deprecated_runs_with_a_warning_where_certified_may():
    result = dr.resolve(glad(version="2.2.0"), VERSIONS, PROD)
    assert (result.outcome, result.version) == (Outcome.resolved, "2.2.0")
    assert "deprecated" in result.warning


def test_no_tenant_environment_fails():
    result = dr.resolve(glad(channel="certified"), VERSIONS, None)
    assert (result.outcome, result.reason) == (Outcome.failed, "NoTenantEnvironment")


def test_rolled_back_versions_are_skipped_until_a_newer_one_appears():
    status = {"rolledBackVersions": ["2.3.1"]}
    held = dr.resolve(glad(status, channel="certified"), VERSIONS | {"2.3.0": "certified"}, PROD)
    assert (held.version, held.held_back) == ("2.3.0", "2.3.1")
    newer = dr.resolve(glad(status, channel="certified"), VERSIONS | {"2.3.0": "certified", "2.3.2": "certified"}, PROD)
    assert (newer.version, newer.held_back) == ("2.3.2", None)
    nothing = dr.resolve(glad(status, channel="certified"), VERSIONS, PROD)
    assert nothing.outcome is Outcome.pending and "2.3.1 was rolled back" in nothing.message


def test_exact_rolled_back_version_is_held_back():
    result = dr.resolve(glad({"rolledBackVersions": ["2.3.1"]}, version="2.3.1"), VERSIONS, PROD)
    assert (result.version, result.held_back) == ("2.3.1", "2.3.1")


def test_retry_annotation_forgets_rolled_back_versions_once():
    status = {"rolledBackVersions": ["2.3.1"], "handledRetry": "1"}
    same = dr.resolve(glad(status, {"registry.greenlang.ai/retry": "1"}, channel="certified"), VERSIONS, PROD)
    assert same.rolled_back == ["2.3.1"] and same.outcome is Outcome.pending
    retried = dr.resolve(glad(status, {"registry.greenlang.ai/retry": "2"}, channel="certified"), VERSIONS, PROD)
    assert (retried.version, retried.rolled_back, retried.handled_retry) == ("2.3.1", [], "2")
