"""`gl` starts fast because it imports only what a command uses (issue 13: `gl --help` < 300 ms).

Not a timed test: the time went on importing the kubernetes client, pydantic models, boto3 and
the policy engine, so these tests check which modules a fresh interpreter has loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

# What made `gl --help` take seconds; none of them is needed to print help or to read objects.
# (Typer itself imports pydantic to convert a subcommand's parameters, so only `gl --help` is free of it.)
HEAVY = ("kubernetes", "boto3", "botocore", "psycopg", "gl_api.models", "gl_api.kinds", "gl_kube", "gl_policy",
         "regopy", "rich.progress")


def loaded(*argv: str, code: str = "from gl_cli.main import main; main()") -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The modules a fresh `gl ARGV...` had imported when it exited, and how it ended."""
    probe = ("import atexit, json, sys\n"
             "atexit.register(lambda: sys.__stderr__.write('MODULES ' + json.dumps(sorted(sys.modules)) + '\\n'))\n"
             f"sys.argv = ['gl', *{list(argv)!r}]\n{code}\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "KUBECONFIG": "/nonexistent/config"})
    line = next(line for line in run.stderr.splitlines() if line.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES "))), run


def imported(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_importing_the_cli_loads_no_heavy_module():
    modules, run = loaded(code="import gl_cli.main")
    assert run.returncode == 0, run.stderr
    assert imported(modules, (*HEAVY, "pydantic")) == []
    modules, run = loaded("--help")
    assert run.returncode == 0 and "Usage" in run.stdout, run.stderr
    assert imported(modules, (*HEAVY, "pydantic")) == []


def test_help_loads_no_heavy_module():
    for argv in (["agent", "--help"], ["agent", "publish", "--help"], ["audit", "query", "--help"]):
        modules, run = loaded(*argv)
        assert run.returncode == 0 and "Usage" in run.stdout, run.stderr
        assert imported(modules, HEAVY) == [], argv


def test_read_commands_load_neither_the_official_client_nor_the_models(tmp_path):
    # A kubeconfig naming a server nobody listens on: each command gets as far as its request.
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
        "clusters": [{"name": "nowhere", "cluster": {"server": "http://127.0.0.1:9"}}],
        "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}],
        "users": [{"name": "nobody", "user": {"token": "t"}}]}))
    for argv in (["agent", "list", "-A"], ["agent", "get", "x"], ["agent", "search", "carbon"], ["tenant", "list"]):
        modules, run = loaded(*argv, "--kubeconfig", str(kubeconfig))
        assert run.returncode == 1 and "cannot reach the API server http://127.0.0.1:9" in run.stderr, run.stderr
        assert imported(modules, HEAVY) == [], argv


def test_the_clis_resources_are_the_registrys_kinds():
    from gl_api import kinds
    from gl_cli import kube

    for name in ("AGENT", "AGENT_VERSION", "PROMOTION", "AGENT_DEPLOYMENT", "TENANT_POLICY"):
        kind, served = getattr(kinds, name), getattr(kube, name)
        assert (served.plural, served.namespaced) == (kind.plural, kind.namespaced), name


def test_no_kubeconfig_is_named_as_such():
    modules, run = loaded("agent", "list", "-A")
    assert run.returncode == 2 and "no usable kubeconfig" in run.stderr and "KUBECONFIG" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def _tree(argv: list[str]) -> dict[str, set[str]]:
    """Noun -> command names, as click sees the app `gl ARGV...` builds."""
    import typer.main

    from gl_cli.main import reachable

    root = typer.main.get_command(reachable(argv))
    return {noun: set(group.commands) for noun, group in root.commands.items()}  # type: ignore[attr-defined]


def test_a_command_line_builds_only_the_command_it_names_and_help_builds_them_all():
    everything = _tree(["--help"])
    assert set(everything) == {"agent", "audit", "tenant", "slo"}
    assert {"list", "get", "publish", "search", "promote", "promotion-status", "check", "metrics"} <= everything["agent"]
    assert _tree([]) == _tree(["agent", "--help"]) | {k: v for k, v in everything.items() if k != "agent"}
    for noun, commands in everything.items():
        for command in commands:
            built = _tree([noun, command, "--help"])
            assert list(built) == [noun] and command in built[noun], (noun, command)
    assert _tree(["agent", "list", "-A"]) == {"agent": {"list"}}
    assert _tree(["agent", "lst"]) == {"agent": everything["agent"]}  # a typo still gets suggestions from all


def test_a_command_line_imports_only_the_module_of_the_command_it_names():
    commands = ("gl_cli.agents", "gl_cli.promotions", "gl_cli.invoke", "gl_cli.usage", "gl_cli.agent_check",
                "gl_cli.audit", "gl_cli.tenants", "gl_cli.slo")
    modules, _ = loaded("agent", "list", "-A")
    assert imported(modules, commands) == ["gl_cli.agents"]
    modules, _ = loaded("tenant", "list")
    assert imported(modules, commands) == ["gl_cli.tenants"]
    modules, run = loaded("--help")
    assert run.returncode == 0 and imported(modules, commands) == sorted(commands)
