"""Shared pieces of the effect renderers: the face frame, boxes, anti-aliased masks, compositing.

Convention
----------
* Images are (H, W, 3) uint8 RGB; colours are ``(r, g, b)`` tuples of ints in [0, 255].
* Layers are float32 in [0, 1] over a *box* ``(x0, y0, x1, y1)`` of the image (exclusive ends),
  so the cost of a render depends on the face size, not on the photo size.
* Face units: the eye midpoint is the origin, x runs along the eye line toward the image right,
  y is perpendicular (down on an upright face) and one unit is the inter-eye distance. The eye
  centres sit at (-0.5, 0) and (0.5, 0), as in :mod:`eyeedit.geometry`. Drawing in face units
  makes every shape follow the face's roll and scale for free.
* Untouched pixels are never recomputed: :func:`paste_patch` copies the input and overwrites only
  where a layer's alpha is above zero, so they stay bit-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from eyeedit.geometry import face_axes
from eyeedit.landmarks import Face

Box = tuple[int, int, int, int]

# Masks are drawn this many times larger and area-averaged down: sub-pixel accurate,
# anti-aliased edges for thin rims and liners (a 1-2 px line at the photo's resolution).
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Rendered:
    """An effect's output: ``image`` (H, W, 3) uint8 and ``mask`` (H, W) bool of touched pixels.

    ``coverage`` (H, W) float32 in [0, 1], when an effect provides it, says how much of each
    pixel the drawn object covers (1 on an opaque part, a fraction on a translucent one or an
    anti-aliased edge, 0 elsewhere); it is non-zero only inside ``mask``.
    """

    image: np.ndarray
    mask: np.ndarray
    coverage: np.ndarray | None = None


def image_from_face(face: Face) -> np.ndarray:
    """(2, 3) similarity taking face units (see Convention) to image pixels."""
    right, left = face.eye_centers.astype(np.float64)
    return np.column_stack([face_axes(face.eye_centers), (right + left) / 2])


def to_image(face_from: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) face-unit points to image pixels with ``image_from_face``; (N, 2) float64."""
    pts = np.asarray(points, np.float64)
    return pts @ face_from[:, :2].T + face_from[:, 2]


def to_face(face: Face, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) image pixels into face units; (N, 2) float64."""
    m = image_from_face(face)
    inv = cv2.invertAffineTransform(m)
    return np.asarray(points, np.float64) @ inv[:, :2].T + inv[:, 2]


def box_around(points: np.ndarray, margin: float, shape: tuple[int, ...]) -> Box:
    """Integer box holding (N, 2) image points plus ``margin`` pixels, clipped to ``shape``."""
    lo = np.floor(points.min(0) - margin).astype(int)
    hi = np.ceil(points.max(0) + margin).astype(int) + 1
    h, w = shape[:2]
    return max(lo[0], 0), max(lo[1], 0), min(max(hi[0], 0), w), min(max(hi[1], 0), h)


class Canvas:
    """Supersampled single-channel drawing surface over a box; ``.result()`` is (h, w) float32.

    Points are given in image pixels; cv2's ``shift`` bits keep their sub-pixel positions.
    """

    _SHIFT = 4

    def __init__(self, box: Box):
        self.box = box
        x0, y0, x1, y1 = box
        self.size = (x1 - x0, y1 - y0)
        self.pixels = np.zeros((self.size[1] * SUPERSAMPLE, self.size[0] * SUPERSAMPLE), np.uint8)
        self.blank = True  # nothing drawn yet: result() skips the resize

    def _fixed(self, points: np.ndarray) -> np.ndarray:
        # Pixel centres: image pixel (x0, y0) covers the supersampled square [0, S)^2 whose
        # centre is (S - 1) / 2.
        local = (np.asarray(points, np.float64) - self.box[:2]) * SUPERSAMPLE + (SUPERSAMPLE - 1) / 2
        return np.round(local * (1 << self._SHIFT)).astype(np.int32)

    def fill(self, polygon: np.ndarray, value: int = 255) -> Canvas:
        self.blank = False
        cv2.fillPoly(self.pixels, [self._fixed(polygon)], value, cv2.LINE_AA, shift=self._SHIFT)
        return self

    def stroke(self, polyline: np.ndarray, width_px: float, closed: bool, value: int = 255) -> Canvas:
        thickness = max(1, round(width_px * SUPERSAMPLE))
        self.blank = False
        cv2.polylines(self.pixels, [self._fixed(polyline)], closed, value, thickness, cv2.LINE_AA,
                      shift=self._SHIFT)
        return self

    def disc(self, center: np.ndarray, radius_px: float, value: int = 255) -> Canvas:
        c = self._fixed(np.asarray(center, np.float64)[None])[0]
        r = round(radius_px * SUPERSAMPLE * (1 << self._SHIFT))
        self.blank = False
        cv2.circle(self.pixels, (int(c[0]), int(c[1])), max(r, 1), value, -1, cv2.LINE_AA,
                   shift=self._SHIFT)
        return self

    def result(self) -> np.ndarray:
        w, h = self.size
        if w == 0 or h == 0 or self.blank:
            return np.zeros((h, w), np.float32)
        small = cv2.resize(self.pixels, (w, h), interpolation=cv2.INTER_AREA)
        return small.astype(np.float32) / 255.0


def over(base: np.ndarray, color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-blend ``color`` ((3,) or (h, w, 3) float in [0, 255]) over ``base`` (h, w, 3) float32."""
    if not np.any(alpha):  # an empty layer (a part this frame does not have): nothing to blend
        return base
    a = alpha[..., None]
    return base + (np.asarray(color, np.float32) - base) * a


def paste_patch(image: np.ndarray, box: Box, patch: np.ndarray, touched: np.ndarray,
                coverage: np.ndarray | None = None) -> Rendered:
    """Copy ``image`` and write the float ``patch`` (box-sized) where ``touched`` (box-sized bool).

    Every pixel outside ``touched`` keeps its exact input value. A box-sized ``coverage`` is
    clipped to [0, 1], zeroed outside ``touched`` and returned at full image size.
    """
    out = image.copy()
    mask = np.zeros(image.shape[:2], bool)
    full = None if coverage is None else np.zeros(image.shape[:2], np.float32)
    x0, y0, x1, y1 = box
    if x1 > x0 and y1 > y0:
        new = np.clip(np.rint(patch), 0, 255).astype(np.uint8)
        region = out[y0:y1, x0:x1]
        region[touched] = new[touched]
        mask[y0:y1, x0:x1] = touched
        if full is not None:
            full[y0:y1, x0:x1] = np.where(touched, np.clip(coverage, 0, 1), 0)
    return Rendered(out, mask, full)


def jitter_color(rng: np.random.Generator, rgb: tuple[int, int, int], amount: float) -> tuple[int, int, int]:
    """A colour near ``rgb``: each channel moved by up to ``amount`` (0-255 scale)."""
    moved = np.clip(np.asarray(rgb, np.float64) + rng.uniform(-amount, amount, 3), 0, 255)
    return tuple(int(round(c)) for c in moved)


class TypicalDraws:
    """Stands in for ``np.random.Generator`` when variation is off (`synth --no-variation`).

    Every range gives its middle, every probability test its first branch and every choice its
    first option, so the rendered look becomes a function of the face alone: a model trained on
    such pairs can learn it exactly instead of averaging over lens sizes or strengths it has no
    way to see in the input.
    """

    def uniform(self, low: float = 0.0, high: float = 1.0, size: int | None = None) -> float | np.ndarray:
        mid = (low + high) / 2
        return mid if size is None else np.full(size, mid)

    def random(self) -> float:
        return 0.0

    def choice(self, options: Sequence[Any]) -> Any:
        return options[0]
