"""`eyeedit bench`: measure this machine stage by stage."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from eyeedit.bench import TRAIN_CASES, bench_group, bench_inference, bench_training, machine
from eyeedit.cli.options import chosen_model
from eyeedit.cli.ui import console, out
from eyeedit.regions import parse_size
from eyeedit.training.runtime import setup_runtime


@click.command()
@click.option("-e", "--effect", default=None,
              help="Time this effect's model [default: the default architecture with random weights].")
@click.option("-m", "--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Time this model file.")
@click.option("--size", "sizes", multiple=True, default=("640x480",), show_default=True, metavar="WxH",
              help="Frame size for the inference timings (repeat for several).")
@click.option("--repeats", type=click.IntRange(3), default=20, show_default=True, help="Timed repeats per figure.")
@click.option("--group/--no-group", default=True, show_default=True,
              help="Also time a 1920x1280 group photo of 29 faces against the same photo with one.")
@click.option("--train/--no-train", default=True, show_default=True,
              help="Also time training steps (reference and eyeedit configurations; ~2 minutes on a CPU).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
def bench(effect: str | None, model_path: Path | None, sizes: tuple[str, ...], repeats: int, group: bool,
          train: bool, as_json: bool) -> None:
    """Measure this machine: detection and landmarks, alignment, the generator on each backend
    and precision, un-warp and blend, end-to-end frames per second, a group photo, and training
    images per second.

    Each figure is the median of --repeats timed runs after warm-up, with its 10th-90th
    percentile spread. Training is timed in fp32 and in the precision `eyeedit train` picks
    here, for the pix2pix reference configurations and eyeedit's own.
    """
    model = chosen_model(effect, model_path) if (effect or model_path) else None
    try:
        frames = [parse_size(s) for s in sizes]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--size") from None
    report = {"machine": machine(), "inference": [], "group": None, "training": []}
    for size in frames:
        console.print(f"timing inference at {size[0]}x{size[1]} ...")
        report["inference"].append(bench_inference(model, size, repeats))
    if group:
        console.print("timing a group photo ...")
        report["group"] = bench_group(model, max(3, repeats // 4))
    if train:
        chosen = setup_runtime("auto", "auto").precision
        for case in TRAIN_CASES:
            for precision in dict.fromkeys(("fp32", chosen)):
                console.print(f"timing training: {case.name} {precision} ...")
                report["training"].append(bench_training(case, precision))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _render(report)


def _render(report: dict) -> None:
    m = report["machine"]
    for inf in report["inference"]:
        w, h = inf["size"]
        table = Table(title=f"inference at {w}x{h} on {m['cpu']} ({m['cores']} cores), {m['date']}")
        for col in ("stage", "median ms", "p10-p90 ms", "note"):
            table.add_column(col, justify="right" if "ms" in col else "left")
        for r in inf["rows"]:
            table.add_row(r["name"], f"{r['median_ms']:.2f}", f"{r['p10_ms']:.2f}-{r['p90_ms']:.2f}", r["note"])
        out.print(table)
        psnr = ", ".join(f"{k} {v:.1f} dB" for k, v in inf["backend_psnr_db"].items())
        speed = inf["speedup_vs_torch_fp32"]
        out.print(f"end to end {inf['fps']:.1f} FPS with {inf['backend']}"
                  + (f" (generator {speed:.2f}x eager PyTorch fp32 as trained)" if speed else "")
                  + (f"; output vs eager fp32: {psnr}" if psnr else ""))
        out.print(f"finding every face costs {inf['vs_single_stage']:.2f}x the end-to-end time of Face Mesh "
                  "alone (which finds only faces close to the camera), timed taking turns")
    if report["group"]:
        _render_group(report["group"], m)
    if report["training"]:
        table = Table(title="training")
        for col in ("configuration", "precision", "images/s", "vs fp32 (this run)"):
            table.add_column(col)
        fp32 = {r["case"]: r["images_per_s"] for r in report["training"] if r["precision"] == "fp32"}
        for r in report["training"]:
            ratio = r["images_per_s"] / fp32[r["case"]] if r["case"] in fp32 else None
            table.add_row(r["case"], r["precision"], f"{r['images_per_s']:.2f}",
                          f"{ratio:.2f}x" if ratio else "-")
        out.print(table)


def _render_group(g: dict, m: dict) -> None:
    w, h = g["size"]
    table = Table(title=f"group photo {w}x{h} on {m['cpu']} ({m['cores']} cores), {m['date']}")
    for col in ("stage", "median ms", "p10-p90 ms"):
        table.add_column(col, justify="right" if "ms" in col else "left")
    for r in g["rows"]:
        table.add_row(r["name"], f"{r['median_ms']:.1f}", f"{r['p10_ms']:.1f}-{r['p90_ms']:.1f}")
    out.print(table)
    out.print(f"{g['found']} of {g['faces']} faces found, {g['edited']} edited; "
              f"each face beyond the first adds {g['per_added_face_ms']:.1f} ms end to end")
    for line in g["skipped"]:
        out.print(f"  {line}")
