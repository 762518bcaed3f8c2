"""Generator backends for inference: each turns a batch of uint8 crops into translated crops.

A translator is a callable taking (N, H, W, 3) uint8 RGB crops and returning the same shape.
The translators here also have ``with_alpha(crops) -> (crops, alpha)``: alpha is the (N, H, W)
float32 mask in [0, 1] of a model that predicts where it edits, or None for one that does not
(:func:`translate_with_alpha` asks any translator). Translators of fill generators (``fills``)
also have ``with_hole(crops, holes=None) -> (crops, alpha, holes)``: without holes they find
them (both passes); with holes, (N, H, W) in {0, 1}, they only fill those (one pass); and
``find_hole(crops) -> (found, holes)``, the first pass alone: its alpha and the holes from it.
ONNX Runtime runs a cached export of the model and needs no torch; the PyTorch backend lives in
:mod:`eyeedit.editing.torch_backend` and is imported only when chosen.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from eyeedit.editing.channels import to_model_channels, to_rgb
from eyeedit.model.sessions import cached_onnx_path, make_session
from eyeedit.model.store import ModelFile

BACKENDS = ("auto", "torch", "onnx")


class Translator(Protocol):
    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB crops -> translated crops of the same shape."""
        ...


def translate_with_alpha(translate: Any, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(translated crops, alpha or None) from any translator; a plain callable has no alpha."""
    with_alpha = getattr(translate, "with_alpha", None)
    return with_alpha(crops) if with_alpha is not None else (translate(crops), None)


class OnnxTranslator:
    """The generator exported to ONNX and run by ONNX Runtime (one session, reused).

    An export with an ``alpha`` output (a generator that predicts where it edits) also yields
    the mask; exports without one run as before. A fill generator runs as
    :class:`OnnxFillTranslator`.
    """

    fills = False

    def __init__(self, session: Any, in_channels: int):
        self.session = session
        self.in_channels = in_channels
        names = [o.name for o in session.get_outputs()]
        self.outputs = [n for n in ("output", "alpha") if n in names]

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self.with_alpha(crops)[0]

    def with_alpha(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return _decode(_run_in_chunks(self.session, self.outputs, {"input": _encode(crops, self.in_channels)}))


class OnnxFillTranslator:
    """A fill generator's export as its two passes, each exported alone and run by its own
    session (made on first use): the first finds the hole (``find_hole``), the second fills a
    hole (``with_hole`` with holes). The editor runs them apart (it adds to the hole between
    them, and video reuses a hole), so the export of both passes in one graph is not loaded."""

    fills = True

    def __init__(self, find_session: Callable[[], Any], fill_session: Callable[[], Any], in_channels: int):
        self.in_channels = in_channels
        self._make = {"find": find_session, "fill": fill_session}
        self._sessions: dict[str, Any] = {}

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self.with_alpha(crops)[0]

    def with_alpha(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self.with_hole(crops)[:2]

    def with_hole(self, crops: np.ndarray, holes: np.ndarray | None = None,
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        if holes is None:
            holes = self.find_hole(crops)[1]
        hole = np.ascontiguousarray(holes[:, None], dtype=np.float32)
        filled = _run_in_chunks(self._session("fill"), ["output", "alpha"],
                                {"input": _encode(crops, self.in_channels), "hole": hole})
        return (*_decode(filled), holes)

    def find_hole(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first pass alone: its alpha and the holes from it, (N, H, W) float32."""
        found, hole = _run_in_chunks(self._session("find"), ["found", "hole"],
                                     {"input": _encode(crops, self.in_channels)})
        return found[:, 0].astype(np.float32), hole[:, 0].astype(np.float32)

    def _session(self, part: str) -> Any:
        if part not in self._sessions:
            self._sessions[part] = self._make[part]()
        return self._sessions[part]


def _encode(crops: np.ndarray, in_channels: int) -> np.ndarray:
    x = to_model_channels(crops, in_channels).astype(np.float32)  # (N, H, W, C)
    return (np.ascontiguousarray(x.transpose(0, 3, 1, 2)) / 127.5 - 1.0).astype(np.float32)  # (N, C, H, W)


def _decode(found: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    y = np.clip((found[0].transpose(0, 2, 3, 1) + 1.0) * 127.5, 0, 255)  # (N, H, W, C)
    alpha = found[1][:, 0].astype(np.float32) if len(found) > 1 else None  # (N, H, W)
    return to_rgb(np.rint(y).astype(np.uint8)), alpha


# Crops per ONNX Runtime run. A group photo's 29 crops took 160-200 ms as one batch and 133-137 ms
# in runs of 4 or 8 (the activations of a large batch no longer stay in cache), 159 ms one by one.
MAX_BATCH = 8


def _run_in_chunks(session: Any, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """``session.run`` over the batch in runs of at most :data:`MAX_BATCH`, outputs joined."""
    n = len(next(iter(feed.values())))
    if n <= MAX_BATCH:
        return session.run(names, feed)
    parts = [session.run(names, {k: v[i:i + MAX_BATCH] for k, v in feed.items()}) for i in range(0, n, MAX_BATCH)]
    return [np.concatenate(outs) for outs in zip(*parts)]


def choose_backend(backend: str, device: str) -> str:
    """Resolve ``auto``: ONNX Runtime on CPU when it (and onnx, for the export) is installed,
    PyTorch otherwise.

    On a CPU, ONNX Runtime ran the shipped generator 2.5-3.7x faster than eager PyTorch fp32
    (see the README's benchmarks and `eyeedit bench`); on a GPU, PyTorch keeps the model on the
    device.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "onnx" and device != "cpu":  # its sessions run on the CPU only
        raise ValueError(f"the onnx backend runs on the CPU; for --device {device} use --backend torch or auto")
    if backend != "auto":
        return backend
    if device != "cpu":
        return "torch"
    exporter_present = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
    return "onnx" if exporter_present else "torch"


def cached_onnx(model: ModelFile, part: str = "whole") -> Path:
    """The ONNX export of a model file (or of a fill generator's ``part="fill"``), made once
    and kept in the cache."""
    target = cached_onnx_path(model, part)
    if not target.is_file():
        _export(model, target, part)
    return target


def _export(model: ModelFile, target: Path, part: str = "whole") -> None:
    # Imported here on purpose: exporting needs torch (seconds to import), while running a
    # cached export does not, so `apply` and `preview` start without torch once cached.
    from eyeedit.model.export import export_onnx

    export_onnx(model, target, part=part)


def _onnx_session(model: ModelFile, spin: bool = True, part: str = "whole") -> Any:
    """An ONNX Runtime session from the export cache; a damaged cache entry is made again, and
    without a writable cache the export is made in a temporary folder."""
    try:
        onnx_path = cached_onnx(model, part)
    except OSError:
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "model.onnx"
            _export(model, target, part)
            return make_session(target.read_bytes(), spin)
    try:
        return make_session(onnx_path, spin)
    except Exception:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
        onnx_path.unlink(missing_ok=True)  # e.g. truncated by a crash or a full disk
        return make_session(cached_onnx(model, part), spin)


def load_translator(model: ModelFile, backend: str = "auto", device: str = "cpu",
                    precision: str = "fp32", fold: bool = True, spin: bool = True) -> Translator:
    """The translator of a model file on the chosen backend.

    ``fold=False`` keeps the PyTorch network exactly as trained (the benchmark's baseline);
    ``spin=False`` stops ONNX Runtime's idle threads spinning (see :func:`make_session`).
    """
    if choose_backend(backend, device) == "onnx":
        if model.metadata.get("generator", {}).get("fill"):
            # Its sessions (the first pass, the fill pass) take turns in video: the idle one's
            # spinning threads took a core from the other (26 vs 32 FPS previewing).
            return OnnxFillTranslator(lambda: _onnx_session(model, False, part="find"),
                                      lambda: _onnx_session(model, False, part="fill"), model.in_channels)
        return OnnxTranslator(_onnx_session(model, spin), model.in_channels)
    # Imported here on purpose: torch takes seconds to import and the ONNX path never needs it.
    from eyeedit.editing.torch_backend import load_torch_translator

    return load_torch_translator(model, device, precision, fold)
