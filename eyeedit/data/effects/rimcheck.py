"""Check a drawn rim: is it the colour asked for, and is it equally wide along its whole length?

A pinned look (e.g. black rectangular frames) is only learnable when every pair shows it the
same way; these two figures catch a rim that came out discoloured or bumpy.

* Colour: the mean CIEDE2000 difference (``skimage.color.deltaE_ciede2000`` on
  ``skimage.color.rgb2lab``, D65) between each rim pixel and the target colour. The rim's
  outermost pixel ring is left out, since anti-aliasing blends it with the skin behind.
* Width: the mask is upsampled (sub-pixel edges), thinned to its skeleton, and the distance
  transform on the skeleton gives the local width (twice the distance to the nearest edge).
  Reported as the median width and the share of skeleton samples within +-30% of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.morphology import skeletonize

_UPSAMPLE = 4
WIDTH_TOLERANCE = 0.3


@dataclass(frozen=True)
class RimCheck:
    """``delta_e``: mean CIEDE2000 to the target; ``width_px``: median rim width (pixels);
    ``width_even``: share of samples within +-30% of that median."""

    delta_e: float
    width_px: float
    width_even: float


def check_rim(image: np.ndarray, rim: np.ndarray, color: tuple[int, int, int]) -> RimCheck:
    """Measure a rim in an (H, W, 3) uint8 RGB ``image``; ``rim`` is an (H, W) bool mask or a
    float coverage in [0, 1] (thresholded at 0.5); ``color`` the (r, g, b) it should have.

    Raises ValueError when the mask is empty or its shape does not match the image.
    """
    soft = np.asarray(rim, np.float32)
    if soft.shape != image.shape[:2]:
        raise ValueError(f"rim mask {soft.shape} does not match the image {image.shape[:2]}")
    mask = soft >= 0.5
    if not mask.any():
        raise ValueError("rim mask is empty")
    return RimCheck(_mean_delta_e(image, mask, color), *_widths(soft, mask))


def _mean_delta_e(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int]) -> float:
    core = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    pixels = image[core if core.any() else mask].astype(np.float64) / 255
    target = np.broadcast_to(np.asarray(color, np.float64) / 255, pixels.shape)
    return float(deltaE_ciede2000(rgb2lab(pixels[None]), rgb2lab(target[None])).mean())


def _widths(soft: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = max(ys.min() - 2, 0), ys.max() + 3, max(xs.min() - 2, 0), xs.max() + 3
    crop = np.pad(soft[y0:y1, x0:x1], 2)  # a zero border: the distance transform sees every edge
    big = cv2.resize(crop, None, fx=_UPSAMPLE, fy=_UPSAMPLE, interpolation=cv2.INTER_LINEAR) >= 0.5
    dist = cv2.distanceTransform(big.astype(np.uint8), cv2.DIST_L2, 5)
    # A skeleton pixel's distance reaches the centre of the first pixel outside: half a pixel
    # past the edge on each side.
    widths = (2 * dist[skeletonize(big)] - 1) / _UPSAMPLE
    if widths.size == 0:
        return 0.0, 0.0
    median = float(np.median(widths))
    even = float(np.mean(np.abs(widths - median) <= WIDTH_TOLERANCE * median))
    return median, even
