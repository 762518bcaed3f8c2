"""ONNX Runtime sessions and the cache of exported models; needs neither torch nor onnx."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import onnxruntime as ort

from eyeedit.model.store import ModelFile


def make_session(model: bytes | str | Path) -> Any:
    """An ONNX Runtime CPU session tuned for this machine (one thread per core)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eyeedit" / "onnx"


def cached_onnx_path(model: ModelFile) -> Path:
    """Where the cache keeps a model file's ONNX export (keyed by the file's content)."""
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()[:20]
    return cache_dir() / f"{digest}.onnx"
