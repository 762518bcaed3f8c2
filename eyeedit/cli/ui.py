"""Terminal output shared by the CLI commands: one console, progress bars, tables, errors."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

# Progress and messages go to stderr so that stdout stays clean for tables and --json output.
console = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False)


def fail(message: str) -> NoReturn:
    """Stop the command with a one-line error and exit status 1."""
    raise click.ClickException(message)


class RateColumn(ProgressColumn):
    """Items per second, e.g. ``23.4 pairs/s``."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} {self.unit}/s" if speed else f"- {self.unit}/s", style="cyan")


def warn(message: str, label: str = "skipped") -> None:
    """One line on stderr, never wrapped, so it can be grepped: ``skipped <path>: <reason>``."""
    console.print(f"[yellow]{label}[/] {escape(message)}", soft_wrap=True)


def progress(unit: str = "items") -> Progress:
    """A progress bar with count, rate in ``unit``/s, elapsed and remaining time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def files_table(title: str, files: Iterable[Path]) -> None:
    """Print the written files as a one-column table."""
    table = Table(title=title)
    table.add_column("file", overflow="fold")  # a path is wrapped, never cut short
    for f in files:
        table.add_row(str(f))
    out.print(table)


def dataset_summary(title: str, rows: list[tuple[str, int]], unit: str, root: Path,
                    counts: dict[str, int]) -> None:
    """The closing table of `prepare` and `synth`: records per status, then the split sizes."""
    table = Table(title=title)
    table.add_column("status")
    table.add_column(unit, justify="right")
    for status, count in rows:
        table.add_row(status, str(count))
    out.print(table)
    console.print(f"{counts['train']} train + {counts['val']} val pairs; details in {root / 'report.csv'}")


def note_shadowing(installed: Path) -> None:
    """Say so when a model just installed in the user store replaces a shipped one."""
    from eyeedit.model.store import shipped_model  # here: ui stays free of the image libraries

    if shipped_model(installed.stem) is not None:
        warn(f"{installed}: --effect {installed.stem} now uses this model instead of the one shipped "
             f"with eyeedit (`eyeedit models` lists both); delete the file to go back", label="note")
