"""Lens outlines a removal model's first pass half-sees, completed by their shape.

On rimless and thin frames the first pass (see ``GeneratorConfig.fill``) marks the lens edge
only faintly, in broken stretches well below the hole's thresholds, so the edges stayed in the
photo as pale outlines. A lens edge is a smooth closed curve around an eye, though, and along
the whole curve the faint marks add up. :func:`lens_rings` finds, around each eye, the closed
curve with the most first-pass evidence (dynamic programming over angles, the radius moving
smoothly), and returns the stretches of it the first pass marked at all, to erase with the
hole. Where the first pass saw nothing at all (often a rimless lens's lower edge), the photo's
own thin lines (:func:`crop_lines`) guide the curve and say what to erase. Pure numpy and
OpenCV: the ONNX path runs it too.
"""

from __future__ import annotations

import cv2
import numpy as np

# The curve is sampled at this many angles around each eye.
RING_ANGLES = 96
# Radii searched, in inter-eye distances from the iris centre, on an ellipse this much wider
# than tall (lenses are wider than an eye is tall; the eye itself stays inside the smallest).
RING_RADII = (0.16, 0.7)
RING_RADIUS_STEP = 0.0115
RING_STRETCH = (1.25, 0.85)
# Evidence is the first pass's alpha square-rooted, so faint but consistent marks count.
# A stretch of the curve is erased where the evidence on both its ends is above RING_FLOOR
# (alpha 0.0225); a curve counts at all only if its mean evidence reaches RING_MIN (alpha 0.04
# on average: not speckle). With the shipped `no-glasses`, the curves' means were 0.33-0.99 on
# 45 glasses wearers not held out, and 0.21-0.50 on 59 faces without glasses (lids, creases):
# whether a crop has glasses at all is decided by its hole (RING_HOLE_SHARE).
RING_FLOOR = 0.15
RING_MIN = 0.2
# Eye openings, grown by this many pixels, are never part of a curve.
RING_KEEP_OUT = 2
# Width of the erased curve, in inter-eye distances (3 px in the 256x128 glasses crop).
RING_WIDTH = 0.035


# A rimless lens's lower edge often has no first-pass evidence at all, yet shows in the photo as
# a thin line (bright where the edge catches the light, dark where it bends it). Line strength:
# the luminance Hessian's larger eigenvalue magnitude at LINE_SIGMA px, over LINE_SCALE times
# the crop's median (skin grain and most wrinkles stay below it), capped at 1. Lines count only
# below the eyes, from LINE_ABOVE inter-eye distances above their centre line (higher up the
# first pass sees the edges, and brow hairs are lines too), and LINE_EYE_GAP inter-eye
# distances away from the eye openings (the lids' own lines), and only on curves the first
# pass already marks enough (RING_MIN). A stretch with line strength above LINE_FLOOR is
# erased. Chosen on the 45 frame donors (people not held out) by eye: at 0.3 the lower edges
# of four rimless and thin metal frames went, at 0.5 parts of them stayed.
LINE_SIGMA = 1.0
LINE_SCALE = 6.0
# The crop's median line strength is 4.5-11.5 on portraits (36 Congress crops); a crop with no
# texture at all (a flat, drawn or heavily smoothed image) is held to this floor instead, so
# that a barely visible line does not count as a strong one.
LINE_MIN_MEDIAN = 2.0
LINE_FLOOR = 0.3
LINE_ABOVE = 0.06
LINE_EYE_GAP = 0.07


def crop_lines(crop: np.ndarray, eye_centers: np.ndarray, keep_out: np.ndarray | None = None,
               ) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how strongly ``crop`` (H, W, 3 uint8 RGB) shows a thin line at
    each pixel, where a lens's lower edge may run (see LINE_SCALE); zero above the eyes and
    near ``keep_out`` (H, W bool, the eye openings). ``eye_centers`` (2, 2) as in lens_rings."""
    lum = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    smooth = cv2.GaussianBlur(lum, (0, 0), LINE_SIGMA)
    dxx = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3)
    dyy = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3)
    dxy = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3)
    mean, spread = (dxx + dyy) / 2, np.sqrt(((dxx - dyy) / 2) ** 2 + dxy ** 2)
    strength = np.abs(mean) + spread  # the larger |eigenvalue|
    lines = np.clip(strength / (LINE_SCALE * max(float(np.median(strength)), LINE_MIN_MEDIAN)), 0, 1)
    unit = float(np.linalg.norm(eye_centers[1] - eye_centers[0]))
    top = float(np.mean(eye_centers[:, 1])) - LINE_ABOVE * unit
    lines[: max(0, int(np.ceil(top)))] = 0
    if keep_out is not None and keep_out.any():
        gap = max(1, round(LINE_EYE_GAP * unit))
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1, 2 * gap + 1))
        lines[cv2.dilate(keep_out.astype(np.uint8), disk) > 0] = 0
    return lines.astype(np.float32)


def lens_outlines(evidence: np.ndarray, centers: np.ndarray, unit: float) -> tuple[np.ndarray, np.ndarray]:
    """Around each of ``centers`` (E, 2) the closed curve through the most ``evidence`` (H, W),
    its radius changing by at most one step from angle to angle: (E, RING_ANGLES, 2) points and
    the evidence at each, (E, RING_ANGLES)."""
    angles = np.linspace(0, 2 * np.pi, RING_ANGLES, endpoint=False)
    radii = np.arange(*RING_RADII, RING_RADIUS_STEP) * unit
    centers = np.asarray(centers, np.float64)[:, None, None]  # (E, 1, 1, 2)
    xs = (centers[..., 0] + np.cos(angles)[:, None] * radii * RING_STRETCH[0]).astype(np.float32)
    ys = (centers[..., 1] + np.sin(angles)[:, None] * radii * RING_STRETCH[1]).astype(np.float32)
    grids = np.stack([cv2.remap(evidence.astype(np.float32), x, y, cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                      for x, y in zip(xs, ys)])  # (E, angles, radii)
    path = _best_closed_paths(grids)  # (E, angles)
    e, rows = np.arange(len(grids))[:, None], np.arange(RING_ANGLES)[None]
    return np.stack([xs[e, rows, path], ys[e, rows, path]], -1), grids[e, rows, path]


def _best_closed_paths(grids: np.ndarray) -> np.ndarray:
    """For each (angles, radii) grid, per row the column of the path with the largest sum whose
    column moves by at most one from row to row, the rows taken as a circle: the path runs on
    for half a turn more and the last full turn is kept, whose start no longer depends on where
    the first began. (E, angles) columns."""
    n_grids, n_rows, n = grids.shape
    total = n_rows + n_rows // 2
    padded = np.full((n_grids, n + 2), -np.inf, np.float32)
    padded[:, 1:-1] = grids[:, 0]
    steps = np.zeros((total, n_grids, n), np.int8)  # per row, where each column came from: -1, 0, +1
    for k in range(1, total):
        left, stay, right = padded[:, :-2], padded[:, 1:-1], padded[:, 2:]
        side = np.maximum(left, right)
        steps[k] = np.where(stay >= side, 0, np.where(left >= right, -1, 1))
        padded[:, 1:-1] = np.maximum(stay, side) + grids[:, k % n_rows]
    g = np.arange(n_grids)
    j = padded[:, 1:-1].argmax(axis=1)
    picked = np.empty((n_grids, total), int)
    for k in range(total - 1, 0, -1):
        picked[:, k] = j
        j = j + steps[k, g, j]
    picked[:, 0] = j
    last_turn = picked[:, total - n_rows:]  # rows (total - n_rows) .. (total - 1), mod n_rows
    return np.roll(last_turn, (total - n_rows) % n_rows, axis=1)


def lens_rings(found: np.ndarray, eye_centers: np.ndarray, keep_out: np.ndarray | None = None,
               lines: np.ndarray | None = None) -> np.ndarray:
    """(H, W) float32 {0, 1}: the stretches of each eye's lens outline that the first pass
    ``found`` (H, W alpha in [0, 1]) marked, or where ``lines`` (H, W in [0, 1], from
    :func:`crop_lines`) shows a line, for curves the first pass marked enough overall.

    ``eye_centers`` (2, 2) are the iris centres in the same pixels; ``keep_out`` (H, W bool),
    e.g. the eye openings, is never included."""
    first = np.sqrt(np.clip(found, 0, 1)).astype(np.float32)
    evidence = first if lines is None else np.maximum(first, lines)
    unit = float(np.linalg.norm(eye_centers[1] - eye_centers[0]))
    out = np.zeros(found.shape, np.uint8)
    width = max(2, round(RING_WIDTH * unit))
    for points, seen in zip(*lens_outlines(evidence, eye_centers, unit)):
        # With lines, the curve's evidence is not the first pass's alone: sample that along it.
        marked = seen if lines is None else _along(first, points)
        if marked.mean() < RING_MIN:
            continue
        erase = (marked > RING_FLOOR) | (seen > LINE_FLOOR if lines is not None else False)
        corners = np.round(points).astype(int)
        for i in range(RING_ANGLES):
            j = (i + 1) % RING_ANGLES
            if erase[i] and erase[j]:
                cv2.line(out, (int(corners[i, 0]), int(corners[i, 1])), (int(corners[j, 0]), int(corners[j, 1])), 1, width)
    ring = out.astype(np.float32)
    if keep_out is not None:
        ring[keep_out] = 0
    return ring


def _along(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``image`` (H, W) sampled bilinearly at ``points`` (N, 2), zero outside: (N,)."""
    xy = points.astype(np.float32)
    return cv2.remap(image, xy[None, :, 0], xy[None, :, 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)[0]


# A crop's hole must cover this share before lens outlines are looked for: on faces without
# glasses the first pass's hole is a few specks (lid highlights), on wearers' frames a band.
# With the shipped `no-glasses`: at most 2.0% of the crop on 58 of 59 faces without glasses
# (one, 8.7%), at least 8.7% on 45 glasses wearers (people not held out).
RING_HOLE_SHARE = 0.03


def hole_with_rings(found: np.ndarray, hole: np.ndarray, eye_centers: np.ndarray,
                    keep_out: np.ndarray | None = None, crop: np.ndarray | None = None) -> np.ndarray:
    """``hole`` (H, W) with the lens outlines of :func:`lens_rings` added, in crops where the
    hole already holds a frame; other holes are returned as they are. With the ``crop`` (H, W,
    3 uint8 RGB) its thin lines count too (:func:`crop_lines`)."""
    if hole.mean() < RING_HOLE_SHARE:
        return hole
    lines = None if crop is None else crop_lines(crop, eye_centers, keep_out)
    return np.maximum(hole, lens_rings(found, eye_centers, keep_out, lines)).astype(hole.dtype)
