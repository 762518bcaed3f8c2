"""`eyeedit eval`: metrics of a model on validation pairs, beside baselines, and a gallery; with
--real, what it does to real photos (the glasses judge's verdict, landmark drift)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from eyeedit.cli.options import model_or_name, write_failures
from eyeedit.cli.ui import fail, out, progress, warn
from eyeedit.data.effects.glasses import METAL_COLORS, PLASTIC_COLORS
from eyeedit.imageio import ImageError, parse_color, staged_folder, write_text
from eyeedit.model.judge import Judge
from eyeedit.model.store import ModelError
from eyeedit.regions import RegionSpec
from eyeedit.training.checkpoints import CheckpointError, all_checkpoints
from eyeedit.training.evaluate import (
    dataset_region,
    dataset_root,
    load_eval_set,
    run_eval,
    write_gallery,
)
from eyeedit.training.real_photos import REMOVAL, run_real_eval, write_real_gallery


@click.command("eval")
@click.argument("model", metavar="MODEL")
@click.argument("pairs", required=False,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write metrics.json, gallery.png and index.html (input | output | target) here; "
                   "with --real also real/gallery.png and real/index.html (before | after).")
@click.option("--real", "real_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Also measure the model on the real photos in this folder "
                                 "(searched recursively; a byte-for-byte copy of a photo counts once).")
@click.option("--judge", "judge_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The glasses judge for --real (default: the one shipped with eyeedit).")
@click.option("--rim-color", "rim_color", default=None, metavar="COLOR",
              help="With --real, for a model that predicts where it edits: the colour its frames "
                   "should have (#rrggbb or a frame colour name such as black); the rims it draws "
                   "are then measured (colour difference, evenness of width).")
@click.option("--checkpoints", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also score each checkpoint in this folder (the run's checkpoints/), as a baseline.")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Use at most this many pairs (and real photos).")
@click.option("--gallery-size", type=click.IntRange(1), default=24, show_default=True, help="Rows in the gallery.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="Inference backend.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON on stdout.")
def eval_command(model: str, pairs: Path | None, out_dir: Path | None, real_dir: Path | None,
                 judge_path: Path | None, rim_color: str | None, checkpoints: Path | None, limit: int | None,
                 gallery_size: int, backend: str, as_json: bool) -> None:
    """Score MODEL (an effect name or a .safetensors file) on the pairs in PAIRS, on the real
    photos in --real DIR, or both.

    PAIRS is a dataset folder (its val/ split is used) or a split folder holding A/ and B/.
    Reports L1 (0-1 scale), PSNR (dB) and SSIM over the whole crop and inside the edit mask
    (where the target differs from the input), for the model and for the identity baseline
    (output = input); with --checkpoints, also for each saved checkpoint. A model trained with
    --alpha, on a dataset made by synth, also gets the IoU of its alpha mask (> 0.5) with the
    dataset's edit masks.

    --real DIR edits the largest face of every photo there and reports: the share the glasses
    judge calls "glasses" before and after the edit (for a removal effect, the share still
    judged "glasses"); how far the eye corners and iris centres found again on the edited photo
    moved (crop pixels, median and 90th percentile, beside the detector's own jitter); and how
    much of the photo changed, and the edited crop's PSNR against the original. With
    --rim-color, the rims the model's alpha marks: their mean colour difference from that colour
    (CIEDE2000) and how evenly wide they are. Only photos where a face is found count.
    """
    if pairs is None and real_dir is None:
        raise click.UsageError("give PAIRS, --real DIR, or both")
    if rim_color is not None and real_dir is None:
        raise click.UsageError("--rim-color measures rims on real photos: give --real DIR too")
    _check_out_dir(out_dir, pairs, real_dir)
    model_file = model_or_name(model)
    report: dict = {}
    try:
        if pairs is not None:
            _note_other_region(pairs, model_file.region)
            if checkpoints is not None and not all_checkpoints(checkpoints):
                warn(f"{checkpoints}: no checkpoints (step_*.safetensors) to score", label="note")
            data = load_eval_set(pairs, limit)
            report = run_eval(model_file, data, checkpoints, backend=backend)
        if real_dir is not None:
            real, photos = _measure_real(model_file.path, real_dir, judge_path, backend, limit, as_json,
                                         _rim_color(rim_color))
            report = {"model": str(model_file.path), "effect": real["effect"], **report, "real": real}
    except (ModelError, FileNotFoundError, ImageError, CheckpointError) as exc:
        fail(str(exc))
    outputs = report.pop("outputs", None)
    if out_dir is not None:
        title = f"eyeedit eval: {report['effect']} on"
        with write_failures(out_dir), staged_folder(out_dir) as stage:  # all of the report, or none
            if pairs is not None:
                write_gallery(stage, data, outputs, f"{title} {pairs}", gallery_size)
            if real_dir is not None:
                write_real_gallery(stage / "real", photos, f"{title} {real_dir}", gallery_size)
            write_text(stage / "metrics.json", json.dumps(report, indent=2))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    if pairs is not None:
        out.print(_table(report))
    if real_dir is not None:
        out.print(_real_table(report["real"]))
    if out_dir is not None:
        pages = [p for p, on in (("index.html", pairs), ("real/index.html", real_dir)) if on]
        out.print("Gallery: " + ", ".join(str(out_dir / p) for p in pages))


def _rim_color(text: str | None) -> tuple[int, int, int] | None:
    """--rim-color as (r, g, b): #rrggbb, or a frame colour the glasses effect knows."""
    if text is None:
        return None
    named = {**METAL_COLORS, **PLASTIC_COLORS}
    try:
        return parse_color(named.get(text, text))
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither #rrggbb nor one of {', '.join(sorted(named))}",
                                 param_hint="--rim-color") from None


def _note_other_region(pairs: Path, model: RegionSpec) -> None:
    """A line when PAIRS were cropped for another region than the model edits: the sizes may
    agree (both 256x128) while the crops frame the face differently, and the figures mean little."""
    made = dataset_region(pairs)
    if made is not None and (made.name, made.span, made.center_y) != (model.name, model.span, model.center_y):
        warn(f"{pairs}: cropped for the `{made.name}` region, the model edits `{model.name}` crops; "
             "the figures compare different framings", label="note")


def _check_out_dir(out_dir: Path | None, pairs: Path | None, real_dir: Path | None) -> None:
    """-o must not lie inside what is measured: a gallery inside PAIRS breaks the dataset for
    training, and one inside --real DIR would be measured as photos next time."""
    if out_dir is None:
        return
    # PAIRS may be a dataset's split folder: its whole dataset is off limits
    dataset = pairs if pairs is None else dataset_root(pairs) or pairs
    for source, hint in ((dataset, "PAIRS"), (real_dir, "--real")):
        if source is not None and out_dir.resolve().is_relative_to(source.resolve()):
            raise click.BadParameter(f"{out_dir} is inside {hint} {source}; write the report elsewhere",
                                     param_hint="-o/--out")


def _measure_real(model: Path, folder: Path, judge_path: Path | None, backend: str,
                  limit: int | None, quiet: bool, rim_color: tuple[int, int, int] | None = None,
                  ) -> tuple[dict, list]:
    """The --real figures, with a progress bar on stderr unless the output is JSON."""

    judge = Judge.load(judge_path)
    if quiet:
        return run_real_eval(model, folder, judge, backend=backend, limit=limit, rim_color=rim_color)
    with progress("photos") as bar:
        task = bar.add_task("real photos", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run_real_eval(model, folder, judge, backend=backend, limit=limit, progress=tick,
                             rim_color=rim_color)


def _table(report: dict):  # noqa: ANN202 - rich Table, imported lazily

    cols = ("l1", "psnr", "ssim", "l1_mask", "psnr_mask", "ssim_mask")
    if any("mask_iou" in m for m in report["results"].values()):
        cols += ("mask_iou",)
    table = Table(title=f"{report['effect']}: {report['pairs']} pairs, edit mask {report['mask_fraction']:.1%} of the crop")
    table.add_column("outputs of")
    for c in cols:
        table.add_column("alpha IoU" if c == "mask_iou" else c.replace("_mask", " (mask)"), justify="right")
    for name, m in report["results"].items():
        table.add_row(name, *(f"{m[c]:.4f}" if c in m else "-" for c in cols))
    return table


def _real_table(real: dict):  # noqa: ANN202 - rich Table, imported lazily
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.0%}"

    def px(d: dict) -> str:
        return "-" if d["median"] is None else f"{d['median']:.2f} / {d['p90']:.2f}"

    judge, drift, outside = real["judge"], real["drift"], real["outside"]
    table = Table(title=f"{real['effect']} ({real['effect_kind']}) on real photos: faces found in "
                        f"{real['faces_found']} of {real['photos']}, edited in {real['edited']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    if real.get("duplicates"):
        table.add_row("copies of a photo already measured, left out", str(len(real["duplicates"])))
    for when in ("before", "after"):
        j = judge[when]
        mean = "-" if j["mean_probability"] is None else f"{j['mean_probability']:.2f}"
        table.add_row(f"judged glasses {when} the edit (mean P)",
                      f"{pct(j['glasses_share'])} ({mean})")
    if "still_glasses" in judge:
        still = judge["still_glasses"]
        table.add_row(f"still judged glasses, of {still['of']} judged glasses before",
                      pct(still["share"]))
    table.add_row("faces found again after the edit", str(drift["found_again"]))
    for key, label in (("eye_corners_px", "eye corners"), ("iris_px", "iris centres")):
        table.add_row(f"{label} moved, {real['crop']} crop px (median / p90)", px(drift[key]))
        table.add_row("  the detector's own jitter (JPEG re-save)", px(drift["floor"][key]))
    table.add_row("photo pixels changed (mean)", pct(outside["changed_share_mean"]))
    table.add_row("largest change outside the crop (0-255)",
                  str(outside["max_change_outside_crop"]))
    crop = real["crop_psnr_db"]
    if crop["median"] is not None:
        table.add_row("edited crop vs the original, PSNR dB (median / p10)",
                      f"{crop['median']:.1f} / {crop['p10']:.1f}")
    if real["rims"]:
        rims = real["rims"]
        table.add_row(f"rim colour difference, CIEDE2000 (median / p90, {rims['measured']} faces)",
                      px(rims["delta_e"]))
        table.add_row("rim length within 30% of its median width (median / p90)",
                      f"{rims['even_share']['median']:.0%} / {rims['even_share']['p90']:.0%}")
    # The judge is an instrument with known blind spots (faint rims, lens tints, a frame's
    # remnants): a removal it calls clean is not yet one a person calls clean.
    table.caption = ("The judge misses faint remains of a frame: look at the gallery (-o DIR) "
                     "before trusting a low share.") if real["effect_kind"] == REMOVAL else None
    return table
