"""Measure the eye-corner template (eyeedit.geometry.EYE_HALF_WIDTH, CANTHAL_RISE) on real faces.

Usage: python scripts/measure_template.py ../shared/faces/london/neutral
Prints the median half eye width and canthal rise in eye units, and how far the brows and lower
lids reach, so the region specs in eyeedit.regions can be checked against real faces.
"""

from __future__ import annotations

import sys

import numpy as np

from eyeedit.imageio import find_images, read_image
from eyeedit.landmarks import LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE, detect_faces


def eye_units(face) -> np.ndarray:
    """(478, 2) landmarks in eye units: eye centres at (-0.5, 0) and (0.5, 0)."""
    a, b = face.eye_centers
    axis = b - a
    d = np.hypot(*axis)
    c, s = axis / d
    rot = np.array([[c, s], [-s, c]])
    return (face.points - (a + b) / 2) @ rot.T / d


def main(folder: str) -> None:
    half, rise, brow_top, lid_bottom = [], [], [], []
    for path in find_images(folder):
        faces = detect_faces(read_image(path), max_faces=1)
        if not faces:
            continue
        u = eye_units(faces[0])
        c = u[[33, 133, 362, 263]]
        half.append((np.hypot(*(c[1] - c[0])) + np.hypot(*(c[3] - c[2]))) / 4)
        rise.append(((c[1, 1] - c[0, 1]) + (c[2, 1] - c[3, 1])) / 4)
        brow_top.append(u[list(RIGHT_BROW + LEFT_BROW), 1].min())
        lid_bottom.append(u[list(RIGHT_EYE + LEFT_EYE), 1].max())
    print(f"faces: {len(half)}")
    print(f"EYE_HALF_WIDTH = {np.median(half):.3f}   CANTHAL_RISE = {np.median(rise):.3f}")
    print(f"brow top: median {np.median(brow_top):.3f}, min {np.min(brow_top):.3f} eye units")
    print(f"lower lid: median {np.median(lid_bottom):.3f}, max {np.max(lid_bottom):.3f} eye units")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/faces/london/neutral")
