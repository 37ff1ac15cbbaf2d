import pytest

from gl_api import naming
from gl_api.naming import AgentVersionRef, InvalidReference


def test_reference_resolves_to_documented_object_name():
    ref = AgentVersionRef.parse("gl-cbam-calculator-v2@2.3.1")
    assert (ref.agent, ref.version) == ("gl-cbam-calculator-v2", "2.3.1")
    assert ref.object_name == "gl-cbam-calculator-v2-2.3.1"
    assert str(ref) == "gl-cbam-calculator-v2@2.3.1"


@pytest.mark.parametrize("ref", ["gl-cbam-calculator-v2@2.3.1", "a@0.0.0", "x-1@1.0.0-rc-1.2", "a-b-c@10.0.3-alpha"])
def test_object_name_round_trips(ref):
    parsed = AgentVersionRef.parse(ref)
    assert naming.parse_object_name(parsed.object_name) == parsed


@pytest.mark.parametrize("text, fragment", [
    ("gl-cbam-calculator-v2", "write AGENT@VERSION"),
    ("GL-Cbam@1.0.0", "lowercase DNS label"),
    ("gl-cbam@1.0", "Semantic Versioning"),
    ("gl-cbam@1.0.0+build", "Semantic Versioning"),
])
def test_bad_reference_says_what_to_write(text, fragment):
    with pytest.raises(InvalidReference, match=fragment):
        AgentVersionRef.parse(text)


@pytest.mark.parametrize("display_name, derived", [
    ("CBAM Carbon Calculator", "cbam-carbon-calculator"),
    ("gl-cbam-calculator-v2", "gl-cbam-calculator-v2"),  # an id is its own display name's id
    ("  Scope 3 -- Connector (v2)!  ", "scope-3-connector-v2"),
    ("Émissions Réglementées", "emissions-reglementees"),
    ("EU_ETS.Reporter", "eu-ets-reporter"),
    ("a" * 62 + " b", "a" * 62),  # cut to 63, then the dangling '-' trimmed
])
def test_agent_id_is_derived_from_the_display_name(display_name, derived):
    assert naming.agent_id(display_name) == derived
    assert AgentVersionRef.parse(f"{derived}@1.0.0").agent == derived


@pytest.mark.parametrize("display_name, fragment", [
    ("!!! ---", "has no letters or digits; give --id"),
    ("数据代理", "has no letters or digits; give --id"),
    ("2025 Reporter", "'2025-reporter', which does not start with a letter; give --id"),
])
def test_agent_id_refuses_what_leaves_no_dns_label(display_name, fragment):
    with pytest.raises(InvalidReference, match=fragment):
        naming.agent_id(display_name)
