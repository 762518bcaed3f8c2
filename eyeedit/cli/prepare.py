"""`eyeedit prepare`: parse options, build a PrepareConfig, run the library, render the result."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click

from eyeedit.cli.options import Finite, crop_spec, make_dataset
from eyeedit.data.prepare import PrepareConfig
from eyeedit.data.prepare import prepare as run_prepare
from eyeedit.data.workers import default_workers
from eyeedit.detection import MAX_YAW
from eyeedit.regions import REGION_NAMES, region_spec


@click.command()
@click.argument("raw", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--region", type=click.Choice(REGION_NAMES),
              default="eyes", show_default=True, help="Which eye region to crop.")
@click.option("--size", default=None, metavar="WxH",
              help="Crop size, e.g. 256x128 (default: the region's).")
@click.option("--val-fraction", type=Finite(0, 1, max_open=True), default=0.1,
              show_default=True,
              help="Share of pairs held out for validation (split by name hash).")
@click.option("--face-index", type=click.IntRange(0, 3), default=None,
              help="Use the N-th face from the left (0-based) in both photos [default: the largest "
                   "face; photos with several faces of similar size are skipped].")
@click.option("--max-yaw", type=Finite(0, 90, min_open=True), default=MAX_YAW,
              show_default=True, help="Skip faces turned further than this many degrees (profile).")
@click.option("--max-misalignment", type=Finite(0, min_open=True), default=0.06,
              show_default=True,
              help="Skip pairs whose aligned eye and brow landmarks differ by more than this "
                   "(RMS, in inter-eye distances).")
@click.option("--same-frame", is_flag=True,
              help="The photos are pixel-aligned (an edit of the same shot): align both with the "
                   "before photo's transform.")
@click.option("--sides", default=None, metavar="BEFORE,AFTER",
              help="Names of the two sub-folders of RAW, e.g. neutral,smiling "
                   "[default: before,after or A,B].")
@click.option("--format", "output_format", type=click.Choice(["pairs", "aligned"]), default="pairs",
              show_default=True,
              help="'aligned' also writes side-by-side A|B images to OUT/aligned/{train,val}/ "
                   "(the layout of the reference pix2pix code).")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Worker processes [default: all cores].")
@click.option("--overwrite", is_flag=True,
              help="Rebuild OUT from scratch (needed when it was made with other options).")
def prepare(raw: Path, out: Path, region: str, size: str | None, val_fraction: float,
            face_index: int | None, max_yaw: float, max_misalignment: float, same_frame: bool,
            sides: str | None, output_format: str, workers: int | None, overwrite: bool) -> None:
    """Turn real before/after photos in RAW into an aligned paired dataset in OUT.

    \b
    RAW holds before/ and after/ (or A/ and B/, or the two folders named by
    --sides); photos are paired by their path
    relative to those folders without the suffix (nested folders allowed). Each
    photo is aligned on its own eye corners, so the two may be separate shots.
    \b
    OUT gets {train,val}/{A,B}/<name>.png crops, dataset.json, manifest.jsonl (one
    line per pair: sources, status, face index, landmarks, transforms, residuals)
    and report.csv. Skipped pairs say why: unreadable, no-face, multiple-faces,
    profile, misaligned or missing-partner. An interrupted run resumes where it
    stopped. Exits 0 if the dataset has at least one pair; 1 if none, or if OUT
    stops taking writes (disk full: what was finished is kept for resuming); 2 for
    bad options or a RAW/OUT folder that cannot be used.
    """
    spec = crop_spec(partial(region_spec, region), size, dataset=True)
    side_names = tuple(sides.split(",")) if sides else None
    if side_names is not None and (len(side_names) != 2 or not all(side_names)):
        raise click.BadParameter(f"{sides!r} is not BEFORE,AFTER", param_hint="--sides")
    config = PrepareConfig(region=spec, val_fraction=val_fraction, face_index=face_index,
                           max_yaw=max_yaw, max_misalignment=max_misalignment,
                           same_frame=same_frame, output_format=output_format, sides=side_names)
    make_dataset(partial(run_prepare, raw, out, config, workers or default_workers(), overwrite),
                 raw, out, label="Preparing", title="Prepared", unit="pairs", verb="prepared",
                 resume_note="{done} pairs done earlier, {todo} to go.")
