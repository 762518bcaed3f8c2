"""Find the real frames on photos of people who wear glasses (for `synth --real-frames`).

A fill generator's first pass (a removal model such as `no-glasses`) marks where it sees frame;
on each donor photo's aligned crop that mark, cleaned by :func:`frame_weight`, is the frame
:mod:`eyeedit.data.real_frames` pastes onto other faces.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from eyeedit.editing.blending import brow_mask, eye_mask, grow_mask
from eyeedit.editing.torch_backend import TorchTranslator, load_torch_translator
from eyeedit.geometry import fit_crop_from_image, transform_points, warp_to_crop
from eyeedit.imageio import ImageError, read_image
from eyeedit.landmarks import detect_faces, largest_face
from eyeedit.model.networks import frame_hole
from eyeedit.model.store import resolve
from eyeedit.regions import RegionSpec

# Where the first pass counts as frame: sure above FRAME_SURE, and fainter frame above
# FRAME_FAINT connected to it (hysteresis, as the editor's hole). Its faint end is tighter
# than the editor's hole (the model's hole_low_threshold, 0.1 in the shipped no-glasses, and
# grown by 2 px): here skin beside the frame would be pasted with it.
FRAME_SURE = 0.5
FRAME_FAINT = 0.25
# Pieces smaller than this (pixels of a 256x128 crop) are specks, not frame.
MIN_PIECE = 30
# Eye openings and brows are grown by this many pixels before they are left out.
KEEP_OUT_GROW = 2
# The paste's edge is softened by a Gaussian of this sigma (pixels), as a photo's edges are.
EDGE_SIGMA = 0.7


@dataclass(frozen=True)
class FoundFrames:
    """Frames found on donor photos, in one region's aligned crops (what
    :class:`eyeedit.data.real_frames.RealFrames` saves in a dataset)."""

    crops: np.ndarray  # (N, H, W, 3) uint8: each donor photo's aligned crop
    weights: np.ndarray  # (N, H, W) float32 in [0, 1]: where its frame is, as paste weights
    names: tuple[str, ...]  # the donor photos' file names
    model: str  # sha256 of the model file whose first pass found them


def frame_weight(found: np.ndarray, keep_out: np.ndarray) -> np.ndarray:
    """(H, W) float32 paste weight in [0, 1] from a first pass's (H, W) alpha ``found``: the
    frame it is sure of and the fainter frame connected to it, less ``keep_out`` (H, W bool:
    the grown eye openings and brows), without specks, its edge softened."""
    hole = frame_hole(torch.from_numpy(np.ascontiguousarray(found, np.float32))[None, None],
                      FRAME_SURE, 0, low=FRAME_FAINT)[0, 0].numpy() > 0.5
    hole &= ~keep_out
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hole.astype(np.uint8), connectivity=8)
    kept = np.isin(labels, [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= MIN_PIECE])
    soft = cv2.GaussianBlur(kept.astype(np.float32), (0, 0), EDGE_SIGMA)
    return np.maximum(soft, kept.astype(np.float32))


def find_frames(photos: Sequence[Path], model: str | os.PathLike = "no-glasses",
                on_photo: Callable[[Path, str], None] | None = None) -> FoundFrames:
    """The frames ``model``'s first pass finds on ``photos`` (one face each, the largest), in
    the model's crop. ``on_photo(path, problem)`` is told of each photo, with "" when its frame
    was taken or why not (unreadable, no face, no frame found). Raises ModelError for a model
    that cannot be loaded, ValueError for one that is not a fill generator."""
    model_file = resolve(model)
    translator = load_torch_translator(model_file)
    if not translator.fills:
        raise ValueError(f"{model_file.path}: not a fill generator (a removal model trained with --fill)")
    spec = model_file.region
    crops, weights, names = [], [], []
    for path in photos:
        problem, found = _frame_of(Path(path), translator, spec)
        if found is not None:
            crops.append(found[0])
            weights.append(found[1])
            names.append(Path(path).name)
        if on_photo is not None:
            on_photo(Path(path), problem)
    shape = (spec.height, spec.width)
    return FoundFrames(np.stack(crops) if crops else np.zeros((0, *shape, 3), np.uint8),
                      np.stack(weights) if weights else np.zeros((0, *shape), np.float32),
                      tuple(names), hashlib.sha256(model_file.path.read_bytes()).hexdigest())


def _frame_of(path: Path, translator: TorchTranslator, spec: RegionSpec,
              ) -> tuple[str, tuple[np.ndarray, np.ndarray] | None]:
    try:
        image = read_image(path)
    except ImageError as exc:  # an unreadable donor is reported, not fatal
        return str(exc), None
    face = largest_face(detect_faces(image))
    if face is None:
        return "no face found", None
    crop_from_image = fit_crop_from_image(face.eye_corners, spec)
    crop = warp_to_crop(image, crop_from_image, spec.size)
    points = transform_points(crop_from_image, face.points)
    keep_out = np.maximum(grow_mask(eye_mask(points, spec.size), KEEP_OUT_GROW),
                          grow_mask(brow_mask(points, spec.size), KEEP_OUT_GROW)) > 0.5
    weight = frame_weight(translator.find(crop[None])[0], keep_out)
    if not weight.any():
        return "no frame found", None
    return "", (crop, weight)
