"""An installed wheel carries everything the components read at run time: the policies, every model."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_the_policies_and_every_model_module(tmp_path):
    leftover = not (REPO / "build").exists()  # setuptools builds in the tree; leave it as we found it
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "--wheel-dir", str(tmp_path), str(REPO)], check=True, capture_output=True)
    finally:
        if leftover:
            shutil.rmtree(REPO / "build", ignore_errors=True)
    (wheel,) = tmp_path.glob("*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    policies = {f"gl_policy/{p.relative_to(REPO / 'policies')}" for p in (REPO / "policies").rglob("*.rego")}
    assert policies and policies <= shipped, sorted(policies - shipped)
    assert "gl_policy/.manifest" in shipped
    models = {f"gl_api/models/{p.name}" for p in (REPO / "crds" / "gl_api" / "models").glob("*.py")}
    assert models <= shipped, sorted(models - shipped)


def test_the_policy_revision_is_regenerated_after_every_policy_change():
    from gl_policy import POLICY_DIR, REVISION_FILE, revision_module
    assert (POLICY_DIR / REVISION_FILE).read_text() == revision_module(), \
        "policies changed since policies/meta/revision.rego was written: run `python -m gl_policy.revision`"
