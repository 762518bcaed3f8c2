"""Detect and crop: aligned eye-region crops of every face in a set of photos (`eyeedit crop`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from eyeedit.geometry import fit_crop_from_image, warp_to_crop
from eyeedit.imageio import ImageError, read_image, write_image
from eyeedit.landmarks import detect_faces
from eyeedit.regions import RegionSpec
from eyeedit.viz import draw_face


def crop_images(
    images: Iterable[Path], out_dir: Path, spec: RegionSpec, max_faces: int | None = None
) -> tuple[list[Path], list[str]]:
    """Write ``<stem>_face<i>.png`` crops and ``<stem>_landmarks.png`` overlays into ``out_dir``
    for every face (or the ``max_faces`` largest), numbered left to right.

    Returns (files written, one-line problems such as unreadable files or photos without faces).
    """
    images = list(images)
    inputs = {p.resolve() for p in images}
    written: list[Path] = []
    problems: list[str] = []

    def write(target: Path, pixels: np.ndarray) -> None:
        # An input can carry an output's name (a crop made earlier, given again): never over it.
        if target.resolve() in inputs:
            problems.append(f"{target}: is one of the inputs, not overwritten")
        else:
            written.append(write_image(target, pixels))

    for path in images:
        try:
            image = read_image(path)
        except ImageError as exc:
            problems.append(str(exc))
            continue
        faces = detect_faces(image, max_faces=max_faces)
        if not faces:
            problems.append(f"{path}: no face found")
            continue
        overlay = image
        for i, face in enumerate(faces):
            crop_from_image = fit_crop_from_image(face.eye_corners, spec)
            crop = warp_to_crop(image, crop_from_image, spec.size)
            write(out_dir / f"{path.stem}_face{i}.png", crop)
            overlay = draw_face(overlay, face, crop_from_image, spec.size)
        write(out_dir / f"{path.stem}_landmarks.png", overlay)
    return written, problems
