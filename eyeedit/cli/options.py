"""Options shared by the commands that run an effect model (apply, preview)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from eyeedit.cli.ui import fail
from eyeedit.data.pairs import DatasetError, InputError
from eyeedit.data.workers import default_workers
from eyeedit.model.store import ModelError, ModelFile, find_model, open_model, resolve


def _stack(*decorators: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--effect NAME or --model PATH."""
    return _stack(
        click.option("-e", "--effect", default=None,
                     help="Effect name, looked up in the model stores (see `eyeedit models`)."),
        click.option("-m", "--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Use this model file instead of looking the effect up."),
    )(f)


def runtime_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--adaptive-mask, --backend and --device."""
    return _stack(
        click.option("--adaptive-mask/--no-adaptive-mask", default=True, show_default=True,
                     help="Keep the photo's own pixels wherever the generator changed nothing (sharper)."),
        click.option("--backend", type=click.Choice(["auto", "torch", "onnx"]), default="auto",
                     show_default=True,
                     help="Generator runtime: auto = ONNX Runtime on a CPU, PyTorch on a GPU."),
        click.option("--device", default="cpu", show_default=True,
                     help="Torch device for the generator (cpu, cuda, mps)."),
    )(f)


def require_model(effect: str | None, model_path: Path | None) -> None:
    """A usage error when neither --effect nor --model is given."""
    if effect is None and model_path is None:
        raise click.UsageError("give an effect with --effect NAME (see `eyeedit models`) or a file with --model")


def chosen_model(effect: str | None, model_path: Path | None) -> ModelFile:
    """The model of --effect NAME or --model PATH, read and checked once (one line and exit
    status 1 when it cannot be used)."""
    require_model(effect, model_path)
    try:
        return open_model(model_path) if model_path is not None else find_model(effect)
    except ModelError as exc:
        fail(str(exc))


def model_or_name(model: str) -> ModelFile:
    """A MODEL argument that may be an effect name or a .safetensors file (export, eval)."""
    try:
        return resolve(model)
    except ModelError as exc:
        fail(str(exc))


def build_dataset(source: Path, out: Path, config: Any, overwrite: bool, workers: int | None, *,
                  open_dataset: Callable, run: Callable, finish: Callable, render: Callable,
                  verb: str) -> None:
    """The shared body of `prepare` and `synth`: open (or resume) OUT, run, finish, summarise.

    Unusable folders are usage errors (exit 2); a write failure mid-run keeps what was
    finished (exit 1); a dataset without a single pair exits 1.
    """
    try:
        writer, todo = open_dataset(source, out, config, overwrite)
    except (InputError, DatasetError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        run(writer, todo, config, workers or default_workers())
        info = finish(writer, config)
    except DatasetError as exc:  # the output stopped taking writes (disk full, read-only, ...)
        fail(f"{exc}; the pairs finished so far are kept: run again to resume")
    render(writer, info)
    if not writer.counts().get("ok"):
        fail(f"{source}: no pair could be {verb} (reasons in {out / 'report.csv'})")
