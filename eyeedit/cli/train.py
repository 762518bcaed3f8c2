"""`eyeedit train`: train a pix2pix model on a paired dataset folder."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import click
from rich.progress import Progress

from eyeedit.cli.options import Finite
from eyeedit.cli.ui import console, fail, files_table, note_shadowing, progress
from eyeedit.data.loader import load_pairs
from eyeedit.data.pairs import DatasetError
from eyeedit.model.losses import GAN_LOSSES
from eyeedit.model.networks import DISCRIMINATORS, NORMS, UPSAMPLES
from eyeedit.model.store import EFFECT_NAME, NOT_EFFECTS, install_model
from eyeedit.training.checkpoints import CheckpointError
from eyeedit.training.config import ALPHA_WEIGHT, make_config
from eyeedit.training.run_folder import RunError
from eyeedit.training.runtime import (
    COMPILE_CHOICES,
    DEVICES,
    PRECISIONS,
    setup_runtime,
    teardown_runtime,
)
from eyeedit.training.train import TrainProgress, planned_steps
from eyeedit.training.train import train as run_training


@click.command()
@click.argument("pairs", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (e.g. runs/glasses): checkpoints, metrics, samples, model.safetensors.")
@click.option("--effect", default=None, help="Also install the model into the user store under this name.")
@click.option("--epochs", type=click.IntRange(0), default=100, show_default=True, help="Epochs at the initial learning rate.")
@click.option("--decay-epochs", type=click.IntRange(0), default=100, show_default=True, help="Further epochs with the rate falling linearly to 0.")
@click.option("--batch-size", type=click.IntRange(1), default=1, show_default=True, help="Pairs per step (per process under torchrun).")
@click.option("--lr", type=Finite(0, min_open=True), default=2e-4, show_default=True, help="Adam learning rate (betas 0.5, 0.999).")
@click.option("--gan-loss", type=click.Choice(GAN_LOSSES), default="vanilla",
              show_default=True, help="Adversarial objective.")
@click.option("--lambda-l1", type=Finite(0), default=100.0, show_default=True, help="Weight of the L1 term in G's loss.")
@click.option("--ngf", type=click.IntRange(1), default=64, show_default=True, help="Generator width (channels of the first level).")
@click.option("--depth", default=None, type=click.IntRange(1), help="U-Net levels (default: up to 8, as many as the crop size allows).")
@click.option("--norm", type=click.Choice(NORMS), default="batch", show_default=True,
              help="Normalisation layers of G and D.")
@click.option("--upsample", type=click.Choice(UPSAMPLES), default="transpose",
              show_default=True, help="Decoder upsampling: transposed conv, or resize + conv (no checkerboard).")
@click.option("--dropout/--no-dropout", default=True, show_default=True, help="Dropout 0.5 in the innermost decoder levels.")
@click.option("--residual/--no-residual", default=False, show_default=True,
              help="G predicts a change added to the input (sharper for local edits) instead of the image.")
@click.option("--alpha/--no-alpha", default=False, show_default=True,
              help="G also predicts where to edit (an alpha mask) and keeps the input elsewhere; "
                   "with a dataset made by synth the mask learns from its edit masks.")
@click.option("--fill/--no-fill", default=False, show_default=True,
              help="With --alpha, for removing things: G runs twice, first finding the solid "
                   "parts (alpha above --hole-threshold), then erasing them and painting them in "
                   "from the pixels around, so nothing of them shows through. Needs synth's edit masks.")
@click.option("--hole-threshold", type=Finite(0, 1, min_open=True, max_open=True), default=0.5,
              show_default=True, help="With --fill: where the first pass's alpha counts as something "
                                      "to erase (used when the model runs, not in training).")
@click.option("--hole-low-threshold", type=Finite(0, 1, min_open=True, max_open=True), default=None,
              help="With --fill: the hole also follows faint frame (alpha above this, below "
                   "--hole-threshold) connected to sure frame, in crops that show enough sure frame "
                   "(used when the model runs, not in training) [default: off].")
@click.option("--find-flip/--no-find-flip", default=False, show_default=True,
              help="With --fill: the first pass also looks at the mirrored crop and keeps the surer "
                   "alpha at each pixel (glasses are symmetric, so a rim it is sure of on one side "
                   "helps it find a faint one on the other). Used when the model runs, not in "
                   "training; one more first pass.")
@click.option("--alpha-weight", type=Finite(0), default=ALPHA_WEIGHT, show_default=True,
              help="Weight of the alpha mask's cross-entropy against the dataset's edit masks.")
@click.option("--ndf", type=click.IntRange(1), default=64, show_default=True, help="Discriminator width.")
@click.option("--n-layers", type=click.IntRange(1), default=3, show_default=True, help="PatchGAN depth (3: 70x70 patches).")
@click.option("--discriminator", "d_kind", type=click.Choice(DISCRIMINATORS), default="patch",
              show_default=True, help="PatchGAN, or per-pixel (1x1) discriminator.")
@click.option("--jitter", type=Finite(1.0), default=1.0, show_default=True,
              help="Scale-up before a random crop back to size (pix2pix: 1.12). Off by default: "
                   "aligned crops are not rescaled at inference, and a jittered model draws its "
                   "edit too large.")
@click.option("--flip/--no-flip", default=True, show_default=True,
              help="Random horizontal flips (turn off for edits that are not left-right symmetric).")
@click.option("--seed", default=0, show_default=True, help="Random seed (CPU runs reproduce exactly).")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="Where to train.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
              help="auto: bf16 on GPUs that have it (else fp16), bf16 on CPUs with native bf16, else fp32.")
@click.option("--compile", "compile_", type=click.Choice(COMPILE_CHOICES), default="auto", show_default=True,
              help="torch.compile G, D and the losses. auto: where the compiled step measured faster "
                   "and the run is long enough to repay compiling (CPUs with native bf16, runs of 10,000 "
                   "steps or more). Falls back to eager with a warning where it cannot compile. The first "
                   "steps include the compile time (about a minute on a CPU).")
@click.option("--keep-checkpoints", type=click.IntRange(1), default=3, show_default=True, help="How many recent checkpoints to keep.")
@click.option("--checkpoint-every", type=click.IntRange(0), default=0, show_default=True,
              help="Also checkpoint every N steps (0: only at the end of each epoch).")
@click.option("--log-every", type=click.IntRange(1), default=10, show_default=True, help="Steps between metrics.jsonl records.")
@click.option("--tensorboard", is_flag=True,
              help="Also log losses, metrics and sample grids to OUT/tensorboard/ "
                   "(needs `pip install 'eyeedit[tensorboard]'`; view with `tensorboard --logdir OUT`).")
@click.option("--resume", is_flag=True, help="Continue the run in OUT from its latest checkpoint.")
@click.option("--overwrite", is_flag=True, help="Start again, deleting the previous run in OUT.")
def train(pairs: Path, out_dir: Path, effect: str | None, device: str, precision: str, compile_: str,
          resume: bool, overwrite: bool, tensorboard: bool, **options: object) -> None:
    """Train a pix2pix model on PAIRS (a folder made by `eyeedit prepare` or `eyeedit synth`).

    Writes OUT/model.safetensors (generator weights and metadata), OUT/metrics.jsonl,
    OUT/samples/epoch_NNN.png (input | output | target on validation pairs), OUT/curves.png and
    OUT/checkpoints/. Several GPUs or machines: `torchrun --nproc-per-node N -m eyeedit train ...`.
    """
    if effect is not None and not EFFECT_NAME.match(effect):
        raise click.BadParameter(f"{effect!r} is not a model name (letters, digits, _ . -)",
                                 param_hint="--effect")
    if resume and overwrite:
        raise click.UsageError("--resume continues the run in OUT and --overwrite deletes it: give one")
    if effect in NOT_EFFECTS:
        raise click.BadParameter(f"{effect!r} is the name of the glasses judge, not of an effect; pick another",
                                 param_hint="--effect")
    try:
        data = load_pairs(pairs)
        cfg = make_config(data, **options)
        rt = setup_runtime(device, precision, compile_, planned_steps(len(data.train), cfg))
    except DatasetError as exc:
        fail(str(exc))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if rt.is_main:
        console.print(f"training on {rt.describe(cfg.generator.upsample)}: {len(data.train)} train / {len(data.val)} val "
                      f"pairs of {cfg.size[0]}x{cfg.size[1]}, U-Net depth {cfg.generator.depth}")
    try:
        with progress("img") if rt.is_main else contextlib.nullcontext() as bar:
            result = run_training(pairs, out_dir, cfg, rt, effect, resume, overwrite, data=data,
                                  on_progress=_progress_bar(bar), tensorboard=tensorboard)
    except (RunError, CheckpointError, DatasetError) as exc:
        fail(str(exc))
    finally:
        teardown_runtime(rt)
    if result is None:
        return
    files = [f for f in (result.model_path, out_dir / "metrics.jsonl", out_dir / "curves.png") if f.is_file()]
    if effect:
        files.append(install_model(result.model_path, effect))
        note_shadowing(files[-1])
    files_table("Training outputs", files)
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()) or "no validation pairs"
    console.print(f"{result.steps} steps in {result.seconds:.{1 if result.seconds < 10 else 0}f} s; validation: {metrics}")


def _progress_bar(bar: Progress | None) -> Callable[[TrainProgress], None] | None:
    """The callback that moves the rich progress bar: images over all ranks, latest losses."""
    if bar is None:
        return None
    task = None

    def update(p: TrainProgress) -> None:
        nonlocal task
        if task is None:
            task = bar.add_task("training", total=p.total_images, completed=p.images)
        text = f"epoch {p.epoch + 1}/{p.total_epochs}"
        if p.losses:
            d = p.losses["D_real"] + p.losses["D_fake"]
            text += f"  G {p.losses['G_GAN']:.3f}  L1 {p.losses['G_L1']:.3f}  D {d:.3f}"
        bar.update(task, completed=p.images, description=text)

    return update
