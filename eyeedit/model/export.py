"""ONNX export of a generator, and the on-disk cache the ONNX backend uses.

The exported graph takes ``input`` (N, C, H, W) float32 in [-1, 1] with a dynamic batch
dimension and returns ``output`` of the same layout. Opset 17 (ONNX Runtime >= 1.13). The model
file's eyeedit metadata is copied into the ONNX model's ``metadata_props`` under ``eyeedit``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 17


def export_onnx(model_path: str | Path, out_path: str | Path, opset: int = OPSET,
                check: bool = True) -> dict[str, Any]:
    """Export a model file's generator to ONNX; returns {"path", "max_abs_diff", "opset"}.

    Resize upsampling is exported folded into transposed convs (:func:`fold_upsampling`). With
    ``check``, random inputs are run through the model as trained in PyTorch and through ONNX
    Runtime, and the largest absolute difference is reported (the export is refused above 1e-4).
    """
    import torch

    from eyeedit.imageio import atomic_write
    from eyeedit.model.networks import fold_upsampling
    from eyeedit.model.store import load_generator

    model, meta = load_generator(model_path)
    model = model.float().eval()
    w, h = meta.get("size") or (meta["region"]["width"], meta["region"]["height"])
    c = int(meta["generator"].get("in_channels", 3))
    dummy = torch.zeros(1, c, h, w)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(fold_upsampling(model), (dummy,), buf, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    blob = _with_metadata(buf.getvalue(), meta)
    diff = max_abs_diff(model, blob, (c, h, w)) if check else float("nan")
    if check and not diff <= 1e-4:
        raise RuntimeError(f"ONNX export of {model_path} differs from PyTorch by {diff:.2e} (> 1e-4)")
    with atomic_write(out_path) as fh:
        fh.write(blob)
    return {"path": str(out_path), "max_abs_diff": diff, "opset": opset}


def _with_metadata(blob: bytes, meta: dict[str, Any]) -> bytes:
    import onnx

    proto = onnx.load_from_string(blob)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "eyeedit", json.dumps(meta, sort_keys=True)
    return proto.SerializeToString()


def max_abs_diff(model: Any, onnx_blob: bytes, chw: tuple[int, int, int], batch: int = 2, seed: int = 0) -> float:
    """Largest |PyTorch - ONNX Runtime| output difference on random inputs in [-1, 1]."""
    import torch

    x = np.random.default_rng(seed).uniform(-1, 1, (batch, *chw)).astype(np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    got = make_session(onnx_blob).run(["output"], {"input": x})[0]
    return float(np.abs(ref - got).max())


def make_session(model: bytes | str | Path, spin: bool = True) -> Any:
    """An ONNX Runtime CPU session tuned for this machine (one thread per core).

    ``spin=False`` stops its idle threads from spinning between runs: ~2 ms slower per run,
    but when other work shares the cores (Face Mesh between runs, a browser beside `eyeedit
    serve`) the spinning took a whole core from it.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eyeedit" / "onnx"


def cached_onnx(model_path: str | Path) -> Path:
    """The ONNX export of a model file, made once and kept in the cache (keyed by content)."""
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:20]
    target = cache_dir() / f"{digest}.onnx"
    if not target.is_file():
        export_onnx(model_path, target)
    return target
