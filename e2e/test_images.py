"""The registry's images, as `make image` builds them: read back from the OCI archive the way a registry
or a container runtime reads it, rebuilt to prove the build is reproducible, and run (the layer unpacked
and entered with chroot as the image's user) to prove nothing the components need is missing.

No cluster: these images are files. Running them needs root (chroot), which the e2e suite has anyway.
"""

from __future__ import annotations

import filecmp
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import textwrap
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from gl_devenv import build, images

REPO = Path(__file__).resolve().parents[1]
SITE = images.DIST_PACKAGES
OCI_LABELS = ("title", "description", "source", "version", "revision", "licenses", "created")
# Nothing that builds or installs software, and no shell: the final (only) layer runs three programs.
BUILD_TOOLS = {"pip", "pip3", "setuptools", "wheel", "ensurepip", "distutils", "gcc", "cc", "c++", "g++", "ld", "as",
               "make", "sh", "bash", "dash", "busybox", "apt", "dpkg"}
INSTALLERS = ("pip-", "setuptools-", "wheel-")  # their .dist-info


@dataclass
class Unpacked:
    image: images.Image
    config: dict            # the image configuration (User, Cmd, Labels, ...), as a runtime reads it
    created: str
    members: dict[str, tarfile.TarInfo]  # the layer's entries by path
    rootfs: Path

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``args`` in the image as its runtime would start them: its user, its environment, its root."""
        user = self.config["User"]
        environment = dict(entry.split("=", 1) for entry in self.config.get("Env", []))
        return subprocess.run(["/usr/sbin/chroot", f"--userspec={user}", str(self.rootfs), *args],
                              env=environment, capture_output=True, text=True, timeout=timeout)


def _verified_blob(layout: tarfile.TarFile, descriptor: dict) -> bytes:
    data = layout.extractfile(f"blobs/sha256/{descriptor['digest'].removeprefix('sha256:')}").read()
    assert len(data) == descriptor["size"] and "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"], \
        f"blob {descriptor['digest']} does not match its descriptor"
    return data


def _unpack(image: images.Image, directory: Path) -> Unpacked:
    """Open the archive as `ctr images import` or `skopeo copy oci-archive:` would: index → manifest →
    config and layer, every blob checked against its digest, the layer against the config's diff id."""
    with tarfile.open(image.archive) as layout:
        assert json.loads(layout.extractfile("oci-layout").read()) == {"imageLayoutVersion": "1.0.0"}
        index = json.loads(layout.extractfile("index.json").read())
        [descriptor] = index["manifests"]
        assert descriptor["annotations"]["org.opencontainers.image.ref.name"] == image.reference
        assert descriptor["digest"] == image.digest
        manifest = json.loads(_verified_blob(layout, descriptor))
        config = json.loads(_verified_blob(layout, manifest["config"]))
        [layer_descriptor] = manifest["layers"]
        assert layer_descriptor["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
        layer = gzip.decompress(_verified_blob(layout, layer_descriptor))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        rootfs = directory / "rootfs"
        # Our own archive, extracted as a runtime does: owners and modes (the sticky /tmp) as recorded.
        tar.extractall(rootfs, filter="fully_trusted")
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    return Unpacked(image, config["config"], config["created"], members, rootfs)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Unpacked:
    return _unpack(images.registry_image(), tmp_path_factory.mktemp("registry-image"))


@pytest.fixture(scope="module")
def opa(tmp_path_factory: pytest.TempPathFactory) -> Unpacked:
    build.ensure(["opa"])
    return _unpack(images.opa_image(), tmp_path_factory.mktemp("opa-image"))


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout.strip()


def _labels_are_complete(unpacked: Unpacked) -> dict[str, str]:
    labels = unpacked.config["Labels"]
    missing = [f"org.opencontainers.image.{key}" for key in OCI_LABELS
               if not labels.get(f"org.opencontainers.image.{key}")]
    assert not missing, f"labels missing: {missing}"
    assert labels["org.opencontainers.image.created"] == unpacked.created
    return labels


def _layer_is_plain(unpacked: Unpacked) -> None:
    """Owned by root, dated at the epoch, nothing setuid, nothing writable by others but /tmp; no shell,
    no compiler, no installer."""
    for name, member in unpacked.members.items():
        assert (member.uid, member.gid, member.mtime) == (0, 0, 0), name
        assert not member.mode & (stat.S_ISUID | stat.S_ISGID), f"{name} is setuid/setgid"
        assert name == "tmp" or member.issym() or not member.mode & stat.S_IWOTH, f"{name} is world-writable"
    assert stat.S_IMODE(unpacked.members["tmp"].mode) == 0o1777
    tools = sorted(name for name in unpacked.members if set(name.split("/")) & BUILD_TOOLS
                   or Path(name).name.startswith(INSTALLERS))
    assert not tools, f"build tools or a shell in the image: {tools[:10]}"


# ------------------------------------------------------------------ registry


def test_registry_image_config_runs_as_nonroot_with_one_program_per_component(registry):
    config = registry.config
    assert config["User"] == "65532:65532"
    # No entrypoint: the chart's `command:` picks the component; run bare, the image prints the operator's usage.
    assert "Entrypoint" not in config and config["Cmd"] == ["/usr/local/bin/gl-operator", "--help"]
    assert config["WorkingDir"] == "/tmp"
    assert {"PYTHONDONTWRITEBYTECODE=1", "HOME=/tmp", "PATH=/usr/local/bin:/usr/bin"} <= set(config["Env"])
    assert registry.image.reference.startswith("localhost/greenlang/registry:")


def test_registry_image_labels_name_the_commit_and_the_debian_packages(registry):
    labels = _labels_are_complete(registry)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert labels["org.opencontainers.image.version"] == project["version"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]["text"]
    commit = labels["org.opencontainers.image.revision"].removesuffix("-modified")
    assert len(commit) == 40 and _git("cat-file", "-t", commit) == "commit"
    # created is the commit's time, not the build's: the same commit gives the same image.
    committed = int(_git("log", "-1", "--format=%ct", commit))
    assert registry.created == images.datetime.datetime.fromtimestamp(
        committed, images.datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    # The "base": Debian's packaged files, each package at the exact version installed here.
    python = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "python3.11-minimal"], check=True,
                            capture_output=True, text=True).stdout
    debian = dict(entry.split("=", 1) for entry in labels[images.DEBIAN_LABEL].split())
    assert debian["python3.11-minimal"] == python and {"libc6", "libssl3", "libpython3.11-stdlib"} <= set(debian)
    sbom = json.loads((registry.rootfs / images.SBOM_PATH).read_text())
    assert sbom["debian"]["packages"] == debian
    assert sbom["python"]["kopf"] == metadata.version("kopf")
    assert sbom["python"]["psycopg-binary"] == metadata.version("psycopg-binary")


def test_registry_image_carries_the_components_and_their_policies_but_no_build_tools(registry):
    names = set(registry.members)
    for command in ("gl-operator", "gl-webhooks", "gl-mirror"):
        launcher = registry.members[f"usr/local/bin/{command}"]
        assert launcher.isfile() and stat.S_IMODE(launcher.mode) == 0o755
    for package, directory in images.REGISTRY_PACKAGES.items():
        sources = {p.relative_to(REPO / directory) for p in (REPO / directory).rglob("*.py")
                   if "__pycache__" not in p.parts}
        absent = sorted(str(p) for p in sources if f"{SITE}/{package}/{p}" not in names)
        assert not absent, f"{package} files missing from the image: {absent}"
    policies = sorted(p.relative_to(REPO / "policies") for p in (REPO / "policies").glob("*/*.rego"))
    assert policies and all(f"{SITE}/gl_policy/{p}" in names for p in policies)
    assert f"{SITE}/gl_policy/.manifest" in names
    assert any(n.startswith(f"{SITE}/gl_mirror/migrations/") and n.endswith(".sql") for n in names)
    assert f"{SITE}/gl_cli" not in names and f"{SITE}/gl_devenv" not in names  # not the registry's to run
    _layer_is_plain(registry)
    assert not (registry.rootfs / "bin" / "sh").exists() and not (registry.rootfs / "usr" / "bin" / "sh").exists()


def test_registry_image_programs_start_as_the_image_user(registry):
    default = registry.run(*registry.config["Cmd"])
    assert default.returncode == 0 and "usage: gl-operator" in default.stdout, default.stderr
    for command, subcommand in (("gl-webhooks", "configuration"), ("gl-mirror", "audit-verify")):
        result = registry.run(f"/usr/local/bin/{command}", "--help")
        assert result.returncode == 0 and f"usage: {command}" in result.stdout and subcommand in result.stdout, \
            result.stderr


def test_registry_image_has_everything_the_components_import_at_run_time(registry):
    """Every module of our packages imports; the embedded Rego engine loads the image's policies and serves
    their revision; psycopg uses its bundled libpq; the mirror's embedder loads from the wheel (no
    download); TLS has CA certificates."""
    script = textwrap.dedent("""
        import asyncio, importlib, pkgutil, ssl
        import kopf, kubernetes, psycopg
        for package in ("gl_api", "gl_kube", "gl_policy", "gl_operator", "gl_webhooks", "gl_mirror"):
            for module in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
                if not module.name.endswith(".__main__"):
                    importlib.import_module(module.name)
        from gl_policy import engines
        asyncio.run(engines.check_ready(engines.RegoEngine()))
        from gl_mirror import search_index
        vector = search_index.default_embedder().embed(["carbon border adjustment"])[0]
        print(psycopg.pq.__impl__, len(vector), len(ssl.create_default_context().get_ca_certs()) > 100)
    """)
    result = registry.run("/usr/bin/python3.11", "-I", "-c", script, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["binary", "256", "True"]


# ------------------------------------------------------------------ opa


def test_opa_image_is_the_static_binary_alone(opa):
    assert opa.config["User"] == "65532:65532" and opa.config["Entrypoint"] == ["/usr/bin/opa"]
    labels = _labels_are_complete(opa)
    assert labels["org.opencontainers.image.version"] == images.versions.OPA
    files = sorted(name for name, member in opa.members.items() if member.isfile())
    assert files == ["etc/group", "etc/passwd", "usr/bin/opa"]
    assert opa.members["usr/bin/opa"].mode & 0o111
    _layer_is_plain(opa)
    version = opa.run(*opa.config["Entrypoint"], "version")
    assert version.returncode == 0, version.stderr
    assert f"Version: {images.versions.OPA.removeprefix('v')}" in version.stdout
    evaluated = opa.run("/usr/bin/opa", "eval", "--format", "raw", "1 + 1")
    assert evaluated.stdout.strip() == "2", evaluated.stderr


# ------------------------------------------------------------------ reproducibility


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    """The registry's sources as they are now, committed in a repository of their own, so that edits and
    commits in this checkout meanwhile cannot change the inputs between two builds."""
    root = tmp_path / "snapshot"
    for directory in images.REGISTRY_PACKAGES.values():
        shutil.copytree(REPO / directory, root / directory, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", root)
    when = "2026-01-02T03:04:05Z"
    identity = {"GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@localhost", "GIT_AUTHOR_DATE": when,
                "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@localhost", "GIT_COMMITTER_DATE": when}
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, env={**os.environ, **identity})
    return root


def test_registry_image_rebuilt_from_scratch_is_byte_identical(snapshot, tmp_path, monkeypatch):
    """Two builds of the same sources in two caches (other scratch paths, a fresh pip install each) give
    the same archive, byte for byte."""
    monkeypatch.setattr(images, "REPO", snapshot)
    builds = []
    for cache in ("first", "second"):
        monkeypatch.setenv("GREENLANG_CACHE", str(tmp_path / cache))
        builds.append(images.registry_image())
    first, second = builds
    assert first.archive.is_relative_to(tmp_path / "first") and second.archive.is_relative_to(tmp_path / "second")
    assert (first.reference, first.digest) == (second.reference, second.digest)
    assert filecmp.cmp(first.archive, second.archive, shallow=False)


def test_opa_image_rebuilt_from_scratch_has_the_same_digest(opa, tmp_path, monkeypatch):
    (tmp_path / "bin").symlink_to(build.cache_dir() / "bin")  # the same OPA binary, another image cache
    monkeypatch.setenv("GREENLANG_CACHE", str(tmp_path))
    again = images.opa_image()
    assert again.archive.is_relative_to(tmp_path)
    assert (again.reference, again.digest) == (opa.image.reference, opa.image.digest)
