import pytest

from gl_api import semver
from gl_api.semver import Version


@pytest.mark.parametrize("text", ["0.0.0", "2.3.1", "10.20.30", "1.0.0-rc.1", "1.0.0-alpha-beta.7", "1.0.0-0a.1"])
def test_accepts_semver(text):
    assert semver.is_valid(text)
    assert str(Version.parse(text)) == text


@pytest.mark.parametrize("text", ["1.2", "01.2.3", "1.2.3-01", "v1.2.3", "1.2.3+build.5", "1.2.3-RC.1", "", "1.2.3-"])
def test_refuses_what_the_registry_cannot_name(text):
    assert not semver.is_valid(text)
    with pytest.raises(semver.InvalidVersion, match="Semantic Versioning 2.0"):
        Version.parse(text)


def test_precedence_follows_semver_2_section_11():
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
    parsed = [Version.parse(v) for v in ordered]
    assert sorted(reversed(parsed)) == parsed
    assert max(parsed) == Version.parse("2.0.0")
    assert Version.parse("1.0.0-rc.1").is_prerelease and not Version.parse("1.0.0").is_prerelease


@pytest.mark.parametrize("version, version_range, expected", [
    ("2.4.0", ">=2.3.0 <3.0.0", True),
    ("3.0.0", ">=2.3.0 <3.0.0", False),
    ("2.3.0", ">2.3.0", False),
    ("2.3.1", "2.3.1", True),
    ("3.0.0-rc.1", ">=2.3.0", False),
    ("3.0.0-rc.2", ">=3.0.0-rc.1", True),
])
def test_ranges(version, version_range, expected):
    assert semver.satisfies(Version.parse(version), version_range) is expected


def test_highest_within_a_range():
    assert semver.highest(["2.3.1", "2.10.0", "3.0.0", "3.1.0-rc.1"], ">=2.0.0 <3.0.0") == "2.10.0"
    assert semver.highest(["2.3.1", "2.10.0"]) == "2.10.0"
    assert semver.highest([], ">=1.0.0") is None
