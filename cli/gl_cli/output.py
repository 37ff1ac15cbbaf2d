"""Render results: lists as kubectl prints them (plain columns, default), or JSON/YAML with a stable
shape for scripts. rich is loaded only for what needs it (detail views, progress bars, errors).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

FORMATS = ("table", "json", "yaml")
COLUMN_GAP = "   "  # kubectl's tabwriter pads columns with three spaces


class _Console:
    """A rich Console made on first use: importing rich costs a list command more than its request."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """The Console itself, for rich's own classes (Progress, Live) that draw on one."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


out = _Console(stderr=False)
err = _Console(stderr=True)


def escape(text: str) -> str:
    """Text shown through rich markup as it is (a name like ``[prod]`` is not a style)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def emit(rows: list[dict[str, Any]], columns: list[tuple[str, str]], output: str, title: str | None = None,
         kind: str = "List") -> None:
    """``rows`` are plain dicts; ``columns`` map headings to keys for the table view. A ``title``
    (what the rows are, when the command line does not say it) goes on the line above the table."""
    if output == "json":
        typer.echo(json.dumps({"kind": kind, "items": rows}, indent=2, default=str))
    elif output == "yaml":
        import yaml  # only for -o yaml: not at start-up

        typer.echo(yaml.safe_dump({"kind": kind, "items": rows}, sort_keys=False, default_flow_style=False))
    elif not rows:
        print("No resources found.", file=sys.stderr)  # as kubectl says it, on stderr: stdout stays empty
    else:
        if title:
            print(title)
        sys.stdout.write(columns_text([heading.upper() for heading, _ in columns],
                                      [[_cell(row.get(key)) for _, key in columns] for row in rows]))


def columns_text(headings: list[str], cells: list[list[str]]) -> str:
    """Aligned columns as `kubectl get` prints them: each as wide as its longest cell, no borders."""
    widths = [max(len(line[i]) for line in (headings, *cells)) for i in range(len(headings))]
    return "".join(COLUMN_GAP.join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() + "\n"
                   for line in (headings, *cells))


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
        return ",".join(str(v) for v in value)  # kubectl joins lists with commas, no spaces: one column per cell
    return str(value).replace("\n", " ")


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
