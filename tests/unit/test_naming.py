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
