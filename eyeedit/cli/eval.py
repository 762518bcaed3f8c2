"""`eyeedit eval`: metrics of a model on validation pairs, beside baselines, and a gallery."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from eyeedit.cli.options import model_or_name
from eyeedit.cli.ui import fail, out
from eyeedit.imageio import write_text
from eyeedit.model.store import ModelError
from eyeedit.training.evaluate import load_eval_set, run_eval, write_gallery


@click.command("eval")
@click.argument("model", metavar="MODEL")
@click.argument("pairs", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write metrics.json, gallery.png and index.html (input | output | target) here.")
@click.option("--checkpoints", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also score each checkpoint in this folder (the run's checkpoints/), as a baseline.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Use at most this many pairs.")
@click.option("--gallery-size", type=click.IntRange(1), default=24, show_default=True, help="Rows in the gallery.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="Inference backend.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON on stdout.")
def eval_command(model: str, pairs: Path, out_dir: Path | None, checkpoints: Path | None, limit: int | None,
                 gallery_size: int, backend: str, as_json: bool) -> None:
    """Score MODEL (an effect name or a .safetensors file) on the pairs in PAIRS.

    PAIRS is a dataset folder (its val/ split is used) or a split folder holding A/ and B/.
    Reports L1 (0-1 scale), PSNR (dB) and SSIM over the whole crop and inside the edit mask
    (where the target differs from the input), for the model and for the identity baseline
    (output = input); with --checkpoints, also for each saved checkpoint.
    """
    model_file = model_or_name(model)
    try:
        data = load_eval_set(pairs, limit)
        report = run_eval(model_file, data, checkpoints, backend=backend)
    except (ModelError, FileNotFoundError) as exc:
        fail(str(exc))
    outputs = report.pop("outputs")
    if out_dir is not None:
        write_gallery(out_dir, data, outputs, f"eyeedit eval: {report['effect']} on {pairs}", gallery_size)
        write_text(out_dir / "metrics.json", json.dumps(report, indent=2))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    out.print(_table(report))
    if out_dir is not None:
        out.print(f"Gallery: {out_dir / 'index.html'}")


def _table(report: dict):  # noqa: ANN202 - rich Table, imported lazily

    cols = ("l1", "psnr", "ssim", "l1_mask", "psnr_mask", "ssim_mask")
    table = Table(title=f"{report['effect']}: {report['pairs']} pairs, edit mask {report['mask_fraction']:.1%} of the crop")
    table.add_column("outputs of")
    for c in cols:
        table.add_column(c.replace("_mask", " (mask)"), justify="right")
    for name, m in report["results"].items():
        table.add_row(name, *(f"{m[c]:.4f}" if c in m else "-" for c in cols))
    return table
