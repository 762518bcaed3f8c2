"""Iris recolouring from the refined Face Mesh iris landmarks (468-472, 473-477).

The iris is the landmark circle intersected with the eyelid opening (the lids cover its top and
bottom), minus the pupil (a dark disc at ~0.4 of the iris radius) and minus specular highlights
(the brightest pixels: window reflections stay white on any iris). Inside it, colour changes in
CIE Lab: a and b move to the target's chroma while L keeps its detail (the radial fibres and the
dark limbal ring are what make an iris look real), and the mean lightness moves part of the way
toward the target's. Edges are feathered by about a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from eyeedit.data.effects.base import (
    Box,
    Canvas,
    Rendered,
    box_around,
    jitter_color,
    paste_patch,
)
from eyeedit.geometry import blur
from eyeedit.imageio import hex_color, parse_color
from eyeedit.landmarks import LEFT_EYE, RIGHT_EYE, Face

# Typical iris colours (sRGB), picked from the mid-tones of real irises.
# Real irises are far less saturated than the named colours suggest.
COLORS = {"blue": "#5f82a6", "green": "#66805a", "brown": "#553a28", "grey": "#868e96",
          "hazel": "#7a6440"}

# Irises smaller than this (pixels of radius) have too few pixels to recolour convincingly.
MIN_IRIS_RADIUS = 3.0
# Lid opening height over eye width below which an eye counts as closed (open: 0.25-0.35).
MIN_OPENNESS = 0.12


@dataclass(frozen=True)
class EyeColorParams:
    """Target colour ``#rrggbb`` and how the iris is segmented and recoloured.

    ``strength`` in [0, 1] is how far a/b move to the target; ``lightness`` how far the iris's
    mean L moves toward the target's; ``detail`` scales the original a/b variation that is kept;
    ``pupil`` is the pupil radius over the iris radius; ``limbal`` darkens the iris's outer rim
    (the limbal ring) by that many L units.
    """

    color: str
    color_name: str
    strength: float
    lightness: float
    detail: float
    pupil: float
    limbal: float


def parse_target(text: str) -> tuple[str, str]:
    """``blue|green|brown|grey|hazel`` or a hex value -> (name, ``#rrggbb``); ValueError if neither."""
    key = text.strip().lower()
    if key == "gray":
        key = "grey"
    if key in COLORS:
        return key, COLORS[key]
    try:
        return "custom", hex_color(parse_color(key))
    except ValueError:
        raise ValueError(f"colour {text!r} is neither one of {', '.join(COLORS)} nor a hex value like #3a6ea5") from None


def unusable(face: Face) -> str | None:
    """Why this face's irises cannot be recoloured (``eyes-closed``, ``face-too-small``), or None."""
    if float(face.eye_openness().min()) < MIN_OPENNESS:
        return "eyes-closed"
    if float(face.iris_radii.min()) < MIN_IRIS_RADIUS:
        return "face-too-small"
    return None


def sample_params(rng: np.random.Generator, face: Face, color: str | None = None) -> EyeColorParams:
    """A random target colour (or the pinned ``color``, a name or hex) with natural variation."""
    if color is None:
        name = str(rng.choice(list(COLORS)))
        target = hex_color(jitter_color(rng, parse_color(COLORS[name]), 14))
    else:
        name, target = parse_target(color)
    return EyeColorParams(color=target, color_name=name, strength=float(rng.uniform(0.8, 0.95)),
                          lightness=float(rng.uniform(0.5, 0.75)), detail=float(rng.uniform(0.2, 0.4)),
                          pupil=float(rng.uniform(0.36, 0.44)), limbal=float(rng.uniform(3, 10)))


def iris_masks(image: np.ndarray, face: Face, params: EyeColorParams, box: Box) -> np.ndarray:
    """(h, w) float32 in [0, 1]: how much of each box pixel is recolourable iris (both eyes)."""
    disc, pupil, opening = Canvas(box), Canvas(box), Canvas(box)
    for center, radius, lids in zip(face.iris_centers, face.iris_radii, (RIGHT_EYE, LEFT_EYE)):
        disc.disc(center, radius)
        pupil.disc(center, radius * params.pupil)
        opening.fill(face.points[list(lids)])
    radius = float(face.iris_radii.mean())
    mask = disc.result() * (1 - pupil.result()) * opening.result()
    x0, y0, x1, y1 = box
    mask *= 1 - _highlights(image[y0:y1, x0:x1], mask)
    return np.clip(blur(mask, 0.12 * radius), 0, 1) * (mask > 0)


def _highlights(patch: np.ndarray, iris: np.ndarray) -> np.ndarray:
    """(h, w) in [0, 1]: specular reflections, i.e. pixels far brighter than the iris around them."""
    luma = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
    inside = luma[iris > 0.5]
    if inside.size == 0:
        return np.zeros_like(luma)
    threshold = max(float(np.percentile(inside, 50)) + 60, 150)
    return np.clip((luma - threshold) / 30 + 0.5, 0, 1)


def render(image: np.ndarray, face: Face, params: EyeColorParams) -> Rendered:
    """Recolour both irises in an (H, W, 3) uint8 RGB image toward ``params.color``.

    Returns the edited copy and the (H, W) bool mask of touched pixels (inside the eye openings);
    every other pixel is bit-identical to ``image``.
    """
    radius = float(face.iris_radii.max())
    box = box_around(face.iris_centers, margin=1.5 * radius + 2, shape=image.shape)
    if box[2] <= box[0] or box[3] <= box[1]:
        return Rendered(image.copy(), np.zeros(image.shape[:2], bool))
    alpha = iris_masks(image, face, params, box)
    x0, y0, x1, y1 = box
    patch = image[y0:y1, x0:x1]
    lab = cv2.cvtColor(patch.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)  # L 0-100, a/b ~ +-100
    recoloured = _recolour(lab, alpha, params)
    recoloured[..., 0] -= params.limbal * _rim_weight(face, box)
    rgb = cv2.cvtColor(recoloured, cv2.COLOR_LAB2RGB) * 255
    blended = patch * (1 - alpha[..., None]) + rgb * alpha[..., None]
    return paste_patch(image, box, blended, alpha > 1e-3)


def _recolour(lab: np.ndarray, alpha: np.ndarray, params: EyeColorParams) -> np.ndarray:
    """Move the iris's a/b to the target's and its mean L part-way, keeping L's detail."""
    target = cv2.cvtColor(np.float32(parse_color(params.color)).reshape(1, 1, 3) / 255,
                          cv2.COLOR_RGB2LAB)[0, 0]
    weights = alpha / max(float(alpha.sum()), 1e-6)
    mean = (lab * weights[..., None]).reshape(-1, 3).sum(0)  # (3,) alpha-weighted iris mean
    out = lab.copy()
    out[..., 0] = np.clip(lab[..., 0] + params.lightness * (target[0] - mean[0]), 0, 100)
    # Chroma scales with lightness: a dark fibre of a blue iris is a dark, less saturated blue.
    rel = np.clip(out[..., 0] / max(float(target[0]), 1.0), 0.3, 1.1)
    for c in (1, 2):
        new = target[c] * rel + params.detail * (lab[..., c] - mean[c])
        out[..., c] = lab[..., c] + params.strength * (new - lab[..., c])
    return out


def _rim_weight(face: Face, box: Box) -> np.ndarray:
    """(h, w) in [0, 1]: 1 on the outer fifth of either iris, fading to 0 at 0.6 of its radius."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    weight = np.zeros(xs.shape, np.float32)
    for (cx, cy), radius in zip(face.iris_centers, face.iris_radii):
        r = np.hypot(xs - cx, ys - cy) / max(float(radius), 1e-6)
        weight = np.maximum(weight, np.clip((r - 0.6) / 0.25, 0, 1) * (r <= 1.2))
    return weight
