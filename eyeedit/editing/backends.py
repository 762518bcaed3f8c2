"""Generator backends for inference: each turns a batch of uint8 crops into translated crops.

A translator is a callable taking (N, H, W, 3) uint8 RGB crops and returning the same shape.
The model's channel counts are handled here (a 1-channel model sees luma and its output is
repeated to RGB), so the editor only ever deals in RGB crops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

BACKENDS = ("auto", "torch", "onnx")


def _to_model_channels(crops: np.ndarray, channels: int) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, H, W, channels) uint8."""
    if channels == 3:
        return crops
    luma = crops.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # (N, H, W)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]


def _to_rgb(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 1 or 3) uint8 -> (N, H, W, 3) uint8."""
    return images if images.shape[-1] == 3 else np.repeat(images, 3, axis=-1)


class TorchTranslator:
    """Eager PyTorch generator in eval mode (dropout off, batch-norm running statistics)."""

    def __init__(self, model: Any, in_channels: int, device: str = "cpu", precision: str = "fp32"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.in_channels = in_channels
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        from eyeedit.model.tensors import images_to_tensor, tensor_to_images

        torch = self.torch
        x = images_to_tensor(_to_model_channels(crops, self.in_channels)).to(self.device)  # (N, C, H, W)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.dtype,
                                                    enabled=self.dtype is not None):
            y = self.model(x)
        return _to_rgb(tensor_to_images(y.float().cpu()))


class OnnxTranslator:
    """The generator exported to ONNX and run by ONNX Runtime (one session, reused)."""

    def __init__(self, session: Any, in_channels: int):
        self.session = session
        self.in_channels = in_channels

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        x = _to_model_channels(crops, self.in_channels).astype(np.float32)  # (N, H, W, C)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2)) / 127.5 - 1.0  # (N, C, H, W) in [-1, 1]
        y = self.session.run(["output"], {"input": x.astype(np.float32)})[0]
        y = np.clip((y.transpose(0, 2, 3, 1) + 1.0) * 127.5, 0, 255)  # (N, H, W, C)
        return _to_rgb(np.rint(y).astype(np.uint8))


def choose_backend(backend: str, device: str) -> str:
    """Resolve ``auto``: ONNX Runtime on CPU when it (and onnx, for the export) is installed,
    PyTorch otherwise.

    On this project's 2-core CPU, ONNX Runtime ran the shipped generator about 3x faster than
    eager PyTorch fp32 (see `eyeedit bench`); on a GPU, PyTorch keeps the model on the device.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    if device != "cpu":
        return "torch"
    try:
        import onnx  # noqa: F401 - the exporter needs it
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnx"


def _cached_session(path: str | Path) -> Any:
    """An ONNX Runtime session from the export cache; a damaged cache entry is made again."""
    from eyeedit.model.export import cached_onnx, make_session

    onnx_path = cached_onnx(path)
    try:
        return make_session(onnx_path)
    except Exception:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
        onnx_path.unlink(missing_ok=True)  # e.g. truncated by a crash or a full disk
        return make_session(cached_onnx(path))


def load_translator(path: str | Path, backend: str = "auto", device: str = "cpu",
                    precision: str = "fp32", fold: bool = True,
                    ) -> tuple[TorchTranslator | OnnxTranslator, dict[str, Any]]:
    """(translator, model metadata) for a model file, on the chosen backend.

    ``fold=False`` keeps the PyTorch network exactly as trained (the benchmark's baseline);
    folding gives the same output with about half the multiply-adds.
    """
    from eyeedit.model.store import load_generator, read_metadata

    chosen = choose_backend(backend, device)
    if chosen == "onnx":
        from eyeedit.model.export import export_onnx, make_session

        meta = read_metadata(path)  # the export itself loads and checks the weights
        try:
            session = _cached_session(path)
        except OSError:  # no writable cache: export into memory instead
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / "model.onnx"
                export_onnx(path, target)
                session = make_session(target.read_bytes())
        return OnnxTranslator(session, int(meta["generator"].get("in_channels", 3))), meta
    from eyeedit.model.networks import fold_upsampling

    model, meta = load_generator(path, device="cpu")
    if fold:
        model = fold_upsampling(model)
    in_channels = int(meta["generator"].get("in_channels", 3))
    return TorchTranslator(model, in_channels, device, precision), meta
