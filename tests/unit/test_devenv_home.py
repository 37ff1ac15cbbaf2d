"""Where `gl-dev` keeps its stack: one per checkout, found from any directory; another stack is named.

Nothing is started: the stacks here are state directories whose pid files name a `sleep` process.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gl_devenv import cli, cluster, node

REPO = Path(__file__).resolve().parents[2]


def _gl_dev(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "GL_DEV_HOME"} | env
    return subprocess.run([sys.executable, "-m", "gl_devenv.cli", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=60)


def test_the_home_is_the_checkouts_from_any_directory(tmp_path):
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    for directory in (REPO, elsewhere):
        assert _gl_dev("kubeconfig", cwd=directory).stdout.strip() == str(REPO / ".gl-dev" / "kubeconfig")
    assert not (elsewhere / ".gl-dev").exists()
    # $GL_DEV_HOME and --home still choose; relative ones are made absolute, so the exports hold anywhere.
    assert _gl_dev("kubeconfig", cwd=elsewhere, GL_DEV_HOME="mine").stdout.strip() == \
        str(elsewhere / "mine" / "kubeconfig")
    assert _gl_dev("--home", "x", "kubeconfig", cwd=elsewhere).stdout.strip() == str(elsewhere / "x" / "kubeconfig")


@pytest.fixture
def other_stack(tmp_path, monkeypatch):
    """A stack 'running' from another checkout with the real node: its pid files name a live process."""
    home = tmp_path / "other-checkout" / ".gl-dev"
    (home / "run").mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    for name in (*cluster.COMPONENTS, *node.COMPONENTS):
        (home / "run" / f"{name}.pid").write_text(str(sleeper.pid))
    owner = tmp_path / "greenlang-node.owner"
    owner.write_text(f"{home}\n")
    monkeypatch.setattr(node, "OWNER_FILE", owner)  # the machine's real file is left alone
    yield home
    sleeper.kill()
    sleeper.wait()


def test_a_stack_running_elsewhere_is_found_and_named(other_stack, tmp_path, monkeypatch, capsys):
    mine = tmp_path / "this-checkout" / ".gl-dev"
    monkeypatch.chdir(tmp_path)
    assert cli.running_elsewhere(mine) == (other_stack, True)
    assert cli.running_elsewhere(other_stack) is None  # its own stack is not "elsewhere"
    assert cli.main(["--home", str(mine), "status"]) == 1  # this one is not running
    said = capsys.readouterr().out
    assert f"home                     {mine}\n" in said
    assert f"another stack is running from {other_stack} (with the real node)" in said


def test_a_stack_in_the_old_per_directory_home_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(node, "OWNER_FILE", tmp_path / "no-owner")
    old = tmp_path / ".gl-dev"
    (old / "run").mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        for name in cluster.COMPONENTS:
            (old / "run" / f"{name}.pid").write_text(str(sleeper.pid))
        monkeypatch.chdir(tmp_path)
        assert cli.running_elsewhere(REPO / ".gl-dev") == (old, False)
    finally:
        sleeper.kill()
        sleeper.wait()
