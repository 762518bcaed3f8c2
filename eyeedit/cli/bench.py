"""`eyeedit bench`: measure this machine stage by stage."""

from __future__ import annotations

import json
from pathlib import Path

import click
import torch
from rich.table import Table

from eyeedit.bench import (
    TRAIN_CASES,
    bench_group,
    bench_inference,
    bench_training,
    ceiling_probe,
    ceilings,
    machine,
    native_dtypes,
    with_shares,
)
from eyeedit.cli.options import Finite, chosen_model
from eyeedit.cli.ui import console, out
from eyeedit.regions import parse_size
from eyeedit.training.runtime import COMPILE_CHOICES, plain_runtime, setup_runtime


@click.command()
@click.option("-e", "--effect", default=None,
              help="Time this effect's model [default: the default architecture with random weights].")
@click.option("-m", "--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Time this model file.")
@click.option("--size", "sizes", multiple=True, default=("640x480",), show_default=True, metavar="WxH",
              help="Frame size for the inference timings (repeat for several).")
@click.option("--inference/--no-inference", default=True, show_default=True,
              help="Time the editor and the generator at each --size.")
@click.option("--repeats", type=click.IntRange(3), default=20, show_default=True, help="Timed repeats per figure.")
@click.option("--group/--no-group", default=True, show_default=True,
              help="Also time a 1920x1280 group photo of 29 faces against the same photo with one.")
@click.option("--train/--no-train", default=True, show_default=True,
              help="Also time training steps: the plain eager fp32 step beside the chosen one, side by side.")
@click.option("--case", "cases", multiple=True, type=click.Choice([c.name for c in TRAIN_CASES]),
              default=("unet_256", "shipped"), show_default=True, help="Training configuration to time (repeat).")
@click.option("--rounds", type=click.IntRange(1), default=8, show_default=True,
              help="Training rounds: each side runs one step per round, in turn.")
@click.option("--compile", "compile_", type=click.Choice(COMPILE_CHOICES), default="auto", show_default=True,
              help="torch.compile in the chosen training configuration (as `eyeedit train --compile`).")
@click.option("--quality", type=Finite(0, min_open=True), default=None, metavar="MINUTES",
              help="Also train the glasses recipe's model for MINUTES of step time per side (plain and "
                   "chosen, in turns) and score each: validation PSNR in the edit mask over identity.")
@click.option("--faces", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="With --quality: face photos to draw the glasses on [default: variations of the astronaut].")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="Threads for torch [default: torch's own choice, one per core].")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
def bench(effect: str | None, model_path: Path | None, sizes: tuple[str, ...], inference: bool, repeats: int, group: bool,
          train: bool, cases: tuple[str, ...], rounds: int, compile_: str, quality: float | None,
          faces: Path | None, threads: int | None, as_json: bool) -> None:
    """Measure this machine: detection and landmarks, alignment, the generator on each backend
    and precision, un-warp and blend, end-to-end frames per second, a group photo, and training
    images per second.

    Each inference figure is the median of --repeats timed runs after warm-up, with its
    10th-90th percentile spread. Training runs the plain step (eager fp32, plain Adam) and the
    step `eyeedit train` chooses here side by side, one step each per round, and reports each as
    images/s and as a share of the machine's measured conv ceiling (FLOPs per image x images/s
    over the FLOP/s of a conv forward + backward in the same precision).
    """
    model = chosen_model(effect, model_path) if (effect or model_path) else None
    if threads:
        torch.set_num_threads(threads)
    try:
        frames = [parse_size(s) for s in sizes]
        chosen = setup_runtime("auto", "auto", compile_) if (train or quality) else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--size") from None
    report = {"machine": machine(), "inference": [], "group": None, "ceilings": None, "training": [],
              "quality": None}
    for size in frames if inference else []:
        console.print(f"timing inference at {size[0]}x{size[1]} ...")
        report["inference"].append(bench_inference(model, size, repeats))
    if group:
        console.print("timing a group photo ...")
        report["group"] = bench_group(model, max(3, repeats // 4))
    sides = {"plain": plain_runtime(), "chosen": chosen}
    if train:
        console.print("measuring the conv ceilings ...")
        report["ceilings"] = ceils = ceilings(chosen.device.type)
        by_name = {c.name: c for c in TRAIN_CASES}
        probes = {prec: ceiling_probe(dtype, chosen.device.type) for prec, dtype in native_dtypes(chosen.device.type).items()}
        for name in cases:
            console.print(f"timing training side by side: {name}, plain and {chosen.describe()} ...")
            result = bench_training(by_name[name], sides, rounds, probes=probes)
            report["training"].append(with_shares(result, ceils))
    if quality:
        from eyeedit.bench_quality import time_to_quality

        console.print(f"training the glasses recipe for {quality:g} min per side ...")
        report["quality"] = time_to_quality(sides, quality, faces)
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
        _render_training(report)
    if report["quality"]:
        _render_quality(report["quality"])


def _render_training(report: dict) -> None:
    m, ceils = report["machine"], report["ceilings"]
    out.print(f"{m['cpu']} ({m['cores']} cores, {m['threads']} threads; {' '.join(m['flags'])}), {m['date']}")
    for prec, c in ceils.items():
        out.print(f"conv ceiling {prec}: {c['gflop_per_s']:.1f} GFLOP/s (best of "
                  + ", ".join(f"{r['shape'][0]}->{r['shape'][1]} at {r['shape'][2]}px {r['gflop_per_s']:.1f}"
                              for r in c["convs"]) + ")")
    for r in report["training"]:
        w, h = r["size"]
        in_run = ", ".join(f"{p} {g:.1f} GFLOP/s" for p, g in r["ceilings"].items())
        table = Table(title=f"training {r['case']} (batch {r['batch']}, {w}x{h}, {r['gflop_per_image']:.1f} GFLOP "
                            f"per image), {r['rounds']} rounds side by side on {r['threads']} threads, load "
                            f"average {r['load_average'][0]:.1f}-{r['load_average'][1]:.1f}; conv ceiling "
                            f"in the same rounds: {in_run}")
        for col in ("side", "runtime", "images/s", "vs plain", "share of ceiling", "first step s"):
            table.add_column(col)
        for name, sd in r["sides"].items():
            share = sd["share_of_ceiling"]
            table.add_row(name, sd["runtime"], f"{sd['images_per_s']:.2f}", f"{sd['ratio']:.2f}x",
                          f"{100 * share:.0f}%" if share is not None else "-", f"{sd['first_step_s']:.1f}")
        out.print(table)


def _render_quality(q: dict) -> None:
    table = Table(title=f"glasses recipe, {q['minutes']:g} min of steps per side, {q['train_pairs']} train / "
                        f"{q['val_pairs']} val pairs ({q['faces']})")
    for col in ("side", "runtime", "steps", "images", "val PSNR in mask", "over identity"):
        table.add_column(col)
    for name, sd in q["sides"].items():
        table.add_row(name, sd["runtime"], str(sd["steps"]), str(sd["images"]), f"{sd['psnr_mask']:.2f} dB",
                      f"{sd['gain_db']:+.2f} dB")
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
