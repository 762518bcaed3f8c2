"""Crops in the model's channel count and back: a 1-channel model sees luma and its output is
repeated to RGB, so the editor only ever deals in RGB crops."""

from __future__ import annotations

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601 weights


def to_model_channels(crops: np.ndarray, channels: int) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, H, W, channels) uint8."""
    if channels == 3:
        return crops
    luma = crops.astype(np.float32) @ LUMA  # (N, H, W)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]


def to_rgb(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 1 or 3) uint8 -> (N, H, W, 3) uint8."""
    return images if images.shape[-1] == 3 else np.repeat(images, 3, axis=-1)
