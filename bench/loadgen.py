"""The compiled load generator (``bench/loadgen/main.go``): built once per source into the shared cache.

Python's asyncio client spends about a third of a millisecond of CPU per request, which on a
two-core machine caps it near the rates the seed asks for; the Go client spends a few
microseconds, and reports what it spent, so a throughput figure is the server's, not the client's.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from gl_devenv import build, certs
from gl_devenv.cluster import LocalCluster

SOURCE = Path(__file__).resolve().parent / "loadgen"


def binary() -> Path:
    """The load generator for the current source, built with the local Go toolchain if not cached."""
    key = hashlib.sha256(b"".join((SOURCE / name).read_bytes() for name in ("go.mod", "main.go"))).hexdigest()[:12]
    target = build.cache_dir() / "bin" / f"loadgen-{key}"
    if not (target / build.STAMP).exists():
        if shutil.which("go") is None:
            raise RuntimeError("the Go toolchain is needed to build bench/loadgen: install Go (https://go.dev/doc/install)")
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        subprocess.run(["go", "build", "-trimpath", "-o", str(staging / "loadgen"), "."], cwd=SOURCE, check=True,
                       env=build.go_env())
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        (target / build.STAMP).write_text("ok\n")
    return target / "loadgen"


def run(cluster: LocalCluster, path: str, *, concurrency: int, seconds: float, method: str = "GET",
        body_file: Path | None = None, start: int = 0, modulo: int = 0, warmup: float = 1.0,
        requests: int = 0) -> dict[str, Any]:
    """One closed-loop run as the cluster admin (for ``seconds``, or ``requests`` in all); loadgen's figures."""
    pki = certs.ensure_pki(cluster.pki_dir)
    argv = [str(binary()), "-server", cluster.server, "-ca", str(pki.ca.cert), "-cert", str(pki.admin.cert),
            "-key", str(pki.admin.key), "-method", method, "-path", path, "-concurrency", str(concurrency),
            "-duration", f"{seconds}s", "-warmup", f"{warmup}s", "-start", str(start), "-modulo", str(modulo), "-requests", str(requests)]
    if body_file is not None:
        argv += ["-body", str(body_file)]
    result = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(result.stdout)
