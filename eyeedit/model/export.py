"""ONNX export of a generator, checked against PyTorch.

The exported graph takes ``input`` (N, C, H, W) float32 in [-1, 1] with a dynamic batch
dimension and returns ``output`` of the same layout; a generator with alpha also returns
``alpha`` (N, 1, H, W) in [0, 1], and a fill generator the ``hole`` (N, 1, H, W) in {0, 1} it
erased. A fill generator's second pass alone exports too (``part="fill"``: inputs ``input`` and
``hole``), for video, which reuses a face's hole for a few frames. Opset 17 (ONNX Runtime >=
1.13). The model file's eyeedit metadata is copied into the ONNX model's ``metadata_props``
under ``eyeedit``.
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


PARTS = ("whole", "fill", "find")


def export_onnx(model: ModelFile | str | Path, out_path: str | Path, opset: int = OPSET,
                check: bool = True, part: str = "whole") -> dict[str, Any]:
    """Export a model file's generator to ONNX; returns {"path", "max_abs_diff", "opset"}.

    ``part="fill"`` exports a fill generator's second pass alone (inputs ``input``, ``hole``);
    ``part="find"`` its first pass alone (outputs ``found``, its alpha, and ``hole``).
    Resize upsampling is exported folded into transposed convs (:func:`fold_upsampling`). With
    ``check``, random inputs are run through the model as trained in PyTorch and through ONNX
    Runtime, and the largest absolute difference is reported (the export is refused above 1e-4).
    """
    if part not in PARTS:
        raise ValueError(f"unknown export part {part!r}; choose one of {', '.join(PARTS)}")
    model_file = model if isinstance(model, ModelFile) else open_model(model)
    net, meta = load_generator(model_file.path)
    net = net.float().eval()
    if part != "whole" and not net.cfg.fill:
        raise ValueError(f"{model_file.path}: only a fill generator has a {part} pass to export")
    w, h = meta.get("size") or (meta["region"]["width"], meta["region"]["height"])
    c = int(meta["generator"].get("in_channels", 3))
    inputs = {"input": (c, h, w), **({"hole": (1, h, w)} if part == "fill" else {})}
    names = {"fill": ["output", "alpha"], "find": ["found", "hole"]}.get(part) or output_names(net)
    graph = {"fill": _FillPass, "find": _FindPass}.get(part, _Outputs)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(graph(fold_upsampling(net)), tuple(torch.zeros(1, *chw) for chw in inputs.values()), buf,
                          input_names=list(inputs), output_names=names,
                          dynamic_axes={n: {0: "batch"} for n in [*inputs, *names]},
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    blob = _with_metadata(buf.getvalue(), meta)
    diff = max_abs_diff(graph(net), blob, inputs, names) if check else float("nan")
    if check and not diff <= 1e-4:
        raise RuntimeError(f"ONNX export of {model_file.path} differs from PyTorch by {diff:.2e} (> 1e-4)")
    with atomic_write(out_path) as fh:
        fh.write(blob)
    return {"path": str(out_path), "max_abs_diff": diff, "opset": opset}


def output_names(net: Any) -> list[str]:
    """The graph's outputs: ``output``, ``alpha`` for a generator that predicts one, and
    ``hole`` for a fill generator."""
    return ["output", "alpha", "hole"][:1 + int(net.cfg.alpha) + int(net.cfg.fill)]


class _Outputs(nn.Module):
    """The generator with every output it has as a graph output (image, alpha, hole)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> Any:
        if self.net.cfg.fill:
            hole = self.net.find_hole(x)
            return (*self.net.fill_hole(x, hole), hole)
        image, alpha = self.net(x, with_alpha=True)
        return image if alpha is None else (image, alpha)


class _FillPass(nn.Module):
    """A fill generator's second pass: (input, hole) -> (image, alpha)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, hole: torch.Tensor) -> Any:
        return self.net.fill_hole(x, hole)


class _FindPass(nn.Module):
    """A fill generator's first pass: input -> (found, hole), its alpha and the hole from it."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> Any:
        return self.net.found_and_hole(x)


def _with_metadata(blob: bytes, meta: dict[str, Any]) -> bytes:
    proto = onnx.load_from_string(blob)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "eyeedit", json.dumps(meta, sort_keys=True)
    return proto.SerializeToString()


def max_abs_diff(graph: nn.Module, onnx_blob: bytes, inputs: dict[str, tuple[int, ...]], names: list[str],
                 batch: int = 2, seed: int = 0) -> float:
    """Largest |PyTorch - ONNX Runtime| difference over every output, on random images in
    [-1, 1] (and random holes in {0, 1})."""
    rng = np.random.default_rng(seed)
    feed = {name: (rng.uniform(-1, 1, (batch, *chw)) if name == "input" else rng.random((batch, *chw)) < 0.2
                   ).astype(np.float32) for name, chw in inputs.items()}
    with torch.inference_mode():
        refs = graph(*(torch.from_numpy(v) for v in feed.values()))
    refs = refs if isinstance(refs, tuple) else (refs,)
    got = make_session(onnx_blob).run(names, feed)
    return max(float(np.abs(r.numpy() - g).max()) for r, g in zip(refs, got))
