"""The `gl` command (also `kubectl gl`): the root app with each noun's commands, and its entry point."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer
from typer.main import get_command_name
from typer.models import CommandInfo

# Each noun, the help of its group (None: its first module's group has it), and the modules whose
# commands it holds, in the order `gl NOUN --help` lists them. A module is imported only when the
# command line may need it: `gl agent list` imports gl_cli.agents alone (docs/benchmarks.md, cli-startup).
NOUNS: dict[str, tuple[str | None, list[str]]] = {
    "agent": ("Agents and their versions.", ["agents", "promotions", "invoke", "usage", "agent_check"]),
    "audit": (None, ["audit"]),
    "tenant": (None, ["tenants"]),
    "slo": (None, ["slo"]),
}


def command_name(info: CommandInfo) -> str:
    return info.name or get_command_name(info.callback.__name__ if info.callback else "")


def _commands(module: str) -> typer.Typer:
    return importlib.import_module(f"gl_cli.{module}").commands


def reachable(argv: list[str]) -> typer.Typer:
    """The root app with the commands this command line can reach.

    typer turns the signature of every registered command into click parameters on each run,
    about 2 ms a command and most of `gl agent list`'s own time (docs/benchmarks.md, cli-startup).
    A command line that names its noun and command gets that command alone, its noun's modules
    imported in order until one holds it; any other (help, a typo, an unknown noun) gets every
    command, so help and suggestions stay complete.
    """
    root = typer.Typer(name="gl", rich_markup_mode="rich", no_args_is_help=True,
                       context_settings={"help_option_names": ["-h", "--help"]},
                       help="GreenLang Agent Registry: publish, promote and govern agents on Kubernetes.")
    noun, verb = (argv + ["", ""])[:2]
    for name, (help_text, modules) in NOUNS.items():
        if noun in NOUNS and noun != name:
            continue
        parts: list[typer.Typer] = []
        named: list[CommandInfo] = []
        for module in modules:
            parts.append(_commands(module))
            if noun == name:
                named = [info for info in parts[-1].registered_commands if command_name(info) == verb]
                if named:
                    break
        group = typer.Typer(no_args_is_help=True, help=help_text or parts[0].info.help)
        group.registered_commands.extend(named or [info for part in parts for info in part.registered_commands])
        root.add_typer(group, name=name)
    return root


def main() -> None:
    reachable(sys.argv[1:])(prog_name="kubectl gl" if Path(sys.argv[0]).name.startswith("kubectl-") else "gl")
