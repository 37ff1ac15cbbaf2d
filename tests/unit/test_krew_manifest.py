"""The krew manifest of `kubectl gl` names the archive the sources build, byte for byte."""

import hashlib

import yaml

from gl_devenv import krew


def test_the_committed_manifest_is_what_the_sources_give():
    assert krew.main(["--check"]) == 0, "cli/krew/gl.yaml is stale: run `make krew`"


def test_the_archive_is_reproducible_and_its_sha256_is_in_the_manifest():
    first, second = krew.archive_bytes(), krew.archive_bytes()
    assert first == second
    (platform,) = yaml.safe_load(krew.MANIFEST.read_text())["spec"]["platforms"]
    assert platform["sha256"] == hashlib.sha256(first).hexdigest()
    assert platform["uri"].endswith(krew.archive_name()) and platform["bin"] == "kubectl-gl"
