"""The `gl` command (also `kubectl gl`): the root app with each noun's commands, and its entry point."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from gl_cli import agent_check, agents, audit, invoke, promotions, slo, tenants, usage
from gl_cli.app import app

agent = typer.Typer(no_args_is_help=True, help="Agents and their versions.")
for part in (agents, promotions, invoke, usage, agent_check):  # in the order `gl agent --help` lists them
    agent.add_typer(part.commands)
app.add_typer(agent, name="agent")
app.add_typer(audit.commands, name="audit")
app.add_typer(tenants.commands, name="tenant")
app.add_typer(slo.commands, name="slo")


def main() -> None:
    app(prog_name="kubectl gl" if Path(sys.argv[0]).name.startswith("kubectl-") else "gl")
