"""`eyeedit samples`: sample faces made from the bundled public-domain astronaut."""

from __future__ import annotations

from pathlib import Path

import click

from eyeedit.cli.ui import fail, files_table
from eyeedit.data.samples import write_samples
from eyeedit.imageio import ImageError


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def samples(folder: Path) -> None:
    """Write a small set of sample faces into FOLDER.

    The base image is scikit-image's public-domain astronaut portrait; the variants (rotated,
    scaled, mirrored, at the frame edge, two faces, no face) are generated from it.
    """
    try:
        written = write_samples(folder)
    except ImageError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{folder}: cannot write ({exc.strerror or exc})")
    files_table("Sample images", written)
