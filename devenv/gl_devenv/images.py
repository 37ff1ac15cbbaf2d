"""Container images built locally as OCI archives, without a daemon or a registry.

For the local node: the pod sandbox (``pause``, a static C program) and ``agent-runtime`` (Debian's
Python 3.11, the runtime's few libraries, ``gl_api`` and ``gl_runtime``). For installing the registry
on a cluster (``make image``, docs/images.md): ``registry`` (the operator, webhooks and mirror) and
``opa`` (the webhooks' sidecar). Each is one deterministic layer: fixed timestamps and owners, sorted
entries, so the same inputs give the same digest. Archives are cached by a key over their inputs and
imported into the node's containerd by the reference they carry (``localhost/greenlang/<name>:<key>``).
"""

from __future__ import annotations

import datetime
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
import tomllib
from dataclasses import dataclass
from pathlib import Path

from gl_devenv import build, versions

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
    """Scratch space for one image build, removed when it is done; one per process, as `make image`,
    `gl-dev up` and the tests may build side by side."""
    return images_dir() / f"work-{os.getpid()}"


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


def _accounts() -> dict[str, Path | bytes]:
    """The non-root user every image runs as, named for tools that look it up."""
    return {"etc/passwd": f"root:x:0:0:root:/root:/sbin/nologin\n"
                          f"nonroot:x:{NONROOT}:{NONROOT}::/tmp:/sbin/nologin\n".encode(),
            "etc/group": f"root:x:0:\nnonroot:x:{NONROOT}:\n".encode()}


def _write_archive(target: Path, reference: str, layer: tuple[bytes, str], config: dict,
                   created: str = "1970-01-01T00:00:00Z") -> str:
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    layer_bytes, diff_id = layer
    layer_desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(layer_bytes)}
    image_config = {"architecture": "amd64", "os": "linux", "created": created, "config": config,
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


def _cached(name: str, key: str, build_files,  # type: ignore[no-untyped-def]
            created: str = "1970-01-01T00:00:00Z") -> Image:
    reference = f"localhost/greenlang/{name}:{key}"
    directory = images_dir()
    directory.mkdir(parents=True, exist_ok=True)
    archive, digest_file = directory / f"{name}-{key}.tar", directory / f"{name}-{key}.digest"
    if not (archive.exists() and digest_file.exists()):
        work = _work_dir()
        try:
            files, directories, config = build_files()
            digest = _write_archive(archive, reference, _layer(files, directories), config, created)
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


def _source_files(package_dir: Path, prefix: str,
                  kinds: tuple[str, ...] = (".py", ".json", ".yaml", ".typed")) -> dict[str, Path]:
    """A package's files of the given suffixes (or names, for dotfiles such as ``.manifest``)."""
    return {f"{prefix}/{p.relative_to(package_dir)}": p for p in sorted(package_dir.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and (p.suffix in kinds or p.name in kinds)}


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
        layer.update(_accounts())
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


# ------------------------------------------------------------------ the registry's own images

# Where the project is published: the images' org.opencontainers.image.source.
SOURCE_URL = "https://github.com/greenlang/greenlang-registry"
# The registry's packages (pyproject's package-dir) and the files each ships (its package-data).
REGISTRY_PACKAGES = {"gl_api": "crds/gl_api", "gl_kube": "crds/gl_kube", "gl_policy": "policies",
                     "gl_operator": "operator/gl_operator", "gl_webhooks": "webhooks/gl_webhooks",
                     "gl_mirror": "operator/gl_mirror"}
PACKAGE_DATA = (".py", ".typed", ".rego", ".sql", ".manifest")
# What those packages import (their import-linter contracts keep this short): pinned, with everything
# they need in turn, to the versions this checkout's venv runs.
REGISTRY_REQUIREMENTS = ("kopf", "kubernetes", "aiohttp", "psycopg[binary]", "psycopg-pool", "opa-python-client",
                         "regopy", "prometheus-client", "pydantic", "pyyaml", "wordllama", "numpy")
# One image, three programs: the chart picks one per Deployment with `command:`.
REGISTRY_COMMANDS = {"gl-operator": "gl_operator.cli", "gl-webhooks": "gl_webhooks.cli", "gl-mirror": "gl_mirror.cli"}
# Debian packages whose files the image may carry beyond the interpreter's own closure: the C++ runtime
# and atomics the manylinux wheels link against (tokenizers, hf-xet), and the CA certificates.
EXTRA_DEBIAN_PACKAGES = ("libgcc-s1", "libstdc++6", "libatomic1", "ca-certificates")
CA_CERTIFICATES = Path("/usr/share/ca-certificates/mozilla")
# numpy's kit for building other extensions against it (a compiler driver, a Fortran wrapper generator,
# C headers, static libraries): the final layer carries no build tools.
NUMPY_BUILD_KIT = ("distutils", "f2py", "_core/include", "_core/lib", "random/lib", "random/_examples")
SBOM_PATH = "usr/share/doc/greenlang-registry/packages.json"
DEBIAN_LABEL = "ai.greenlang.registry.debian-packages"


def _closure(requirements: tuple[str, ...]) -> list[str]:
    """``name==version`` for the requirements and all they depend on (extras and markers evaluated), as
    installed in this checkout's venv: the image runs exactly what the tests run."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    visited: set[tuple[str, str]] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        distribution = metadata.distribution(requirement.name)
        name = canonicalize_name(distribution.metadata["Name"])
        pins[name] = distribution.version
        for extra in ("", *sorted(requirement.extras)):
            if (name, extra) not in visited:
                visited.add((name, extra))
                pending.extend(dependency for dependency in map(Requirement, distribution.requires or [])
                               if dependency.marker is None or dependency.marker.evaluate({"extra": extra}))
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True).stdout.strip()


def _revision(paths: list[str]) -> tuple[str, str]:
    """The commit the image is built from (``-modified`` when its files differ from it) and that commit's
    time: the image's ``created``, so the same commit always gives the same image."""
    commit = _git("rev-parse", "HEAD")
    modified = _git("status", "--porcelain", "--", *paths)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or _git("log", "-1", "--format=%ct", "HEAD"))
    created = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return commit + ("-modified" if modified else ""), created


def _project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def _dpkg_owners() -> dict[str, str]:
    """Every file Debian installed, to the package that owns it (``dpkg -S`` for all files at once)."""
    owners: dict[str, str] = {}
    for listing in Path("/var/lib/dpkg/info").glob("*.list"):
        package = listing.stem.split(":")[0]  # libc6:amd64.list: dpkg-query names it libc6
        for line in listing.read_text(errors="replace").splitlines():
            owners[line] = package
    return owners


def _owner(owners: dict[str, str], path: str, source: Path) -> str | None:
    """The package owning ``path`` (as the image has it) or the host file it was copied from; with Debian's
    merged /usr, dpkg may list a library under /lib while ldd finds it under /usr/lib, or the other way."""
    candidates = [f"/{path}", str(source), str(source.resolve())]
    for candidate in list(candidates):
        if candidate.startswith("/usr/"):
            candidates.append(candidate.removeprefix("/usr"))
        else:
            candidates.append("/usr" + candidate)
    return next((owners[c] for c in candidates if c in owners), None)


def _debian_versions(packages: set[str]) -> dict[str, str]:
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\n", *sorted(packages)],
                            check=True, capture_output=True, text=True)
    return dict(line.split("\t", 1) for line in result.stdout.splitlines())


def _interpreter_packages() -> dict[str, str]:
    """The Debian packages behind the interpreter, its standard library and the libraries they load, with
    versions: part of the image's key, so a Debian security update makes a new image."""
    owners = _dpkg_owners()
    files: dict[str, Path] = _python_files()
    files.update(_shared_libraries([SYSTEM_PYTHON, *(p for p in files.values() if p.suffix == ".so")]))
    packages = {_owner(owners, path, source) for path, source in files.items()} - {None}
    return _debian_versions({*packages, *EXTRA_DEBIAN_PACKAGES})  # type: ignore[arg-type]


def _ca_bundle() -> bytes:
    """Debian's CA certificates, concatenated as update-ca-certificates would, from the package's own files
    (the host's bundle may hold local additions)."""
    return b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in sorted(CA_CERTIFICATES.glob("*.crt")))


def _launcher(module: str) -> bytes:
    # The interpreter itself is the launcher: the image has no shell. -I: only the image's files decide
    # what runs (no PYTHON* variables, no current directory on the path); -B: no bytecode written (the
    # root filesystem is read-only); -u: log lines reach `kubectl logs` as they are written.
    return (f"#!/usr/bin/python3.11 -IBu\nimport sys\n\nfrom {module} import main\n\n"
            f"sys.exit(main())\n").encode()


def registry_image() -> Image:
    """``localhost/greenlang/registry``: the operator, the webhooks and the mirror (with its query API) on
    Debian's Python 3.11, with launchers ``gl-operator``, ``gl-webhooks`` and ``gl-mirror``."""
    requirements = _closure(REGISTRY_REQUIREMENTS)
    sources: dict[str, Path] = {}
    for package, directory in REGISTRY_PACKAGES.items():
        sources.update(_source_files(REPO / directory, f"{DIST_PACKAGES}/{package}", PACKAGE_DATA))
    debian = _interpreter_packages()
    revision, created = _revision([*REGISTRY_PACKAGES.values(), "pyproject.toml"])
    labels = {
        "org.opencontainers.image.title": "greenlang-registry",
        "org.opencontainers.image.description": "GreenLang Agent Registry: the operator (gl-operator), the "
                                                "admission webhooks (gl-webhooks) and the Postgres mirror with "
                                                "its query API (gl-mirror)",
        "org.opencontainers.image.source": SOURCE_URL,
        "org.opencontainers.image.version": _project_version(),
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.created": created,
    }
    key_material = hashlib.sha256()
    # The recipe (this file), the pins, the Debian packages and the labels are inputs as much as the sources.
    for line in [*requirements, *(f"{p}={v}" for p, v in sorted(debian.items())), _python_version(),
                 json.dumps(labels, sort_keys=True), Path(__file__).read_text()]:
        key_material.update(line.encode() + b"\0")
    for path, source in sorted(sources.items()):
        key_material.update(path.encode() + b"\0" + source.read_bytes() + b"\0")
    key = key_material.hexdigest()[:12]

    def files():  # type: ignore[no-untyped-def]
        work = _work_dir()
        site = work / "site-packages"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--no-deps",
                        "--target", str(site), "--only-binary=:all:", *requirements], check=True)
        for kit in NUMPY_BUILD_KIT:
            shutil.rmtree(site / "numpy" / kit)
        layer: dict[str, Path | bytes] = {}
        layer.update(_python_files())
        layer.update({f"{DIST_PACKAGES}/{p.relative_to(site)}": p for p in sorted(site.rglob("*"))
                      if p.is_file() and "__pycache__" not in p.parts and p.relative_to(site).parts[0] != "bin"})
        layer.update(sources)
        for command, module in REGISTRY_COMMANDS.items():
            launcher = work / command
            launcher.write_bytes(_launcher(module))
            launcher.chmod(0o755)
            layer[f"usr/local/bin/{command}"] = launcher
        libraries = [p for p in layer.values() if isinstance(p, Path) and (p.suffix == ".so" or ".so." in p.name
                                                                           or p == SYSTEM_PYTHON.resolve())]
        layer.update(_shared_libraries(libraries))
        layer["etc/ssl/certs/ca-certificates.crt"] = _ca_bundle()
        layer.update(_accounts())
        # What the image is made of, for scanners and people: the Debian packages its files come from
        # (our answer to "a base image pinned by digest") and the Python distributions.
        owners = _dpkg_owners()
        used = {_owner(owners, path, source) for path, source in layer.items() if isinstance(source, Path)
                and not source.is_relative_to(work) and not source.is_relative_to(REPO)} - {None}
        unknown = used - set(debian)
        if unknown:
            raise RuntimeError(f"the registry image would carry files of Debian packages {sorted(unknown)} that "
                               f"its key does not cover: add them to EXTRA_DEBIAN_PACKAGES in {__file__}")
        packages = {p: v for p, v in debian.items() if p in used or p == "ca-certificates"}
        layer[SBOM_PATH] = json.dumps({
            "debian": {"release": Path("/etc/debian_version").read_text().strip(), "packages": packages},
            "python": dict(r.split("==", 1) for r in requirements),
        }, indent=2, sort_keys=True).encode() + b"\n"
        config = {
            # No entrypoint: the chart runs one program per Deployment (`command: [gl-operator]`, found on
            # PATH); run bare, the image says what it is.
            "Cmd": ["/usr/local/bin/gl-operator", "--help"],
            "User": f"{NONROOT}:{NONROOT}", "WorkingDir": "/tmp",
            "Env": ["PATH=/usr/local/bin:/usr/bin", "HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1",
                    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
            "Labels": {**labels, DEBIAN_LABEL: " ".join(f"{p}={v}" for p, v in sorted(packages.items()))},
        }
        return layer, {"tmp"}, config

    return _cached("registry", key, files, created)


def opa_image() -> Image:
    """``localhost/greenlang/opa``: the webhooks' OPA sidecar, the static binary from the tool cache alone."""
    opa = build.binary("opa")
    labels = {
        "org.opencontainers.image.title": "opa",
        "org.opencontainers.image.description": "Open Policy Agent, built from its Go module for the "
                                                "GreenLang registry's webhooks (their policy sidecar)",
        "org.opencontainers.image.source": "https://github.com/open-policy-agent/opa",
        "org.opencontainers.image.version": versions.OPA,
        "org.opencontainers.image.revision": versions.OPA,
        "org.opencontainers.image.licenses": "Apache-2.0",
        # A rebuild of a pinned release: no commit of ours to date it by.
        "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
    }
    key_material = hashlib.sha256(opa.read_bytes())
    key_material.update(json.dumps(labels, sort_keys=True).encode() + Path(__file__).read_bytes())
    key = key_material.hexdigest()[:12]

    def files():  # type: ignore[no-untyped-def]
        config = {"Entrypoint": ["/usr/bin/opa"], "User": f"{NONROOT}:{NONROOT}", "WorkingDir": "/tmp",
                  "Env": ["HOME=/tmp"], "Labels": labels}
        return {"usr/bin/opa": opa, **_accounts()}, {"tmp"}, config

    return _cached("opa", key, files)


def main() -> int:
    """`make image`: build the registry's images and say where they are."""
    for image in (registry_image(), opa_image()):
        print(f"{image.reference}\n  digest  {image.digest}\n  archive {image.archive}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
