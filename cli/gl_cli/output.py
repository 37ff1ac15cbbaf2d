"""Render results as a rich table (default) or as JSON/YAML with a stable shape for scripts."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

out = Console()
err = Console(stderr=True)
FORMATS = ("table", "json", "yaml")


def emit(rows: list[dict[str, Any]], columns: list[tuple[str, str]], output: str, title: str | None = None,
         kind: str = "List") -> None:
    """``rows`` are plain dicts; ``columns`` map headings to keys for the table view."""
    if output == "json":
        typer.echo(json.dumps({"kind": kind, "items": rows}, indent=2, default=str))
    elif output == "yaml":
        import yaml  # only for -o yaml: not at start-up

        typer.echo(yaml.safe_dump({"kind": kind, "items": rows}, sort_keys=False, default_flow_style=False))
    else:
        table = Table(title=title)
        for heading, _ in columns:
            table.add_column(heading)
        for row in rows:
            table.add_row(*[escape(_cell(row.get(key))) for _, key in columns])
        out.print(table)
        if not rows:
            err.print("no results", style="dim")


def emit_object(obj: dict[str, Any], output: str) -> None:
    if output == "yaml":
        import yaml

        typer.echo(yaml.safe_dump(obj, sort_keys=False))
    else:
        typer.echo(json.dumps(obj, indent=2, default=str))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
