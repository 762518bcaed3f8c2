"""`eyeedit apply`: edit photos with an effect model."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from eyeedit.cli.options import (
    Finite,
    chosen_model,
    model_options,
    require_model,
    runtime_options,
)
from eyeedit.cli.ui import fail, out, progress, warn
from eyeedit.detection import MAX_YAW, MIN_EYE_DISTANCE
from eyeedit.editing.batch import (
    EXISTS,
    Outcome,
    apply_one,
    check_not_overwriting_inputs,
    plan_jobs,
    unique_jobs,
)
from eyeedit.editing.blending import BLEND_MODES
from eyeedit.editing.editor import EditOptions, Editor
from eyeedit.model.store import ModelError


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@model_options
@click.option("-o", "--out", type=click.Path(path_type=Path),
              help="Output file (one input) or folder. Default: <name>_<effect>.<ext> beside each input.")
@click.option("--blend", type=click.Choice(BLEND_MODES), default="feather", show_default=True,
              help="How the edit is blended in: alpha feathering, Laplacian pyramid, or Poisson (stills).")
@click.option("--strength", type=Finite(0, 1), default=1.0, show_default=True,
              help="0 leaves the photo unchanged, 1 applies the full edit.")
@click.option("--color-match/--no-color-match", default=False, show_default=True,
              help="Match the generated crop's colours to the surrounding skin (Reinhard, Lab).")
@click.option("--max-faces", type=click.IntRange(1), default=None,
              help="Edit at most this many faces per photo, the largest [default: every face].")
@click.option("--face-index", type=click.IntRange(0), default=None, help="Edit only this face (0 = leftmost).")
@click.option("--min-eye-distance", type=Finite(4), default=MIN_EYE_DISTANCE, show_default=True, metavar="PX",
              help="Smallest face looked for and edited (pixels between the eyes); larger scans faster.")
@click.option("--max-yaw", type=Finite(0, 90, min_open=True), default=MAX_YAW, show_default=True,
              help="Skip faces turned further than this many degrees (the models are trained on near-frontal faces).")
@click.option("--keep-unedited", is_flag=True, help="Write photos without a face unchanged instead of skipping them.")
@click.option("--overwrite", is_flag=True,
              help="Redo outputs that exist already (by default a re-run skips them).")
@click.option("--side-by-side", is_flag=True, help="Write before|after side by side.")
@click.option("--save-crops", is_flag=True, help="Also write each face's input/output crops and mask (debugging).")
@runtime_options
def apply(inputs: tuple[Path, ...], effect: str | None, model_path: Path | None, out: Path | None,
          blend: str, strength: float, color_match: bool, max_faces: int | None, face_index: int | None,
          min_eye_distance: float, max_yaw: float, keep_unedited: bool, overwrite: bool,
          side_by_side: bool, save_crops: bool, adaptive_mask: bool, frame_shadow: bool,
          backend: str, device: str) -> None:
    """Edit the eye region of every face in INPUTS (photos or folders, searched recursively).

    Each face is detected, its eye region aligned and translated by the effect's generator, and
    the result blended back so that pixels outside the edit stay exactly as they were (PNG:
    bit-identical; JPEG: re-encoded with the photo's own quantisation tables and subsampling).
    Outputs keep the input's format, size, EXIF (orientation applied, then reset) and ICC
    profile; a photo left unchanged (no face, or --strength 0) is a byte-for-byte copy. Inputs
    are never overwritten. Outputs are listed in a hidden .eyeedit-outputs.jsonl in their
    folder: running again on a folder skips the outputs that exist (--overwrite redoes them)
    and never takes eyeedit's own outputs as inputs.
    Faces that cannot be edited well (too small, turned too far, unreliable landmarks) are left
    as they are and named with the reason.

    Exit status: 0 when every input was edited (or kept with --keep-unedited), 1 when some
    failed (a summary table says why), 2 on usage errors.
    """
    require_model(effect, model_path)
    try:
        jobs = unique_jobs(plan_jobs(list(inputs), out, effect or model_path.stem))
        check_not_overwriting_inputs(jobs)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not jobs:
        raise click.UsageError(f"no images found in {', '.join(map(str, inputs))}")
    options = EditOptions(blend=blend, strength=strength, color_match=color_match,
                          max_faces=max_faces, face_index=face_index, min_eye_distance=min_eye_distance,
                          max_yaw=max_yaw, adaptive=adaptive_mask, frame_shadow=frame_shadow)
    model = chosen_model(effect, model_path)
    try:
        editor = Editor.load(model, backend=backend, device=device, options=options)
    except ModelError as exc:  # the weights do not match the metadata
        fail(str(exc))
    outcomes = []
    with progress("photos") as bar:
        task = bar.add_task(f"apply {editor.name}", total=len(jobs))
        for job in jobs:
            outcome = apply_one(editor, job, keep_unedited=keep_unedited, sbs=side_by_side,
                                crops=save_crops, overwrite=overwrite)
            if not outcome.ok:
                warn(f"{job.source}: {outcome.reason}")
            else:
                for line in outcome.skipped:
                    warn(f"{job.source}: {line}", label="note")
            outcomes.append(outcome)
            bar.advance(task)
    _summary(outcomes)
    sys.exit(0 if all(o.ok for o in outcomes) else 1)


def _summary(outcomes: list[Outcome]) -> None:
    table = Table(title="apply")
    for col in ("input", "status", "faces found", "edited", "output / reason"):
        table.add_column(col, overflow="fold")  # paths are wrapped, never cut short
    for o in outcomes:
        style = None if o.ok else "red"
        detail = str(o.job.target) if o.ok else o.reason
        looked = o.status != EXISTS  # an output kept as it was: its photo was not looked at
        if not looked:
            detail = f"{o.job.target} ({o.reason})"
        table.add_row(str(o.job.source), o.status, str(o.found) if looked else "-",
                      str(o.faces) if looked else "-", detail, style=style)
    out.print(table)
