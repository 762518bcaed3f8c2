"""`eyeedit demo`: every effect on the sample face, as a grid and a web page."""

from __future__ import annotations

from pathlib import Path

import click

from eyeedit.cli.options import write_failures
from eyeedit.cli.ui import console, fail, files_table
from eyeedit.demo import run_demo


@click.command()
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo"), show_default=True, help="Folder for the demo outputs.")
def demo(out_dir: Path) -> None:
    """Run the pipeline on the bundled sample face (the astronaut) and write the results.

    Writes the aligned crops of each region, a landmark overlay, the photo edited by every
    available effect model, a grid of them (grid.png) and a page showing it all (index.html).
    """
    try:
        with write_failures(out_dir):
            result = run_demo(out_dir)
    except RuntimeError as exc:
        fail(str(exc))
    files_table("Demo outputs", result.files)
    shown = ", ".join(result.effects) if result.effects else "no effect models installed yet"
    console.print(f"Effects: {shown}. Open [bold]{result.index}[/] to see everything "
                  f"(grid: {result.grid}).")
