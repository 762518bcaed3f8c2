"""Eye makeup from the Face Mesh lid and brow landmarks: eyeshadow and eyeliner with a wing.

Eyeshadow covers the mobile lid, from the upper lid margin toward the crease (a fraction of the
way to the lower edge of the brow), densest at the lid and fading upward; it is blended half by
multiplication, so skin texture and lid folds show through as with real powder. Eyeliner is a
band along the upper lid margin that thickens toward the outer corner and ends in a short wing
pointing up toward the tail of the brow. Nothing is drawn inside the eye opening.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eyeedit.data.effects.base import (
    Box,
    Canvas,
    Rendered,
    box_around,
    jitter_color,
    over,
    paste_patch,
)
from eyeedit.geometry import blur
from eyeedit.imageio import hex_color, parse_color
from eyeedit.landmarks import (
    LEFT_BROW,
    LEFT_EYE,
    LEFT_EYE_UPPER,
    RIGHT_BROW,
    RIGHT_EYE,
    RIGHT_EYE_UPPER,
    Face,
)

SHADOWS = {"taupe": "#8a6e60", "bronze": "#9a6a3c", "plum": "#6e3c5a", "mauve": "#a07080",
           "smoky": "#4a4a50", "rose-gold": "#c08a78", "olive": "#6e6a40", "navy": "#34405e",
           "copper": "#a05a38", "champagne": "#d0b090"}
LINERS = {"black": "#141214", "brown": "#3a2418", "navy": "#1a2040", "plum": "#3a1830"}

# A side: (upper lid margin outer->inner, brow lower edge outer->inner, eye opening polygon).
Side = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class MakeupParams:
    """Eyeshadow and eyeliner. Lengths are in inter-eye distances; colours are ``#rrggbb``.

    ``shadow_height`` is how far toward the brow the shadow reaches (0 = lid margin, 1 = brow);
    ``liner_width`` the liner's width at the outer corner; ``wing`` the wing's length (0 = none).
    """

    shadow_color: str
    shadow_name: str
    shadow_opacity: float
    shadow_height: float
    liner_color: str
    liner_opacity: float
    liner_width: float
    wing: float
    wing_angle: float


def sample_params(rng: np.random.Generator, face: Face, color: str | None = None,
                  liner: str | None = None) -> MakeupParams:
    """Random palette colours and amounts, from an everyday to an evening look.

    ``color`` pins the eyeshadow and ``liner`` the eyeliner (a palette name or a hex value):
    one colour scheme is something a small model can learn, a random palette is not.
    """
    check_pins(color, liner)
    name = str(rng.choice(list(SHADOWS)))
    drawn_liner = LINERS[str(rng.choice(list(LINERS)))]
    shadow = hex_color(jitter_color(rng, parse_color(SHADOWS[name]), 12))
    if color is not None:
        name, shadow = color, hex_color(parse_color(SHADOWS.get(color, color)))
    return MakeupParams(
        shadow_color=shadow, shadow_name=name,
        shadow_opacity=float(rng.uniform(0.45, 0.8)), shadow_height=float(rng.uniform(0.45, 0.75)),
        liner_color=hex_color(parse_color(LINERS.get(liner, liner))) if liner else drawn_liner,
        liner_opacity=float(rng.uniform(0.75, 0.95)),
        liner_width=float(rng.uniform(0.018, 0.035)),
        wing=float(rng.uniform(0.05, 0.12) if rng.random() < 0.7 else 0.0),
        wing_angle=float(rng.uniform(15, 35)),
    )


def check_pins(color: str | None = None, liner: str | None = None) -> None:
    """Raise ValueError naming the choices for a colour that is neither a palette name nor hex."""
    for value, palette, what in ((color, SHADOWS, "eyeshadow"), (liner, LINERS, "eyeliner")):
        if value is None or value in palette:
            continue
        try:
            parse_color(value)
        except ValueError:
            raise ValueError(f"unknown {what} colour {value!r}; use a hex value or one of "
                             f"{', '.join(palette)}") from None


def _sides(face: Face) -> list[Side]:
    out = []
    for upper, brow, opening in ((RIGHT_EYE_UPPER, RIGHT_BROW, RIGHT_EYE),
                                 (LEFT_EYE_UPPER, LEFT_BROW, LEFT_EYE)):
        # Brow tuples list the upper edge outside-in, then the lower edge inside-out.
        lower_brow = face.points[list(brow[5:])][::-1]
        out.append((face.points[list(upper)].astype(np.float64), lower_brow.astype(np.float64),
                    face.points[list(opening)].astype(np.float64)))
    return out


def _resample(curve: np.ndarray, n: int) -> np.ndarray:
    """(n, 2) points evenly spaced by arc length along an (m, 2) polyline."""
    seg = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    s = np.r_[0, np.cumsum(seg)]
    t = np.linspace(0, s[-1], n)
    return np.column_stack([np.interp(t, s, curve[:, 0]), np.interp(t, s, curve[:, 1])])


def shadow_polygon(lid: np.ndarray, brow: np.ndarray, height: float) -> np.ndarray:
    """Closed (48, 2) outline from the lid margin up to ``height`` of the way to the brow."""
    n = 24
    lid_s, brow_s = _resample(lid, n), _resample(brow, n)
    # The crease sits relatively lower at the inner corner than under the brow's tail.
    reach = height * np.linspace(1.0, 0.7, n)[:, None]
    crease = lid_s + reach * (brow_s - lid_s)
    return np.concatenate([lid_s, crease[::-1]])


def liner_polygon(lid: np.ndarray, width_px: float, wing_px: float, wing_angle: float,
                  up: np.ndarray) -> np.ndarray:
    """Closed outline of a liner on the lid margin (outer->inner), widest outside, with a wing."""
    n = 24
    lid_s = _resample(lid, n)
    taper = width_px * np.linspace(1.0, 0.25, n)[:, None]  # thin at the inner corner
    top = lid_s + taper * up
    if wing_px <= 0:
        return np.concatenate([lid_s, top[::-1]])
    outward = lid_s[0] - lid_s[3]
    outward /= max(np.linalg.norm(outward), 1e-6)
    a = np.radians(wing_angle)
    tip = lid_s[0] + (outward * np.cos(a) + up * np.sin(a)) * wing_px
    return np.concatenate([[tip], lid_s[1:], top[::-1]])


def render(image: np.ndarray, face: Face, params: MakeupParams) -> Rendered:
    """Apply eyeshadow and eyeliner to an (H, W, 3) uint8 RGB image.

    Returns the edited copy and the (H, W) bool mask of touched pixels (on the lids, below the
    brows, never inside the eye openings); every other pixel is bit-identical to ``image``.
    """
    unit = face.eye_distance
    sides = _sides(face)
    points = np.concatenate([np.concatenate(s) for s in sides])
    box = box_around(points, margin=0.2 * unit + 3, shape=image.shape)
    if box[2] <= box[0] or box[3] <= box[1]:
        return Rendered(image.copy(), np.zeros(image.shape[:2], bool))
    shadow, liner = _masks(face, sides, params, box)
    x0, y0, x1, y1 = box
    patch = image[y0:y1, x0:x1].astype(np.float32)
    tint = np.asarray(parse_color(params.shadow_color), np.float32) / 255
    # Part multiply (powder darkens and tints the skin), part normal blend (pigment covers it).
    patch = patch * (1 - shadow[..., None] * (1 - tint))
    patch = over(patch, tint * 255, 0.35 * shadow)
    patch = over(patch, np.asarray(parse_color(params.liner_color), np.float32), liner)
    return paste_patch(image, box, patch, np.maximum(shadow, liner) > 1e-3)


def _masks(face: Face, sides: list[Side], params: MakeupParams, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """(h, w) float32 opacities of the eyeshadow and the eyeliner, zero inside the eye openings."""
    unit = face.eye_distance
    up = _up(face)
    shadow, core, liner, opening = Canvas(box), Canvas(box), Canvas(box), Canvas(box)
    for lid, brow, eye in sides:
        shadow.fill(shadow_polygon(lid, brow, params.shadow_height))
        core.fill(shadow_polygon(lid, brow, params.shadow_height * 0.45))
        liner.fill(liner_polygon(lid, params.liner_width * unit, params.wing * unit,
                                 params.wing_angle, up))
        opening.fill(eye)
    eye = opening.result()
    # Soft powder: a wide faint halo plus a denser band on the lid, both blurred.
    powder = 0.6 * blur(shadow.result(), 0.05 * unit) + 0.4 * blur(core.result(), 0.03 * unit)
    shadow_a = np.clip(powder * 1.25, 0, 1) * params.shadow_opacity * (1 - eye)
    liner_a = np.clip(blur(liner.result(), 0.004 * unit), 0, 1) * params.liner_opacity * (1 - eye)
    return shadow_a.astype(np.float32), liner_a.astype(np.float32)


def _up(face: Face) -> np.ndarray:
    """(2,) image unit vector toward the top of the head (perpendicular to the eye line)."""
    right, left = face.eye_centers.astype(np.float64)
    axis = (left - right) / max(float(np.linalg.norm(left - right)), 1e-6)
    return np.array([axis[1], -axis[0]])
