"""The one mapping between images and network tensors.

Convention: images outside torch are (H, W, C) uint8 RGB; tensors fed to the networks are float
(B, C, H, W) in [-1, 1]. Training and inference both go through these two functions.
"""

from __future__ import annotations

import numpy as np
import torch


def images_to_tensor(images: np.ndarray | torch.Tensor, channels: int | None = None) -> torch.Tensor:
    """(B, H, W, C) or (H, W, C) uint8 -> float32 (B, C, H, W) in [-1, 1].

    ``channels=1`` keeps the first channel (grey crops are stored as equal R, G, B).
    """
    t = torch.as_tensor(images)
    if t.dtype != torch.uint8:
        raise ValueError(f"images_to_tensor needs uint8 images, got {t.dtype}")
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if channels is not None:
        t = t[..., :channels]
    # (B, C, H, W), a channels-last view of the NHWC pixels; float() copies, so in place is safe
    return t.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def tensor_to_images(tensor: torch.Tensor) -> np.ndarray:
    """float (B, C, H, W) in [-1, 1] -> (B, H, W, 3) uint8 RGB (1-channel output is repeated)."""
    t = tensor.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    return t.permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3)
