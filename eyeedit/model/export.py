"""ONNX export of a generator, checked against PyTorch.

The exported graph takes ``input`` (N, C, H, W) float32 in [-1, 1] with a dynamic batch
dimension and returns ``output`` of the same layout; a generator with alpha also returns
``alpha`` (N, 1, H, W) in [0, 1]. Opset 17 (ONNX Runtime >= 1.13). The model
file's eyeedit metadata is copied into the ONNX model's ``metadata_props`` under ``eyeedit``.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from eyeedit.imageio import atomic_write
from eyeedit.model.networks import fold_upsampling
from eyeedit.model.sessions import make_session
from eyeedit.model.store import ModelFile, open_model
from eyeedit.model.weights import load_generator

OPSET = 17


def export_onnx(model: ModelFile | str | Path, out_path: str | Path, opset: int = OPSET,
                check: bool = True) -> dict[str, Any]:
    """Export a model file's generator to ONNX; returns {"path", "max_abs_diff", "opset"}.

    Resize upsampling is exported folded into transposed convs (:func:`fold_upsampling`). With
    ``check``, random inputs are run through the model as trained in PyTorch and through ONNX
    Runtime, and the largest absolute difference is reported (the export is refused above 1e-4).
    """
    model_file = model if isinstance(model, ModelFile) else open_model(model)
    net, meta = load_generator(model_file.path)
    net = net.float().eval()
    w, h = meta.get("size") or (meta["region"]["width"], meta["region"]["height"])
    c = int(meta["generator"].get("in_channels", 3))
    dummy = torch.zeros(1, c, h, w)
    names = output_names(net)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(_Outputs(fold_upsampling(net)), (dummy,), buf, input_names=["input"],
                          output_names=names, dynamic_axes={n: {0: "batch"} for n in ["input", *names]},
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    blob = _with_metadata(buf.getvalue(), meta)
    diff = max_abs_diff(net, blob, (c, h, w)) if check else float("nan")
    if check and not diff <= 1e-4:
        raise RuntimeError(f"ONNX export of {model_file.path} differs from PyTorch by {diff:.2e} (> 1e-4)")
    with atomic_write(out_path) as fh:
        fh.write(blob)
    return {"path": str(out_path), "max_abs_diff": diff, "opset": opset}


def output_names(net: Any) -> list[str]:
    """The graph's outputs: ``output``, and ``alpha`` for a generator that predicts one."""
    return ["output", "alpha"] if net.cfg.alpha else ["output"]


class _Outputs(nn.Module):
    """The generator with every output it has as a graph output (image, then alpha)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> Any:
        image, alpha = self.net(x, with_alpha=True)
        return image if alpha is None else (image, alpha)


def _with_metadata(blob: bytes, meta: dict[str, Any]) -> bytes:
    proto = onnx.load_from_string(blob)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "eyeedit", json.dumps(meta, sort_keys=True)
    return proto.SerializeToString()


def max_abs_diff(model: Any, onnx_blob: bytes, chw: tuple[int, int, int], batch: int = 2, seed: int = 0) -> float:
    """Largest |PyTorch - ONNX Runtime| difference over every output on random inputs in [-1, 1]."""
    x = np.random.default_rng(seed).uniform(-1, 1, (batch, *chw)).astype(np.float32)
    with torch.inference_mode():
        refs = [t for t in model(torch.from_numpy(x), with_alpha=True) if t is not None]
    got = make_session(onnx_blob).run(output_names(model), {"input": x})
    return max(float(np.abs(r.numpy() - g).max()) for r, g in zip(refs, got))
