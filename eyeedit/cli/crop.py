"""`eyeedit crop`: aligned eye-region crops with landmark overlays."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import click

from eyeedit.cli.options import crop_spec, write_failures
from eyeedit.cli.ui import files_table, warn
from eyeedit.data.crops import crop_images
from eyeedit.regions import REGION_NAMES, region_spec


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("crops"), show_default=True, help="Folder for crops and overlays.")
@click.option("--region", type=click.Choice(REGION_NAMES),
              default="eyes", show_default=True, help="Which eye region to crop.")
@click.option("--size", default=None, metavar="WxH", help="Crop size, e.g. 256x128 (default: the region's).")
@click.option("--max-faces", type=click.IntRange(1), default=None,
              help="Crop at most this many faces per image, the largest [default: every face].")
def crop(images: tuple[Path, ...], out_dir: Path, region: str, size: str | None, max_faces: int | None) -> None:
    """Detect faces in IMAGES and write each face's aligned crop and a landmark overlay.

    Outputs go to OUT as <name>_face<i>.png (the crop) and <name>_landmarks.png.
    Exits 1 if any image could not be read or had no face.
    """
    spec = crop_spec(partial(region_spec, region), size)
    with write_failures(out_dir):
        written, problems = crop_images(images, out_dir, spec, max_faces)
    files_table("Crops", written)
    for problem in problems:
        warn(problem)
    if problems:
        sys.exit(1)
