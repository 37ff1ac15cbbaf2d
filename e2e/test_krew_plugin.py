"""`kubectl gl` installed by a real krew from the project's manifest, as a user installs it.

krew is built from its Go module (sigs.k8s.io/krew) at the pinned version; it installs from the
manifest with the locally built archive (`--archive`, no download), checks the archive's sha256
against the manifest, and the plugin then answers through kubectl.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gl_devenv import build, krew


def test_krew_installs_kubectl_gl_from_the_manifest_and_kubectl_runs_it(tmp_path):
    build.ensure(("krew",))
    archive = tmp_path / krew.archive_name()
    archive.write_bytes(krew.archive_bytes())
    root = tmp_path / "krew-root"
    # kubectl finds plugins on PATH; the launcher finds `gl` of the installed package (this venv's).
    env = {**os.environ, "KREW_ROOT": str(root),
           "PATH": f"{root / 'bin'}:{build.binary('kubernetes', 'kubectl').parent}:{Path(sys.executable).parent}:"
                   "/usr/bin:/bin"}
    installed = subprocess.run([str(build.binary("krew")), "install", f"--manifest={krew.MANIFEST}",
                                f"--archive={archive}"], capture_output=True, text=True, env=env, timeout=120)
    assert installed.returncode == 0, installed.stderr
    assert "Installed plugin: gl" in installed.stderr + installed.stdout

    plugins = subprocess.run(["kubectl", "plugin", "list"], capture_output=True, text=True, env=env)
    assert str(root / "bin" / "kubectl-gl") in plugins.stdout
    helped = subprocess.run(["kubectl", "gl", "agent", "promote", "--help"], capture_output=True, text=True, env=env)
    assert helped.returncode == 0, helped.stderr
    assert "gl agent promote gl-cbam-calculator-v2@2.3.1 --to experimental" in helped.stdout

    # An archive that is not the one the manifest names is refused: its sha256 differs.
    tampered = tmp_path / "tampered" / krew.archive_name()
    tampered.parent.mkdir()
    tampered.write_bytes(krew.archive_bytes() + b"\0")
    # (a root of its own: `krew uninstall` wants the plugin index, which needs the network)
    refused = subprocess.run([str(build.binary("krew")), "install", f"--manifest={krew.MANIFEST}",
                              f"--archive={tampered}"], capture_output=True, text=True, timeout=120,
                             env={**env, "KREW_ROOT": str(tmp_path / "other-root")})
    assert refused.returncode != 0 and "checksum does not match" in refused.stderr, refused.stderr


def test_without_the_package_the_launcher_says_how_to_install_it(tmp_path):
    launcher = tmp_path / "kubectl-gl"
    launcher.write_bytes(krew.LAUNCHER.read_bytes())
    launcher.chmod(0o755)
    result = subprocess.run([str(launcher), "--help"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 127 and "pip install greenlang-registry" in result.stderr
