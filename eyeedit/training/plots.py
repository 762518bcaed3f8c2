"""Training curves drawn with OpenCV (no plotting library needed): one panel per quantity."""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from eyeedit.imageio import write_image

# (record kind, key, panel title)
PANELS = (
    ("train", "G_GAN", "G adversarial loss"),
    ("train", "G_L1", "G L1 loss"),
    ("train", "D", "D loss (real + fake)"),
    ("val", "l1", "validation L1"),
    ("val", "psnr", "validation PSNR (dB)"),
    ("val", "ssim", "validation SSIM"),
)
PANEL_W, PANEL_H, MARGIN = 420, 220, 42
COLOUR = (31, 119, 180)


def _series(records: list[dict[str, Any]], kind: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [r for r in records if r.get("kind") == kind]
    if key == "D":
        pts = [(r["step"], r["D_real"] + r["D_fake"]) for r in rows if "D_real" in r]
    else:
        pts = [(r["step"], r[key]) for r in rows if key in r]
    arr = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def _panel(xs: np.ndarray, ys: np.ndarray, title: str) -> np.ndarray:
    img = np.full((PANEL_H, PANEL_W, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, title, (MARGIN, 18), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    x0, y0, x1, y1 = MARGIN, 28, PANEL_W - 10, PANEL_H - 24
    cv2.rectangle(img, (x0, y0), (x1, y1), (160, 160, 160), 1)
    if len(xs) == 0:
        cv2.putText(img, "no data", (x0 + 10, (y0 + y1) // 2), font, 0.45, (120, 120, 120), 1)
        return img
    lo, hi = float(ys.min()), float(ys.max())
    hi = hi if hi > lo else lo + 1.0
    sx = (xs - xs.min()) / max(xs.max() - xs.min(), 1.0)
    px = x0 + sx * (x1 - x0)
    py = y1 - (ys - lo) / (hi - lo) * (y1 - y0)
    pts = np.round(np.stack([px, py], 1) * 16).astype(np.int32)  # 4 fractional bits
    cv2.polylines(img, [pts], False, COLOUR, 1, cv2.LINE_AA, shift=4)
    if len(xs) == 1:
        cv2.circle(img, tuple(int(v) for v in pts[0] // 16), 3, COLOUR, -1)
    for value, y in ((hi, y0 + 10), (lo, y1)):
        cv2.putText(img, f"{value:.4g}", (2, y), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"step {int(xs.min())}..{int(xs.max())}", (x0, PANEL_H - 6), font, 0.35,
                (0, 0, 0), 1, cv2.LINE_AA)
    return img


def plot_curves(records: list[dict[str, Any]], path: str | os.PathLike) -> np.ndarray:
    """Draw losses and validation metrics from metrics.jsonl records into a PNG at ``path``.

    Returns the (H, W, 3) uint8 image (a 3x2 grid of panels, step on the x axis).
    """
    panels = [_panel(*_series(records, kind, key), title) for kind, key, title in PANELS]
    rows = [np.concatenate(panels[i : i + 2], axis=1) for i in range(0, len(panels), 2)]
    image = np.concatenate(rows, axis=0)
    write_image(path, image)
    return image
