"""The registry's policies: the Rego in this folder, and ``gl_policy``, the engines that evaluate it.

One Rego package per decision, ``greenlang.<decision>``, each with ``deny`` and ``warn`` sets of
messages and ``decision`` (both at once), which is what the engines ask for. The Rego files ship
as package data, so an installed wheel carries its policies; an OPA server loads this folder as
a bundle (``opa run --server --bundle``), ignoring the tests and the Python beside it.
"""

from __future__ import annotations

from pathlib import Path

POLICY_DIR = Path(__file__).resolve().parent
DECISIONS = ("publish", "promotion", "deployment", "status_write", "approval", "images", "tenancy")
ROOT = "greenlang"


def package(decision: str) -> str:
    """The Rego package of a decision, e.g. ``greenlang.publish``."""
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}; one of {', '.join(DECISIONS)}")
    return f"{ROOT}.{decision}"


def policy_files(directory: Path = POLICY_DIR) -> list[Path]:
    """The policies an engine loads: every ``.rego`` file but the tests."""
    return sorted(p for p in directory.rglob("*.rego") if not p.name.endswith("_test.rego"))
