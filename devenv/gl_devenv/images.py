"""Container images built locally as OCI archives, without a daemon or a registry.

Two images: the pod sandbox (``pause``, a static C program) and ``agent-runtime`` (Debian's
Python 3.11, the runtime's few libraries, ``gl_api`` and ``gl_runtime``). Each is one
deterministic layer: fixed timestamps and owners, sorted entries, so the same inputs give the
same digest. Archives are cached by a key over their inputs and imported into the node's
containerd by the reference they carry (``localhost/greenlang/<name>:<key>``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from gl_devenv import build

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3.11")
NONROOT = 65532
# Where Debian's interpreter finds packages even in isolated mode (-I).
DIST_PACKAGES = "usr/lib/python3/dist-packages"
# What gl_runtime imports (see its import-linter contract); pinned to the venv's versions below.
RUNTIME_REQUIREMENTS = ("aiohttp", "jsonschema", "prometheus-client", "boto3", "pydantic", "pyyaml")
# Parts of the standard library an agent runtime never needs.
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "unittest",
               "distutils", "venv", "__pycache__", "config-3.11-x86_64-linux-gnu", "site-packages", "dist-packages"}
PAUSE_SOURCE = r"""
/* The pod sandbox's process: hold the namespaces, reap orphans, exit on TERM/INT. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
    signal(SIGTERM, stop); signal(SIGINT, stop); signal(SIGCHLD, reap);
    for (;;) pause();
}
"""


@dataclass(frozen=True)
class Image:
    name: str
    reference: str  # localhost/greenlang/<name>:<key>
    archive: Path   # OCI image layout as a tar, ready for `ctr images import`
    digest: str     # the manifest's sha256, for pinning

    @property
    def pinned(self) -> str:
        """The reference pinned by digest, ``localhost/greenlang/<name>@sha256:…``: what the operator runs
        and the image guard recognises (containerd resolves it from the imported image)."""
        repository = self.reference.rsplit(":", 1)[0] if ":" in self.reference.rsplit("/", 1)[-1] else self.reference
        return f"{repository}@{self.digest}"


def images_dir() -> Path:
    return build.cache_dir() / "images"


def _work_dir() -> Path:
    """Scratch space for one image build, removed when it is done."""
    return images_dir() / "work"


# ------------------------------------------------------------------ OCI archive


def _layer(files: dict[str, Path | bytes], directories: set[str]) -> tuple[bytes, str]:
    """A gzipped tar of ``files`` (archive path → source file or bytes), reproducible byte for byte,
    and the sha256 of the uncompressed tar (the layer's diff id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = sorted({*directories, *(p for path in files for p in _parents(path))} | set(files))
        for path in entries:
            info = tarfile.TarInfo(path)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            source = files.get(path)
            if source is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                if path == "tmp":
                    info.mode = 0o1777
                tar.addfile(info)
            elif isinstance(source, bytes):
                info.size, info.mode = len(source), 0o644
                tar.addfile(info, io.BytesIO(source))
            elif source.is_symlink() and not source.resolve().is_file():
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(source), 0o777
                tar.addfile(info)
            else:
                data = source.read_bytes()
                info.size, info.mode = len(data), (0o755 if os.access(source, os.X_OK) else 0o644)
                tar.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return compressed.getvalue(), hashlib.sha256(raw.getvalue()).hexdigest()


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _write_archive(target: Path, reference: str, layer: tuple[bytes, str], config: dict) -> str:
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    layer_bytes, diff_id = layer
    layer_desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(layer_bytes)}
    image_config = {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z", "config": config,
                    "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]}}
    config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json",
                   **blob(json.dumps(image_config, sort_keys=True).encode())}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": [layer_desc]}
    manifest_desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                     **blob(json.dumps(manifest, sort_keys=True).encode()),
                     "annotations": {"org.opencontainers.image.ref.name": reference,
                                     "io.containerd.image.name": reference}}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_desc]}
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add("index.json", json.dumps(index, sort_keys=True).encode())
        for digest, data in sorted(blobs.items()):
            add(f"blobs/sha256/{digest.removeprefix('sha256:')}", data)
    partial.rename(target)
    return manifest_desc["digest"]


def _cached(name: str, key: str, build_files) -> Image:  # type: ignore[no-untyped-def]
    reference = f"localhost/greenlang/{name}:{key}"
    directory = images_dir()
    directory.mkdir(parents=True, exist_ok=True)
    archive, digest_file = directory / f"{name}-{key}.tar", directory / f"{name}-{key}.digest"
    if not (archive.exists() and digest_file.exists()):
        work = _work_dir()
        try:
            files, directories, config = build_files()
            digest = _write_archive(archive, reference, _layer(files, directories), config)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        digest_file.write_text(digest)
        for stale in directory.glob(f"{name}-*"):
            if key not in stale.name:
                stale.unlink()
    return Image(name, reference, archive, digest_file.read_text().strip())


# ------------------------------------------------------------------ the images


def pause_image() -> Image:
    key = hashlib.sha256(PAUSE_SOURCE.encode()).hexdigest()[:12]

    def files():  # type: ignore[no-untyped-def]
        work = _work_dir()
        work.mkdir(parents=True, exist_ok=True)
        (work / "pause.c").write_text(PAUSE_SOURCE)
        subprocess.run(["cc", "-static", "-Os", "-s", "-o", str(work / "pause"), str(work / "pause.c")], check=True)
        return {"pause": work / "pause"}, set(), {"Entrypoint": ["/pause"], "User": f"{NONROOT}:{NONROOT}"}

    return _cached("pause", key, files)


def _pinned_requirements() -> list[str]:
    """The runtime's libraries at the versions this checkout's venv runs, so image and tests agree."""
    from importlib import metadata

    return [f"{name}=={metadata.version(name)}" for name in RUNTIME_REQUIREMENTS]


def _source_files(package_dir: Path, prefix: str) -> dict[str, Path]:
    return {f"{prefix}/{p.relative_to(package_dir)}": p for p in sorted(package_dir.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".json", ".yaml", ".typed")}


def runtime_image() -> Image:
    requirements = _pinned_requirements()
    sources = {**_source_files(REPO / "crds" / "gl_api", f"{DIST_PACKAGES}/gl_api"),
               **_source_files(REPO / "runtime" / "gl_runtime", f"{DIST_PACKAGES}/gl_runtime")}
    key_material = hashlib.sha256()
    # The image's own recipe (this file) is an input too: a changed layout or config is a new image.
    for line in [*requirements, str(SYSTEM_PYTHON.resolve()), _python_version(), Path(__file__).read_text()]:
        key_material.update(line.encode() + b"\0")
    for path, source in sorted(sources.items()):
        key_material.update(path.encode() + b"\0" + source.read_bytes() + b"\0")
    key = key_material.hexdigest()[:12]

    def files():  # type: ignore[no-untyped-def]
        site = _work_dir() / "site-packages"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(site),
                        "--only-binary=:all:", *requirements], check=True)
        _prune_botocore(site)
        layer: dict[str, Path | bytes] = {}
        layer.update(_python_files())
        layer.update({f"{DIST_PACKAGES}/{p.relative_to(site)}": p for p in sorted(site.rglob("*"))
                      if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".dist-info")
                      and "/bin/" not in f"/{p.relative_to(site)}"})
        layer.update(sources)
        libraries = [p for p in layer.values() if isinstance(p, Path) and (p.suffix == ".so" or ".so." in p.name
                                                                           or p == SYSTEM_PYTHON)]
        layer.update(_shared_libraries(libraries))
        layer["etc/passwd"] = f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{NONROOT}:{NONROOT}::/tmp:/sbin/nologin\n".encode()
        layer["etc/group"] = f"root:x:0:\nnonroot:x:{NONROOT}:\n".encode()
        config = {
            # Isolated (-I): no PYTHON* variable, no current directory and no user site on the path,
            # so nothing but the image's own files decides what runs; -B -u as the env would have.
            "Entrypoint": ["/usr/bin/python3.11", "-I", "-B", "-u", "-m", "gl_runtime.cli"],
            "User": f"{NONROOT}:{NONROOT}", "WorkingDir": "/",
            "Env": ["HOME=/tmp", "PATH=/usr/bin"],
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.opencontainers.image.title": "greenlang agent runtime"},
        }
        return layer, {"tmp"}, config

    return _cached("agent-runtime", key, files)


def _python_version() -> str:
    return subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version)"], check=True,
                          capture_output=True, text=True).stdout.strip()


def _python_files() -> dict[str, Path]:
    """Debian's interpreter and the standard library it needs, at the paths it expects."""
    stdlib = Path(subprocess.run([str(SYSTEM_PYTHON), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    files: dict[str, Path] = {"usr/bin/python3.11": SYSTEM_PYTHON.resolve()}
    for path in sorted(stdlib.rglob("*")):
        relative = path.relative_to(stdlib)
        if path.is_file() and not (set(relative.parts) & STDLIB_SKIP):
            files[f"{str(stdlib).lstrip('/')}/{relative}"] = path
    return files


def _shared_libraries(binaries: list[Path]) -> dict[str, Path]:
    """Every shared library the interpreter and the extension modules link against (ldd), at its path."""
    found: dict[str, Path] = {}
    for chunk in range(0, len(binaries), 200):
        result = subprocess.run(["ldd", *map(str, binaries[chunk:chunk + 200])], capture_output=True, text=True)
        for match in re.finditer(r"(?:=>\s*)?(/\S+\.so[\w.]*)\s+\(0x", result.stdout):
            library = Path(match.group(1))
            if library.exists() and not str(library).startswith(str(images_dir())):
                found[str(library).lstrip("/")] = library.resolve()
    return found


def _prune_botocore(site: Path) -> None:
    """botocore ships models for 400 services; the runtime only talks to S3."""
    data = site / "botocore" / "data"
    if data.is_dir():
        for service in data.iterdir():
            if service.is_dir() and service.name not in ("s3", "sts"):
                shutil.rmtree(service)


def all_images() -> list[Image]:
    return [pause_image(), runtime_image()]
