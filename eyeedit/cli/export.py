"""`eyeedit export`: a model file to ONNX."""

from __future__ import annotations

from pathlib import Path

import click

from eyeedit.cli.options import model_or_name, write_failures
from eyeedit.cli.ui import console, fail
from eyeedit.model.export import export_onnx
from eyeedit.model.store import ModelError


@click.command()
@click.argument("model", metavar="MODEL")
@click.option("--onnx", "onnx_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the ONNX model.")
@click.option("--opset", type=click.IntRange(13, 21), default=17, show_default=True, help="ONNX opset version.")
def export(model: str, onnx_path: Path, opset: int) -> None:
    """Export MODEL (an effect name or a .safetensors file) to ONNX.

    The graph takes `input` (N, C, H, W) float32 in [-1, 1] with a dynamic batch size and
    returns `output` in the same layout; the model's metadata is copied into the ONNX
    metadata_props (key `eyeedit`). The export is checked against PyTorch on random inputs
    and refused if any output differs by more than 1e-4.
    """
    model_file = model_or_name(model)
    if onnx_path.resolve() == model_file.path.resolve():
        raise click.BadParameter(f"{onnx_path} is the model file itself; name another file",
                                 param_hint="--onnx")
    try:
        with write_failures(onnx_path):
            info = export_onnx(model_file, onnx_path, opset=opset)
    except (ModelError, RuntimeError) as exc:
        fail(str(exc))
    console.print(f"Wrote [bold]{info['path']}[/] (opset {opset}); max |PyTorch - ONNX| = {info['max_abs_diff']:.2e}")
