"""Pictures of a run: training curves (matplotlib) and image grids (torchvision's make_grid)."""

from __future__ import annotations

import os
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, works without a display

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from eyeedit.imageio import write_image  # noqa: E402

# (record kind, key, panel title, log scale): losses span orders of magnitude, metrics do not.
PANELS = (
    ("train", "G_GAN", "G adversarial loss", True),
    ("train", "G_L1", "G L1 loss", True),
    ("train", "D", "D loss (real + fake)", True),
    ("val", "l1", "validation L1", False),
    ("val", "psnr", "validation PSNR (dB)", False),
    ("val", "ssim", "validation SSIM", False),
)


def _series(records: list[dict[str, Any]], kind: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one quantity; ``D`` is the sum of D's real and fake losses."""
    rows = [r for r in records if r.get("kind") == kind]
    if key == "D":
        pts = [(r["step"], r["D_real"] + r["D_fake"]) for r in rows if "D_real" in r]
    else:
        pts = [(r["step"], r[key]) for r in rows if key in r]
    arr = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def plot_curves(records: list[dict[str, Any]], path: str | os.PathLike) -> np.ndarray:
    """Draw losses and validation metrics from metrics.jsonl records into a PNG at ``path``.

    Returns the (H, W, 3) uint8 RGB image: a 3x2 grid of panels, step on the x axis.
    """
    fig, axes = plt.subplots(3, 2, figsize=(9, 8), dpi=100, constrained_layout=True)
    for ax, (kind, key, title, log) in zip(axes.flat, PANELS):
        steps, values = _series(records, kind, key)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(which="both", labelsize=8)
        ax.grid(alpha=0.3)
        if len(steps) == 0:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
            continue
        ax.plot(steps, values, marker="o" if len(steps) == 1 else None, linewidth=1.2, label=kind)
        if log and (values > 0).all():
            ax.set_yscale("log")
        ax.legend(fontsize=8, loc="best")
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3) uint8 RGB
    plt.close(fig)
    write_image(path, image)
    return image


def image_grid(rows: list[list[np.ndarray]], pad: int = 4, background: int = 255) -> np.ndarray:
    """Tile (H, W, 3) uint8 RGB images, row by row, into one (H, W, 3) uint8 image.

    Tiles of different sizes sit in cells as large as the largest tile (top-left aligned).
    """
    tiles = [t for row in rows for t in row]
    if not tiles:
        raise ValueError("image_grid needs at least one image")
    ch, cw = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    ncols = max(len(r) for r in rows)
    cells = torch.full((len(rows) * ncols, 3, ch, cw), background, dtype=torch.uint8)  # (N, 3, H, W)
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            cells[i * ncols + j, :, : tile.shape[0], : tile.shape[1]] = torch.from_numpy(tile).permute(2, 0, 1)
    grid = make_grid(cells, nrow=ncols, padding=pad, pad_value=background)  # (3, H, W)
    return grid.permute(1, 2, 0).numpy()  # (H, W, 3)
