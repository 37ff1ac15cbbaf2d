"""The agent artifact: a project directory packed into a deterministic zip.

A project directory holds ``greenlang-agent.yaml`` (the manifest: name, version, entrypoint,
capabilities, optionally the Agent block and runtime settings) and the agent's Python source.
:func:`pack` turns it into a zip whose bytes depend only on the files' paths and contents
(sorted entries, fixed timestamps and permissions, stored uncompressed), so the same source
always has the same sha256 and the registry can pin a release by digest. :func:`unpack` refuses
entries that would land outside the target directory.

Pure: no S3 or HTTP here; the CLI uploads and pulls the bytes, the runtime downloads them, and
both verify them with :func:`check_digest` before anything else sees them.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import re
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from gl_api import naming, semver
from gl_api.models import AgentSpec, Capability, Model, RuntimeSpec

MANIFEST = "greenlang-agent.yaml"
MEDIA_TYPE = "application/vnd.greenlang.agent.v1+zip"
# Zip's earliest representable time: any fixed value works, this one is the convention (as in wheels).
EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
ENTRYPOINT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
# Agents are small Python projects; these bounds stop a zip bomb or a packed virtualenv early.
MAX_FILES = 2000
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
_EXCLUDED_DIRS = {"__pycache__"}
_EXCLUDED_SUFFIXES = (".pyc", ".pyo")


class ArtifactError(ValueError):
    """A project, manifest or artifact that cannot be used; the message names the file or field and the fix."""


class Manifest(Model):
    """``greenlang-agent.yaml``: what the artifact is and how the runtime serves it."""

    name: str = Field(description="Agent name, e.g. gl-cbam-calculator-v2.", max_length=naming.AGENT_NAME_MAX,
                      pattern=naming.AGENT_NAME_PATTERN)
    version: str = Field(description=f"Release version: {semver.VERSION_HINT}.", max_length=128)
    entrypoint: str = Field(description="package.module:attribute; the attribute is a mapping "
                                        "{capability: callable(dict) -> dict} or a zero-argument callable "
                                        "returning one.", max_length=512, pattern=ENTRYPOINT_PATTERN)
    capabilities: Annotated[list[Capability], Field(min_length=1, max_length=64,
                                                    description="What the agent can do, with JSON Schemas.")]
    agent: AgentSpec | None = Field(None, description="The Agent to create on first publish.")
    runtime: RuntimeSpec | None = Field(None, description="How the agent runs when deployed.")
    release_notes: str | None = Field(None, max_length=32768, description="What changed in this release.")

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not semver.is_valid(value):
            raise ValueError(f"must be {semver.VERSION_HINT}")
        return value

    @field_validator("capabilities")
    @classmethod
    def _unique(cls, value: list[Capability]) -> list[Capability]:
        names = [c.name for c in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"capability names must be unique; {', '.join(twice)} appears more than once")
        return value

    @property
    def module(self) -> str:
        return self.entrypoint.partition(":")[0]

    @property
    def attribute(self) -> str:
        return self.entrypoint.partition(":")[2]


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(to_camel(p) if isinstance(p, str) else str(p) for p in loc) or "(top level)"


def parse_manifest(text: str | bytes, source: str = MANIFEST) -> Manifest:
    """Validate manifest text; every problem is reported as ``field: what is wrong``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ArtifactError(f"{source} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ArtifactError(f"{source} must be a YAML mapping with name, version, entrypoint and capabilities")
    try:
        return Manifest.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in error.errors())
        raise ArtifactError(f"{source} is invalid: {problems}") from None


def _excluded(relative: PurePosixPath) -> bool:
    # Dotfiles (.git, .venv, .env with secrets) and bytecode never belong in a release.
    return (any(part.startswith(".") or part in _EXCLUDED_DIRS for part in relative.parts)
            or relative.name.endswith(_EXCLUDED_SUFFIXES))


def project_files(project_dir: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """The files :func:`pack` takes, as (archive name, path), sorted by archive name."""
    root = Path(project_dir)
    if not (root / MANIFEST).is_file():
        raise ArtifactError(f"{root} has no {MANIFEST}; an agent project needs one at its top level")
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not _excluded(PurePosixPath(d))]
        for filename in filenames:
            path = Path(dirpath) / filename
            relative = PurePosixPath(path.relative_to(root).as_posix())
            if _excluded(relative):
                continue
            if path.is_symlink() or not path.is_file():
                raise ArtifactError(f"{path} is a symlink or special file; an artifact carries regular files only")
            found.append((str(relative), path))
    found.sort()
    if len(found) > MAX_FILES:
        raise ArtifactError(f"{root} has {len(found)} files; an artifact holds at most {MAX_FILES} "
                            "(is a virtualenv or data directory inside the project?)")
    return found


def _check_entrypoint(manifest: Manifest, names: set[str], where: str) -> None:
    module_path = manifest.module.replace(".", "/")
    if f"{module_path}.py" not in names and f"{module_path}/__init__.py" not in names:
        raise ArtifactError(f"entrypoint: module {manifest.module} is not in {where} (expected {module_path}.py "
                            f"or {module_path}/__init__.py next to {MANIFEST})")


def pack(project_dir: str | os.PathLike[str]) -> bytes:
    """The project as a deterministic zip: same files, same bytes, same digest."""
    files = project_files(project_dir)
    manifest = parse_manifest((Path(project_dir) / MANIFEST).read_bytes(), f"{Path(project_dir) / MANIFEST}")
    _check_entrypoint(manifest, {name for name, _ in files}, str(project_dir))
    buffer = io.BytesIO()
    # Stored, not deflated: compressed bytes may differ between zlib builds, and the digest must not.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.create_system = 3  # unix, so external_attr carries the mode below on every OS
            info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


class DigestMismatch(ArtifactError):
    """Bytes that are not the ones a version pinned: never unpacked, imported or saved under its name."""


def digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def check_digest(actual: str, expected: str, where: str) -> None:
    """Refuse ``actual`` (``sha256:<hex>``) unless it is ``expected``; compared in constant time."""
    if not hmac.compare_digest(actual, expected):
        raise DigestMismatch(f"artifact digest mismatch for {where}: expected {expected}, got {actual}")


def verify(data: bytes, expected: str, where: str) -> bytes:
    check_digest(digest(data), expected, where)
    return data


def _open(source: bytes | str | os.PathLike[str]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else Path(source))
    except (zipfile.BadZipFile, OSError) as error:
        raise ArtifactError(f"not an agent artifact (a zip with {MANIFEST}): {error}") from error


def read_manifest(source: bytes | str | os.PathLike[str]) -> Manifest:
    """The manifest of an artifact (its bytes or a path to it), or of a project directory."""
    if not isinstance(source, bytes) and Path(source).is_dir():
        path = Path(source) / MANIFEST
        if not path.is_file():
            raise ArtifactError(f"{source} has no {MANIFEST}; an agent project needs one at its top level")
        return parse_manifest(path.read_bytes(), str(path))
    with _open(source) as archive:
        try:
            text = archive.read(MANIFEST)
        except KeyError:
            raise ArtifactError(f"the artifact has no {MANIFEST} at its top level") from None
        return parse_manifest(text, f"{MANIFEST} in the artifact")


_DRIVE = re.compile(r"^[A-Za-z]:")


def _safe_name(name: str) -> PurePosixPath:
    relative = PurePosixPath(name)
    if (not name or name.startswith("/") or "\\" in name or _DRIVE.match(name) or relative.is_absolute()
            or any(part in ("..", "") for part in name.rstrip("/").split("/"))):
        raise ArtifactError(f"artifact entry {name!r} is an absolute path or leaves the artifact ('..'); refused")
    return relative


def unpack(source: bytes | str | os.PathLike[str], target_dir: str | os.PathLike[str]) -> Manifest:
    """Extract into ``target_dir`` after checking every entry; returns the manifest.

    Nothing is written unless every entry is a regular file with a relative path inside the
    target, so a hostile artifact cannot overwrite files elsewhere (zip slip) or plant symlinks.
    """
    target = Path(target_dir).resolve()
    with _open(source) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_FILES:
            raise ArtifactError(f"the artifact has {len(infos)} entries; at most {MAX_FILES} are allowed")
        if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
            raise ArtifactError(f"the artifact unpacks to more than {MAX_UNPACKED_BYTES} bytes; refused")
        for info in infos:
            _safe_name(info.filename)
            mode = info.external_attr >> 16
            if mode and stat.S_ISLNK(mode):
                raise ArtifactError(f"artifact entry {info.filename!r} is a symlink; refused")
            if not (target / info.filename).resolve().is_relative_to(target):
                raise ArtifactError(f"artifact entry {info.filename!r} leaves the target directory; refused")
        try:
            text = archive.read(MANIFEST)
        except KeyError:
            raise ArtifactError(f"the artifact has no {MANIFEST} at its top level") from None
        manifest = parse_manifest(text, f"{MANIFEST} in the artifact")
        _check_entrypoint(manifest, {i.filename for i in infos}, "the artifact")
        target.mkdir(parents=True, exist_ok=True)
        for info in infos:
            destination = target / info.filename
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(archive.read(info))
            destination.chmod(FILE_MODE)
    return manifest
