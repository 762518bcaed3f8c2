"""ONNX Runtime sessions and the cache of exported models; needs neither torch nor onnx."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from eyeedit.model.store import ModelFile

# Bumped whenever the same model file exports to a different graph, so that cached exports
# made by an older eyeedit are made again (2: fill generators keep the eye openings; 3: and
# give their hole).
EXPORT_FORMAT = 3


def make_session(model: bytes | str | Path, spin: bool = True) -> Any:
    """An ONNX Runtime CPU session tuned for this machine (one thread per core).

    ``spin=False`` stops its idle threads from spinning between runs: ~2 ms slower per run,
    but when other work shares the cores (Face Mesh between runs, a browser beside `eyeedit
    serve`) the spinning took a whole core from it.
    """
    # Imported here, when a session is first needed: importing ONNX Runtime takes time and
    # writes a session file into the temporary folder, which `serve` first points at a workspace
    # of its own (every command's options are parsed before that, and must not import it).
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


def cached_onnx_path(model: ModelFile, part: str = "whole") -> Path:
    """Where the cache keeps a model file's ONNX export (keyed by the file's content and by
    :data:`EXPORT_FORMAT`); ``part="fill"`` or ``"find"``: a fill generator's second or first
    pass alone."""
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()[:20]
    suffix = "" if part == "whole" else f"-{part}"
    return cache_dir() / f"{digest}-v{EXPORT_FORMAT}{suffix}.onnx"
