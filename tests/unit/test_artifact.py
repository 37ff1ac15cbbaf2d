"""The artifact format: deterministic packing, safe unpacking, manifests that name what is wrong."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from gl_api import artifact

REPO = Path(__file__).resolve().parents[2]
CBAM = REPO / "examples" / "agents" / "cbam-calculator"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(CBAM, target)
    return target


def test_packing_twice_gives_the_same_bytes_and_digest(project, tmp_path):
    first = artifact.pack(project)
    # A copy made later has other mtimes and modes; bytecode and dotfiles appear: none may count.
    clone = tmp_path / "clone"
    shutil.copytree(project, clone)
    os.utime(clone / "cbam_calculator" / "agent.py", (1_900_000_000, 1_900_000_000))
    (clone / "cbam_calculator" / "agent.py").chmod(0o755)
    (clone / "cbam_calculator" / "__pycache__").mkdir()
    (clone / "cbam_calculator" / "__pycache__" / "agent.cpython-311.pyc").write_bytes(b"\0bytecode")
    (clone / ".env").write_text("AWS_SECRET_ACCESS_KEY=do-not-ship\n")
    (clone / ".git").mkdir()
    (clone / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    second = artifact.pack(clone)
    assert first == second
    assert artifact.digest(first) == artifact.digest(second) == f"sha256:{hashlib.sha256(first).hexdigest()}"
    entries = zipfile.ZipFile(io.BytesIO(first)).infolist()
    assert [e.filename for e in entries] == sorted(e.filename for e in entries)
    assert "greenlang-agent.yaml" in [e.filename for e in entries]
    assert not [e for e in entries if e.filename.endswith(".pyc") or "/." in f"/{e.filename}"]
    assert {e.date_time for e in entries} == {(1980, 1, 1, 0, 0, 0)}
    assert {e.external_attr >> 16 & 0o777 for e in entries} == {0o644}


def test_a_changed_file_changes_the_digest(project):
    before = artifact.digest(artifact.pack(project))
    values = project / "cbam_calculator" / "default_values.py"
    values.write_text(values.read_text().replace('"2523": (0.66, 0.05)', '"2523": (0.67, 0.05)'))
    assert artifact.digest(artifact.pack(project)) != before


def test_pack_then_unpack_round_trips(project, tmp_path):
    data = artifact.pack(project)
    manifest = artifact.unpack(data, tmp_path / "out")
    assert (manifest.name, manifest.version) == ("gl-cbam-calculator-v2", "2.3.1")
    assert manifest.entrypoint == "cbam_calculator.agent:CAPABILITIES"
    assert (tmp_path / "out" / "cbam_calculator" / "agent.py").read_bytes() == \
        (project / "cbam_calculator" / "agent.py").read_bytes()
    assert artifact.read_manifest(data) == manifest == artifact.read_manifest(project)
    (tmp_path / "cbam.zip").write_bytes(data)
    assert artifact.read_manifest(tmp_path / "cbam.zip") == manifest


def _zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("greenlang-agent.yaml", (CBAM / "greenlang-agent.yaml").read_bytes())
        archive.writestr("cbam_calculator/agent.py", b"CAPABILITIES = {}\n")
        for name, data in entries.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.create_system = 3
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["../escape.py", "cbam_calculator/../../escape.py", "/etc/cron.d/evil",
                                  "C:/windows/evil.py", "a\\..\\..\\evil.py"])
def test_unpack_refuses_paths_that_leave_the_target(tmp_path, name):
    target = tmp_path / "deep" / "target"
    with pytest.raises(artifact.ArtifactError, match="absolute path or leaves the artifact|leaves the target"):
        artifact.unpack(_zip({name: b"print('owned')\n"}), target)
    assert not (tmp_path / "escape.py").exists() and not (tmp_path / "deep" / "escape.py").exists()
    assert not target.exists()  # nothing written before every entry is checked


def test_unpack_refuses_symlinks(tmp_path):
    with pytest.raises(artifact.ArtifactError, match="is a symlink"):
        artifact.unpack(_zip({}, symlink="cbam_calculator/link"), tmp_path / "out")


def test_not_a_zip_is_a_clear_error(tmp_path):
    with pytest.raises(artifact.ArtifactError, match="not an agent artifact"):
        artifact.read_manifest(b"this is not a zip")


def _manifest(project: Path, **changes) -> None:
    path = project / artifact.MANIFEST
    data = yaml.safe_load(path.read_text())
    data.update(changes)
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("changes, message", [
    ({"version": "2.3"}, "version: Value error, must be a Semantic Versioning 2.0 version"),
    ({"name": "GL_CBAM"}, "name: String should match pattern"),
    ({"entrypoint": "cbam_calculator.agent"}, "entrypoint: String should match pattern"),
    ({"capabilities": []}, "capabilities: List should have at least 1 item"),
    ({"capabilities": [{"name": "calc", "inputSchema": {}}, {"name": "calc"}]},
     "capabilities: Value error, capability names must be unique; calc appears more than once"),
    ({"capabilities": [{"name": "calc", "input": {}}]}, "capabilities.0.input: Extra inputs are not permitted"),
    ({"agent": {"displayName": "CBAM", "domain": "Sustainability", "type": "calculator"}},
     "agent.domain: String should match pattern"),
    ({"runtime": {"port": 0}}, "runtime.port: Input should be greater than or equal to 1"),
])
def test_manifest_errors_name_the_field(project, changes, message):
    _manifest(project, **changes)
    with pytest.raises(artifact.ArtifactError, match="greenlang-agent.yaml is invalid") as raised:
        artifact.pack(project)
    assert message in str(raised.value)


def test_missing_manifest_and_missing_entrypoint_module(project, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(artifact.ArtifactError, match="has no greenlang-agent.yaml"):
        artifact.pack(tmp_path / "empty")
    _manifest(project, entrypoint="cbam_calc.agent:CAPABILITIES")
    with pytest.raises(artifact.ArtifactError, match=r"entrypoint: module cbam_calc.agent is not in .* \(expected "
                                                     r"cbam_calc/agent.py or cbam_calc/agent/__init__.py"):
        artifact.pack(project)


def test_verify_passes_the_pinned_bytes_and_refuses_others():
    data = b"agent"
    assert artifact.verify(data, artifact.digest(data), "s3://b/k") == data
    with pytest.raises(artifact.DigestMismatch) as refused:
        artifact.verify(data + b"!", artifact.digest(data), "s3://b/k")
    assert str(refused.value) == (f"artifact digest mismatch for s3://b/k: expected {artifact.digest(data)}, "
                                  f"got {artifact.digest(data + b'!')}")
