"""Options shared by the commands that run an effect model (apply, preview)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


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
    if effect is None and model_path is None:
        raise click.UsageError("give an effect with --effect NAME (see `eyeedit models`) or a file with --model")
