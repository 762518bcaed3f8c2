"""The PyTorch generator backend (kept apart so the ONNX path never imports torch)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from eyeedit.editing.channels import to_model_channels, to_rgb
from eyeedit.model.networks import fold_upsampling
from eyeedit.model.store import ModelFile
from eyeedit.model.tensors import images_to_tensor, tensor_to_images
from eyeedit.model.weights import load_generator


class TorchTranslator:
    """Eager PyTorch generator in eval mode (dropout off, batch-norm running statistics)."""

    def __init__(self, model: Any, in_channels: int, device: str = "cpu", precision: str = "fp32"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.in_channels = in_channels
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.fills = bool(model.cfg.fill)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self.with_alpha(crops)[0]

    def with_alpha(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(translated crops, (N, H, W) float32 alpha in [0, 1] or None without one)."""
        with self._running():
            y, alpha = self.model(self._encode(crops), with_alpha=True)
        return self._decode(y, alpha)

    def with_hole(self, crops: np.ndarray, holes: np.ndarray | None = None,
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """A fill generator's (crops, alpha, holes): its holes found (both passes), or the
        given (N, H, W) holes filled (the second pass alone)."""
        if not self.fills:
            raise ValueError("only a fill generator takes or gives holes")
        x = self._encode(crops)
        with self._running():
            hole = self.model.find_hole(x) if holes is None else torch.from_numpy(holes[:, None]).to(x)
            y, alpha = self.model.fill_hole(x, hole)
        return (*self._decode(y, alpha), hole[:, 0].float().cpu().numpy())

    def find_hole(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A fill generator's first pass alone: its alpha and the hole made from it, both
        (N, H, W) float32 (see :meth:`with_hole` to fill a hole)."""
        if not self.fills:
            raise ValueError("only a fill generator has a first pass")
        with self._running():
            found, hole = self.model.found_and_hole(self._encode(crops))
        return found[:, 0].float().cpu().numpy(), hole[:, 0].float().cpu().numpy()

    def find(self, crops: np.ndarray) -> np.ndarray:
        """A fill generator's first-pass alpha, (N, H, W) float32 in [0, 1]: where it sees the
        thing it erases, before any threshold or growth."""
        if not self.fills:
            raise ValueError("only a fill generator has a first pass")
        with self._running():
            found = self.model.find(self._encode(crops))
        return found[:, 0].float().cpu().numpy()

    def _encode(self, crops: np.ndarray) -> torch.Tensor:
        return images_to_tensor(to_model_channels(crops, self.in_channels)).to(self.device)  # (N, C, H, W)

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=self.dtype,
                                                    enabled=self.dtype is not None):
            yield

    @staticmethod
    def _decode(y: torch.Tensor, alpha: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray | None]:
        if alpha is not None:
            alpha = alpha[:, 0].float().cpu().numpy()
        return to_rgb(tensor_to_images(y.float().cpu())), alpha


def load_torch_translator(model: ModelFile, device: str = "cpu", precision: str = "fp32",
                          fold: bool = True) -> TorchTranslator:
    """A model file's generator in eager PyTorch. ``fold=False`` keeps the network exactly as
    trained (the benchmark's baseline); folding gives the same output with about half the
    multiply-adds."""
    net, _ = load_generator(model.path, device="cpu")
    if fold:
        net = fold_upsampling(net)
    return TorchTranslator(net, model.in_channels, device, precision)
