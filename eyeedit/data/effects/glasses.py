"""Procedural eyeglasses drawn onto a face from its Face Mesh landmarks.

The frame is designed in face units (see :mod:`eyeedit.data.effects.base`), so it follows the face's
roll and scale; the lenses sit on the eye centres (each scaled by its eye's apparent width, a
cheap cue of yaw), the bridge passes over the nose at landmark 168, the nose pads rest beside
landmark 6, and the arms (temples) run from the hinges to the ears: they end just past the face
outline at landmarks 127 / 356 (beside the top of the ear), taper as they recede, and on the far
side of a turned head they are cut short where the head hides them.

Frame types (``style`` gives the lens shape and how the lens is held):

* full rims: round, rectangular, aviator, cat-eye;
* ``browline``: a thick bar over the top of the lenses, a thin metal wire below;
* ``semi-rimless``: a rim along the top only; below it the lens edge shows as on rimless frames;
* ``rimless``: no rim, only the lens edge, the bridge and the arms fixed to the lens by small
  drilled mounts. The edge shows as portraits show it: a whitish band where the ground edge
  catches the light, brightest along the bottom and uneven along its length, beside a faint
  dark line.

Materials: ``metal`` (a thin wire with a sharp glint, nose pads on pad arms), ``plastic``
(thick acetate: an opaque band with a darker inner bevel and a broad matte sheen),
``tortoiseshell`` (acetate with a procedural mottle of dark brown and amber) and ``two-tone``
(the material colour on top fading to a translucent light crystal below).

Layers, bottom to top: the frame's soft shadow on the skin (offset away from the light, never on
the lens), the arms, the lens (the face seen through it minified or magnified about the lens
centre, tint, window-like reflections, an occasional specular streak, the lens edge), the nose
pads and the rims, bridge and mounts with their material shading. ``render`` also returns a
coverage map (how much the glasses cover each pixel) beside the touched mask.

Real frames, for scale: lens 48-55 mm wide, bridge 16-20 mm, pupils about 62 mm apart, so a lens
is 0.75-0.9 inter-eye distances wide and the whole front spans about +-1.1 of them.
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
    image_from_face,
    jitter_color,
    over,
    paste_patch,
    to_face,
    to_image,
)
from eyeedit.geometry import blur, cast_shadow
from eyeedit.imageio import hex_color, parse_color
from eyeedit.landmarks import NOSE_BRIDGE, TEMPLES, Face

STYLES = ("round", "rectangular", "browline", "aviator", "cat-eye", "rimless", "semi-rimless")
MATERIALS = ("metal", "plastic", "tortoiseshell", "two-tone")

METAL_COLORS = {"gold": "#b89858", "silver": "#b8babe", "gunmetal": "#55585e", "black": "#26262a",
                "rose-gold": "#b47c68"}
PLASTIC_COLORS = {"black": "#141414", "tortoise": "#4a2c1a", "havana": "#6b4428", "navy": "#1c2640",
                  "burgundy": "#561c28", "grey": "#55565a", "olive": "#3d3f2a"}
# Tortoiseshell: the dark ground of the mottle (the frame colour) and its amber spots.
TORTOISE_GROUNDS = {"tortoise": "#2e170b", "havana": "#452512", "dark": "#1e120a"}
TORTOISE_SPOTS = {"amber": "#8e5624", "honey": "#a87a40", "red": "#7a3a1c"}
# Two-tone: the lower half's translucent crystal.
CRYSTALS = {"clear": "#dcd8d2", "champagne": "#cdb89a", "smoke": "#9c9aa0", "pink": "#d8b4b0"}
CLEAR_LENS = "#c8d2dc"  # the colour a clear lens gives, at a low alpha
TINTS = {"grey": "#3c4046", "brown": "#5a3f28", "green": "#2f4a36", "blue": "#2c4a6e", "rose": "#9a5a62"}

# (superellipse exponent, height / width) per style; the exponent squares the corners off.
_SHAPES = {"round": (2.0, 0.9), "rectangular": (4.5, 0.62), "browline": (3.2, 0.7),
           "aviator": (2.6, 0.82), "cat-eye": (2.5, 0.6), "rimless": (3.0, 0.66),
           "semi-rimless": (3.8, 0.64)}
# Lens half-widths in face units: round lenses are smaller than the others.
_HALF_WIDTHS = {"round": (0.33, 0.39), "rectangular": (0.38, 0.45), "browline": (0.38, 0.44),
                "aviator": (0.4, 0.46), "cat-eye": (0.38, 0.44), "rimless": (0.36, 0.43),
                "semi-rimless": (0.38, 0.44)}
# Random draws when nothing is pinned: mostly everyday rectangular and thin frames.
_STYLE_ODDS = (("rectangular", 0.28), ("round", 0.12), ("browline", 0.08), ("aviator", 0.07),
               ("cat-eye", 0.07), ("rimless", 0.19), ("semi-rimless", 0.19))
_MATERIAL_ODDS = {
    "round": (("metal", 0.6), ("plastic", 0.2), ("tortoiseshell", 0.15), ("two-tone", 0.05)),
    "rectangular": (("plastic", 0.4), ("metal", 0.35), ("tortoiseshell", 0.15), ("two-tone", 0.1)),
    "browline": (("plastic", 0.65), ("tortoiseshell", 0.35)),  # names the top bar
    "aviator": (("metal", 1.0),),
    "cat-eye": (("plastic", 0.45), ("tortoiseshell", 0.3), ("two-tone", 0.25)),
    "rimless": (("metal", 1.0),),  # names the bridge and arms
    "semi-rimless": (("metal", 0.6), ("plastic", 0.25), ("tortoiseshell", 0.15)),
}
_CONTOUR_POINTS = 96
# How far out (face units) an arm may run: the `glasses` crop ends at +-1.45, and the arm's
# shadow spreads a little further than the arm.
ARM_REACH = 1.3
# The frame's shadow on the skin: how much it darkens, its direction (degrees from straight
# down, away from a light above) and offset (face units), and its blur (face units, about 2 px
# in the `glasses` crop).
SHADOW_STRENGTH = (0.12, 0.3)
SHADOW_ANGLE = (-35.0, 35.0)
SHADOW_OFFSET = (0.025, 0.045)
SHADOW_SOFTNESS = 0.022


@dataclass(frozen=True)
class GlassesParams:
    """One pair of glasses. Lengths are in inter-eye distances; colours are ``#rrggbb``.

    ``lens_power`` < 1 shrinks what is seen through the lens (a myopic prescription), > 1
    magnifies it (a long-sighted one); 1 is plano. ``lens_alpha`` is the tint's opacity (0 clear,
    0.6 dark sunglasses that still show the eyes). ``accent_color`` is the tortoiseshell's spots
    or the two-tone's lower crystal. ``shadow_angle`` turns the shadow's offset away from
    straight down (degrees, toward image right when positive). ``streak`` is the opacity of a
    sharp specular line across the lenses (0: none). ``texture_seed`` draws the mottle.
    ``edge_glow`` is how bright the ground lens edge shines where no rim hides it (rimless,
    and below a semi-rimless rim), over a band ``edge_width`` wide; ``edge_dark`` how much the
    dark line along it darkens the face.
    """

    style: str
    material: str
    rim_color: str
    rim_width: float
    lens_width: float
    lens_height: float
    bridge_gap: float
    lens_drop: float
    lens_tint: str
    lens_alpha: float
    lens_power: float
    reflection: float
    reflection_angle: float
    shadow: float
    accent_color: str = "#dcd8d2"
    shadow_angle: float = 0.0
    shadow_offset: float = 0.035
    streak: float = 0.0
    texture_seed: int = 0
    softness: float = 0.0
    edge_glow: float = 0.0
    edge_width: float = 0.009
    edge_dark: float = 0.3


def sample_params(rng: np.random.Generator, face: Face, style: str | None = None,
                  material: str | None = None, color: str | None = None,
                  tint: str | None = None) -> GlassesParams:
    """Random plausible glasses. ``style`` pins the shape (one of :data:`STYLES`), ``material``
    the frame (:data:`MATERIALS`), ``color`` the rim (a palette name or a hex value) and
    ``tint`` the lenses ("clear" or one of :data:`TINTS`). Pinning all four gives one
    consistent look, which a model can learn from few examples.
    """
    check_pins(style, material, color, tint)
    style = style or _weighted(rng, _STYLE_ODDS)
    material = material or _weighted(rng, _MATERIAL_ODDS[style])
    rim, accent = _sample_colors(rng, material)
    if color:
        rim = _named_color(color)
    exponent, aspect = _SHAPES[style]
    lens_width = float(rng.uniform(*_HALF_WIDTHS[style]))
    tint_color, alpha = _sample_tint(rng)
    if tint == "clear":
        tint_color, alpha = CLEAR_LENS, 0.03
    elif tint is not None:
        tint_color, alpha = TINTS[tint], 0.25
    return GlassesParams(
        style=style, material=material, rim_color=hex_color(rim), rim_width=_rim_width(rng, style, material),
        lens_width=lens_width, lens_height=float(lens_width * aspect * rng.uniform(0.9, 1.1)),
        bridge_gap=float(rng.uniform(0.24, 0.32) + (0.1 if style == "round" else 0.0)),
        lens_drop=float(rng.uniform(0.02, 0.08)), lens_tint=tint_color, lens_alpha=alpha,
        lens_power=_sample_power(rng),
        reflection=float(rng.uniform(0.12, 0.4)), reflection_angle=float(rng.uniform(20, 60)),
        shadow=float(rng.uniform(*SHADOW_STRENGTH)), accent_color=hex_color(accent),
        shadow_angle=float(rng.uniform(*SHADOW_ANGLE)), shadow_offset=float(rng.uniform(*SHADOW_OFFSET)),
        streak=float(0.0 if rng.random() < 0.75 else rng.uniform(0.25, 0.5)),
        texture_seed=int(rng.uniform(0, 2**31 - 1)), softness=float(rng.uniform(0.0, 0.008)),
        edge_glow=float(rng.uniform(*EDGE_GLOW)), edge_width=float(rng.uniform(*EDGE_WIDTH)),
        edge_dark=float(rng.uniform(*EDGE_DARK)),
    )


def typical_shadow() -> dict[str, float]:
    """The frame's shadow as a frame drawn without variation casts it (the middle of every
    range): ``strength`` (how much it darkens the skin), ``angle`` (degrees from straight down),
    ``offset`` and ``softness`` (face units). A model that adds one pinned frame records it, so
    that the editor can cast the same shadow from the frame the model draws."""
    middle = [sum(r) / 2 for r in (SHADOW_STRENGTH, SHADOW_ANGLE, SHADOW_OFFSET)]
    return dict(zip(("strength", "angle", "offset"), middle)) | {"softness": SHADOW_SOFTNESS}


# A rimless lens's edge, seen in portraits: the ground edge catches the light as a whitish band
# about 1-3 crop pixels wide (a lens edge is 2-4 mm thick), brightest along the bottom, often
# faint along the top, with at most a faint dark line beside it. Ranges for the band's glow,
# its width (face units) and the dark line.
EDGE_GLOW = (0.1, 0.45)
EDGE_WIDTH = (0.012, 0.035)
EDGE_DARK = (0.08, 0.3)


def _named_color(color: str) -> tuple[int, int, int]:
    """A palette name or a hex value as (r, g, b)."""
    return parse_color({**METAL_COLORS, **PLASTIC_COLORS, **TORTOISE_GROUNDS}.get(color, color))


def frame_color(color: str | None, material: str | None = None) -> str | None:
    """``#rrggbb`` of every frame drawn with a pinned ``color`` (a palette name or hex), or None
    when frames have no one colour: not pinned, or a tortoiseshell or two-tone material."""
    if not color or material in ("tortoiseshell", "two-tone"):
        return None
    return hex_color(_named_color(color))


def check_pins(style: str | None = None, material: str | None = None, color: str | None = None,
               tint: str | None = None) -> None:
    """Raise ValueError naming the choices for a pin that is not one."""
    if style is not None and style not in STYLES:
        raise ValueError(f"unknown glasses style {style!r}; choose one of {', '.join(STYLES)}")
    if material is not None and material not in MATERIALS:
        raise ValueError(f"unknown frame material {material!r}; choose one of {', '.join(MATERIALS)}")
    if tint is not None and tint != "clear" and tint not in TINTS:
        raise ValueError(f"unknown lens tint {tint!r}; choose clear or one of {', '.join(TINTS)}")
    names = {*METAL_COLORS, *PLASTIC_COLORS, *TORTOISE_GROUNDS}
    if color is not None and color not in names:
        try:
            parse_color(color)
        except ValueError:
            raise ValueError(f"unknown frame colour {color!r}; use a hex value or one of "
                             f"{', '.join(sorted(names))}") from None


def _weighted(rng: np.random.Generator, odds: tuple[tuple[str, float], ...]) -> str:
    """One name from (name, probability) pairs; the first one when draws are typical."""
    roll, total = rng.random(), 0.0
    for name, p in odds:
        total += p
        if roll < total:
            return name
    return odds[-1][0]


def _sample_colors(rng: np.random.Generator, material: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(frame colour, accent colour) for ``material``."""
    if material == "tortoiseshell":
        ground = parse_color(TORTOISE_GROUNDS[str(rng.choice(list(TORTOISE_GROUNDS)))])
        spots = parse_color(TORTOISE_SPOTS[str(rng.choice(list(TORTOISE_SPOTS)))])
        return jitter_color(rng, ground, 8), jitter_color(rng, spots, 14)
    palette = METAL_COLORS if material == "metal" else PLASTIC_COLORS
    rim = jitter_color(rng, parse_color(palette[str(rng.choice(list(palette)))]), 12)
    crystal = parse_color(CRYSTALS[str(rng.choice(list(CRYSTALS)))])
    return rim, jitter_color(rng, crystal, 10)


def _rim_width(rng: np.random.Generator, style: str, material: str) -> float:
    if style == "rimless":  # the bridge and the arms' thickness
        return float(rng.uniform(0.012, 0.016))
    if material == "metal":
        return float(rng.uniform(0.011, 0.018))
    if style == "semi-rimless":
        return float(rng.uniform(0.026, 0.04))
    return float(rng.uniform(0.03, 0.05))  # acetate is a thick band


def _sample_power(rng: np.random.Generator) -> float:
    roll = rng.random()
    if roll < 0.45:
        return 1.0
    if roll < 0.85:  # short-sighted: the commonest prescription, shrinks the eyes
        return float(rng.uniform(0.86, 0.97))
    return float(rng.uniform(1.04, 1.12))


def _sample_tint(rng: np.random.Generator) -> tuple[str, float]:
    roll = rng.random()
    if roll < 0.68:  # clear lenses still dull the eye a little (anti-reflective coating, dust)
        return CLEAR_LENS, float(rng.uniform(0.0, 0.06))
    tint = TINTS[str(rng.choice(list(TINTS)))]
    return tint, float(rng.uniform(0.12, 0.3) if roll < 0.9 else rng.uniform(0.4, 0.6))


def _kind(style: str) -> str:
    """How the lens is held: ``full``, ``browline``, ``semi`` (top rim only) or ``rimless``."""
    return {"browline": "browline", "semi-rimless": "semi", "rimless": "rimless"}.get(style, "full")


def _has_pads(params: GlassesParams) -> bool:
    """Metal fronts rest on pads held by thin pad arms; acetate fronts have moulded pads."""
    return params.material == "metal" or _kind(params.style) in ("browline", "rimless")


# --- geometry (face units) ----------------------------------------------------------------------


def lens_outline(params: GlassesParams) -> np.ndarray:
    """(N, 2) closed outline of one lens around (0, 0): x outward (toward the temple), y down."""
    exponent, _ = _SHAPES[params.style]
    t = np.linspace(0, 2 * np.pi, _CONTOUR_POINTS, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = np.sign(c) * np.abs(c) ** (2 / exponent)
    y = np.sign(s) * np.abs(s) ** (2 / exponent)
    x, y = _deform(params.style, x, y)
    return np.column_stack([x * params.lens_width, y * params.lens_height])


def _deform(style: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shape-specific bends of the unit superellipse (x in [-1, 1] from nose to temple)."""
    outer = (x + 1) / 2  # 0 at the nose side, 1 at the temple side
    if style == "aviator":  # flat top, a deep tear-drop bottom that sags toward the temple
        y = np.where(y > 0, y * (0.7 + 0.55 * outer**1.2), y * 0.85)
    elif style == "cat-eye":  # the lens tilts up toward the temple; the upper outer corner flares
        out = np.clip(x, 0, 1)
        top = y < 0
        x = x + 0.1 * out**2 * top
        y = y - 0.12 * x - 0.3 * out**3 * top
    elif style in ("rimless", "semi-rimless"):  # a slightly narrower bottom, as most modern lenses
        x = x * np.where(y > 0, 1 - 0.08 * y, 1.0)
    return x, y


@dataclass(frozen=True)
class _Frame:
    """A frame laid out in image pixels for one face."""

    lenses: list[np.ndarray]  # two (N, 2) closed outlines, image left first
    centers: np.ndarray  # (2, 2) lens centres
    bridge: np.ndarray  # (M, 2) polyline over the nose
    top_bar: np.ndarray | None  # (M, 2) aviator double bridge
    arms: list[np.ndarray]  # tapered arm polygons (hinge to ear), one per visible arm
    arm_lines: list[np.ndarray]  # their centre lines
    pads: np.ndarray  # (2, 2) nose-pad centres
    pad_arms: list[np.ndarray]  # (2, 2) wires from each pad up to its rim
    mounts: np.ndarray  # (K, 2) rimless drill mounts (empty for other frames)
    unit: float  # pixels per face unit
    up: np.ndarray  # (2,) image vector of one pixel toward the top of the head
    m: np.ndarray  # (2, 3) face units -> image pixels


def layout(face: Face, params: GlassesParams) -> _Frame:
    """Place the frame on ``face``: every part in image pixels."""
    m = image_from_face(face)
    widths = np.linalg.norm(face.eye_corners[[0, 3]] - face.eye_corners[[1, 2]], axis=1)
    scale_x = np.clip(widths / widths.mean(), 0.8, 1.2)  # a turned head narrows the far eye
    offset = params.lens_width + params.bridge_gap / 2  # lens centre from the midpoint
    outline = lens_outline(params)
    lenses, centers = [], []
    for side, sx in zip((-1.0, 1.0), scale_x):
        center = np.array([side * offset, params.lens_drop])
        local = outline * np.array([side * sx, 1.0])
        lenses.append(to_image(m, center + local))
        centers.append(center)
    centers = np.asarray(centers)
    bridge, top_bar = _bridge(face, params, lenses, m)
    arms, arm_lines = _arms(face, params, lenses, m)
    nose = to_face(face, face.points[[NOSE_BRIDGE[1]]])[0]
    pads_face = nose + np.array([[-0.1, 0.0], [0.1, 0.0]])
    pad_arms = [to_image(m, np.stack([pad, _inner_point(face, lens, pad[1] - 0.08, side)]))
                for pad, lens, side in zip(pads_face, lenses, (1, -1))]
    mounts = _mounts(face, params, lenses, m) if _kind(params.style) == "rimless" else np.zeros((0, 2))
    up = -m[:, 1] / np.linalg.norm(m[:, 1])
    return _Frame(lenses, to_image(m, centers), bridge, top_bar, arms, arm_lines, to_image(m, pads_face),
                  pad_arms, mounts, face.eye_distance, up, m)


def _inner_point(face: Face, lens: np.ndarray, level: float, nose_side: int) -> np.ndarray:
    """Face-unit outline point nearest the nose (``nose_side`` = +1 or -1 in x) at height ``level``."""
    pts = to_face(face, lens)
    near = pts[np.abs(pts[:, 1] - level) < 0.05]
    near = near if len(near) else pts
    return near[np.argmax(near[:, 0] * nose_side)]


def _bridge(face: Face, params: GlassesParams, lenses: list[np.ndarray],
            m: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Bridge polyline through landmark 168 (arched a little above it), plus an aviator top bar."""
    top = params.lens_drop - 0.45 * params.lens_height
    if _kind(params.style) == "rimless":  # a short bar between the drill mounts, lower on the lens
        top = params.lens_drop - 0.25 * params.lens_height
    a, b = _inner_point(face, lenses[0], top, +1), _inner_point(face, lenses[1], top, -1)
    nose = to_face(face, face.points[[NOSE_BRIDGE[0]]])[0]
    apex = np.array([nose[0], min(nose[1], top) - 0.04])
    bridge = to_image(m, _quadratic(a, apex, b))
    top_bar = None
    if params.style == "aviator":
        level = params.lens_drop - 0.85 * params.lens_height
        a, b = _inner_point(face, lenses[0], level, +1), _inner_point(face, lenses[1], level, -1)
        top_bar = to_image(m, _quadratic(a, (a + b) / 2 - [0, 0.02], b))
    return bridge, top_bar


def _quadratic(p0: np.ndarray, control: np.ndarray, p1: np.ndarray, n: int = 24) -> np.ndarray:
    """(n, 2) points of the quadratic Bezier curve p0 -> p1 pulled toward ``control``."""
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * np.asarray(control) + t**2 * p1


def _hinge_edge(face: Face, params: GlassesParams, lens: np.ndarray, side: int) -> np.ndarray:
    """Face-unit point of the lens outline where the arm is fixed: its outer, upper side."""
    pts = to_face(face, lens)
    upper = pts[pts[:, 1] < params.lens_drop - 0.2 * params.lens_height]
    return upper[np.argmax(upper[:, 0] * side)]


def _arms(face: Face, params: GlassesParams, lenses: list[np.ndarray],
          m: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Tapered arm polygons from the hinges to just past the face outline beside each ear.

    Landmarks 127 / 356 sit on the face outline just below the top of the ear, where an arm rests.
    On the far side of a turned head the arm runs behind the head: only its start shows.
    """
    far_side = 1 if face.yaw > 0 else -1  # the nose points toward the far side
    hidden = float(np.clip((abs(face.yaw) - 6) / 14, 0, 1))
    width = params.rim_width * (0.8 if params.material != "metal" else 1.2) * face.eye_distance
    polygons, lines = [], []
    for lens, temple_idx, side in zip(lenses, TEMPLES, (-1, 1)):
        edge = _hinge_edge(face, params, lens, side)
        turned_away = hidden if side == far_side else 0.0
        hinge = edge + np.array([side * 0.045 * (1 - 0.8 * turned_away), 0.01])  # the end piece recedes too
        ear = to_face(face, face.points[[temple_idx]])[0] + np.array([side * 0.1, 0.0])
        reach = ear - hinge
        # The arm runs nearly level to the top of the ear, which sits above landmark 127 / 356:
        # seen from the front it drops only a little (more when the head tilts forward).
        reach[1] = 0.35 * reach[1]
        reach[0] = side * max(side * reach[0], 0.03)  # always outward, however the head turns
        reach *= 1 - turned_away
        end = hinge + reach
        if abs(end[0]) > ARM_REACH:  # stay inside the `glasses` crop
            end = hinge + reach * max(ARM_REACH - abs(hinge[0]), 0.0) / max(abs(reach[0]), 1e-6)
        t = np.linspace(0, 1, 10)[:, None]
        line = np.vstack([edge - np.array([side * 0.02, 0.0]), hinge + t * (end - hinge)])
        taper = np.concatenate([[1.0], 1.0 - 0.45 * t[:, 0]])  # farther from the camera: thinner
        pixels = to_image(m, line)
        polygons.append(_ribbon(pixels, width * taper))
        lines.append(pixels)
    return polygons, lines


def _ribbon(line: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Closed polygon around an (N, 2) polyline with per-point widths (pixels)."""
    d = np.gradient(line, axis=0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    normal = np.column_stack([-d[:, 1], d[:, 0]]) * (widths[:, None] / 2)
    return np.vstack([line + normal, (line - normal)[::-1]])


def _mounts(face: Face, params: GlassesParams, lenses: list[np.ndarray], m: np.ndarray) -> np.ndarray:
    """Rimless drill mounts: two per lens, at the bridge end and the hinge end, just inside the edge."""
    level = params.lens_drop - 0.25 * params.lens_height
    points = []
    for lens, side in zip(lenses, (-1, 1)):
        inner = _inner_point(face, lens, level, -side)
        outer = _hinge_edge(face, params, lens, side)
        points += [inner + np.array([side * 0.025, 0.0]), outer - np.array([side * 0.025, -0.01])]
    return to_image(m, np.array(points))


# --- rendering ----------------------------------------------------------------------------------


def render(image: np.ndarray, face: Face, params: GlassesParams) -> Rendered:
    """Draw ``params`` glasses on ``face`` in an (H, W, 3) uint8 RGB image.

    Returns the edited copy, the (H, W) bool mask of pixels the glasses touched (every other
    pixel is bit-identical to ``image``) and the (H, W) coverage of the glasses in [0, 1].
    """
    frame = layout(face, params)
    box = _box(frame, image.shape)
    if box[2] <= box[0] or box[3] <= box[1]:
        return Rendered(image.copy(), np.zeros(image.shape[:2], bool), np.zeros(image.shape[:2], np.float32))
    x0, y0, x1, y1 = box
    patch = image[y0:y1, x0:x1].astype(np.float32)
    layers = _masks(frame, params, box)
    color = _frame_color(params, frame, layers["_v"])
    patch = patch * (1 - params.shadow * layers["shadow"][..., None])
    patch = _draw_arms(patch, layers, params, frame, box, color)
    patch = _draw_lenses(patch, image, frame, params, box, layers)
    patch = _draw_rims(patch, layers, params, frame, color)
    patch = _grain(patch, image[y0:y1, x0:x1], layers, params)
    touched = np.maximum.reduce([layers[k] for k in _TOUCHING]) > 1e-3
    return paste_patch(image, box, patch, touched, _coverage(layers, params))


_TOUCHING = ("shadow", "arms", "lens", "rim", "pads", "pad_arms", "mounts")


def frame_layers(shape: tuple[int, ...], face: Face, params: GlassesParams) -> dict[str, np.ndarray]:
    """The anti-aliased (H, W) float32 layers of a render at full image size: ``lens`` (the lens
    area), ``rim`` (rims, bridge and browline bar), ``arms``, ``shadow`` and the others."""
    frame = layout(face, params)
    box = _box(frame, shape)
    out = {}
    for name, layer in _masks(frame, params, box).items():
        if name.startswith("_"):
            continue
        full = np.zeros(shape[:2], np.float32)
        full[box[1]:box[3], box[0]:box[2]] = layer
        out[name] = full
    return out


def _box(frame: _Frame, shape: tuple[int, ...]) -> Box:
    parts = np.concatenate(frame.lenses + frame.arms + [frame.bridge])
    return box_around(parts, margin=0.14 * frame.unit + 4, shape=shape)


def _coverage(layers: dict[str, np.ndarray], params: GlassesParams) -> np.ndarray:
    """How much the glasses cover each box pixel: the frame at its opacity, the lens edge where
    no rim hides it at how much it shows, the lens at its visual weight (more when tinted), the
    shadow at its strength."""
    lens_weight = min(0.5, 0.2 + 0.5 * params.lens_alpha)
    # Without a rim, the lens edge is the line a person sees as the glasses, so it counts as
    # frame (a removal model learns to find and erase it); beside a rim it is a faint trace.
    seen_edge = np.clip(layers["seen_edge"] / EDGE_SOLID, 0, 1)
    solid = np.maximum.reduce([layers["rim_alpha"], layers["arms"], layers["pad_arms"], layers["mounts"],
                               0.6 * layers["pads"], seen_edge])
    return np.maximum.reduce([solid, lens_weight * layers["lens"], params.shadow * layers["shadow"]])


def _masks(frame: _Frame, params: GlassesParams, box: Box) -> dict[str, np.ndarray]:
    """Anti-aliased (h, w) float32 masks: lens, its edge line, rim (with bridge and browline bar),
    the bar alone, arms, glint (a thin line along the top of the rims), pads, mounts, shadow."""
    unit, kind = frame.unit, _kind(params.style)
    rim_px = params.rim_width * unit
    wire_px = rim_px * 0.35 if kind == "browline" else rim_px  # a browline's lower rim is thin metal
    c = {name: Canvas(box) for name in ("lens", "edge", "band", "rim", "bar", "glint", "arms", "pads",
                                        "pad_arms", "mounts")}
    up = frame.up * wire_px * 0.15  # the glint sits on the upper side of the wire or the band
    bridge_px = rim_px * (1.1 if params.material != "metal" else 0.9)
    for outline in frame.lenses:
        c["lens"].fill(outline)
        c["edge"].stroke(outline, max(0.8, 0.009 * unit), closed=True)
        c["band"].stroke(outline, max(0.8, params.edge_width * unit), closed=True)
        if kind in ("full", "browline"):
            c["rim"].stroke(outline, wire_px, closed=True)
            c["glint"].stroke(outline + up, wire_px * 0.3, closed=True)
        elif kind == "semi":
            top = _upper_part(outline, 0.25)
            c["rim"].stroke(top, rim_px, closed=False)
            c["glint"].stroke(top + up, rim_px * 0.3, closed=False)
    if kind == "rimless":
        bridge_px = rim_px
    for curve in [frame.bridge] + ([frame.top_bar] if frame.top_bar is not None else []):
        c["rim"].stroke(curve, bridge_px, closed=False)
        c["glint"].stroke(curve + up, bridge_px * 0.3, closed=False)
    if kind == "browline":
        for outline in frame.lenses:
            c["bar"].stroke(_upper_part(outline, 0.15) + frame.up * rim_px * 0.4, rim_px * 1.8, closed=False)
        c["bar"].stroke(frame.bridge, bridge_px * 1.3, closed=False)
    if _has_pads(params):  # clear pads beside the nose on thin wire arms
        for center, wire in zip(frame.pads, frame.pad_arms):
            c["pads"].fill(_oval(center, frame, 0.018, 0.032))
            c["pad_arms"].stroke(wire, max(0.6, 0.007 * unit), closed=False)
    for point in frame.mounts:
        c["mounts"].disc(point, 0.016 * unit)
    for arm in frame.arms:
        c["arms"].fill(arm)
    # A photo never shows a perfectly sharp edge (focus, lens, demosaicing): soften the frame parts.
    soft = params.softness * unit
    masks = {name: canvas.result() if name == "lens" else blur(canvas.result(), soft) for name, canvas in c.items()}
    masks["rim"] = np.maximum(masks["rim"], masks["bar"])
    masks["_v"] = _face_v(frame, box) - params.lens_drop  # face-unit height below the lens centres
    masks["rim_alpha"] = masks["rim"] * _frame_opacity(params, masks["_v"])
    masks["glow"] = _edge_glow(masks, params, unit)
    masks["seen_edge"] = _seen_edge(masks, params)
    masks["shadow"] = _shadow(np.maximum.reduce([masks["rim_alpha"], masks["arms"], masks["mounts"],
                                                 0.5 * masks["edge"]]), frame, params) * (1 - masks["lens"])
    return masks


def _oval(center: np.ndarray, frame: _Frame, half_width: float, half_height: float) -> np.ndarray:
    """(16, 2) image-pixel outline of an upright oval (half sizes in face units) around ``center``."""
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    local = np.column_stack([half_width * np.cos(t), half_height * np.sin(t)])
    return center + local @ frame.m[:, :2].T


def _upper_part(outline: np.ndarray, level: float) -> np.ndarray:
    """The part of a lens outline above ``level`` (a share of its half-height below its centre),
    as one polyline in outline order."""
    rel = outline - outline.mean(0)
    upper = rel[:, 1] < level * np.abs(rel[:, 1]).max()
    # Roll the closed outline so that the selected run does not wrap around the array's end.
    start = int(np.argmin(upper)) if not upper.all() else 0
    rolled, keep = np.roll(outline, -start, axis=0), np.roll(upper, -start)
    return rolled[keep]


def _shadow(frame_mask: np.ndarray, frame: _Frame, params: GlassesParams) -> np.ndarray:
    """The frame's soft shadow: its mask moved away from the light and blurred."""
    return cast_shadow(frame_mask, frame.m[:, :2], params.shadow_angle, params.shadow_offset, SHADOW_SOFTNESS)


def _frame_opacity(params: GlassesParams, v: np.ndarray) -> np.ndarray | float:
    """Per-pixel opacity of the rims: 1, except the translucent lower half of a two-tone frame."""
    if params.material != "two-tone":
        return 1.0
    return 1 - 0.45 * _lower_half(v)


def _lower_half(v: np.ndarray) -> np.ndarray:
    """(h, w) 0 above the lens centres (``v`` < 0), 1 below, with a short soft transition."""
    return np.clip((v + 0.03) / 0.08, 0, 1)


def _draw_arms(patch: np.ndarray, layers: dict[str, np.ndarray], params: GlassesParams, frame: _Frame,
               box: Box, color: np.ndarray) -> np.ndarray:
    patch = over(patch, color * 0.85, layers["arms"])  # turned away from the light
    if params.material == "metal":  # a thin glint along the wire
        glint = Canvas(box)
        for line in frame.arm_lines:
            glint.stroke(line + frame.up * params.rim_width * frame.unit * 0.2,
                         params.rim_width * frame.unit * 0.35, closed=False)
        patch = _screen(patch, 0.3 * glint.result() * layers["arms"])
    return patch


def _draw_lenses(patch: np.ndarray, image: np.ndarray, frame: _Frame, params: GlassesParams,
                 box: Box, layers: dict[str, np.ndarray]) -> np.ndarray:
    lens = layers["lens"]
    if params.lens_power != 1:
        patch = over(patch, _refracted(image, frame, params.lens_power, box), lens)
    tint = np.asarray(parse_color(params.lens_tint), np.float32)
    patch = over(patch, tint, params.lens_alpha * lens)
    # The lens edge: ground glass seen edge-on, a faint dark line (stronger where no rim hides it).
    # Without a rim the edge is what shows the lens (a dark line with a bright one inside it, as
    # the ground edge reflects); under a rim it is mostly hidden.
    dark, bright = _edge_shading(params)
    edge = layers["edge"] * (1 - layers["rim"])
    patch = patch * (1 - dark * edge[..., None])
    inner = blur(layers["edge"], 0.006 * frame.unit) * lens * (1 - layers["edge"])
    glare = np.clip(_reflections(frame, params, box) + bright * inner, 0, 1) * lens
    return _screen(patch, np.maximum(glare, layers["glow"]))


# How much the lens edge darkens the face behind it, and brightens the lens just inside it,
# where no rim hides it (rimless, and below a semi-rimless rim) and where a rim does.
RIMLESS_EDGE_DARK, RIMLESS_EDGE_BRIGHT = 0.3, 0.4
RIMMED_EDGE_DARK, RIMMED_EDGE_BRIGHT = 0.1, 0.15


def _edge_shading(params: GlassesParams) -> tuple[float, float]:
    """(dark, bright) of the lens edge line and the bright line inside it."""
    if _kind(params.style) in ("rimless", "semi"):
        return params.edge_dark, RIMLESS_EDGE_BRIGHT
    return RIMMED_EDGE_DARK, RIMMED_EDGE_BRIGHT


def _edge_glow(masks: dict[str, np.ndarray], params: GlassesParams, unit: float) -> np.ndarray:
    """(h, w) how much the ground lens edge shines where no rim hides it (zero under full rims):
    ``edge_glow`` along the lower part of the lens, a fifth of it along the top (in portraits
    lit from above, the lower edge faces the light), uneven along its length (a smooth random
    field drawn from ``texture_seed``: real edges shine in stretches)."""
    if _kind(params.style) not in ("rimless", "semi"):
        return np.zeros_like(masks["band"])
    field = np.random.default_rng(params.texture_seed + 1).standard_normal(masks["band"].shape).astype(np.float32)
    field = blur(field, EDGE_STRETCH * unit)
    stretches = np.clip(0.75 + 0.25 * field / max(float(field.std()), 1e-6), 0.4, 1.0)
    light = np.clip(0.6 + 4.0 * masks["_v"], 0.2, 1.0) * stretches
    return params.edge_glow * masks["band"] * light * (1 - masks["rim"])


# The length (face units) over which a lens edge's shine varies.
EDGE_STRETCH = 0.08


# How strongly a lens edge must show (darkening or glow) to count fully as frame to remove.
EDGE_SOLID = 0.2


def _seen_edge(masks: dict[str, np.ndarray], params: GlassesParams) -> np.ndarray:
    """(h, w) how strongly the lens edge shows where no rim hides it: the dark line's darkening
    or the band's glow, whichever is more. A removal model learns to erase it as frame."""
    if _kind(params.style) not in ("rimless", "semi"):
        # a trace beside the rim (a third of solid, as the dark line alone always counted)
        return masks["edge"] * (1 - masks["rim"]) * EDGE_SOLID * RIMMED_EDGE_DARK / RIMLESS_EDGE_DARK
    return np.maximum(masks["edge"] * (1 - masks["rim"]) * params.edge_dark, masks["glow"])


def _refracted(image: np.ndarray, frame: _Frame, power: float, box: Box) -> np.ndarray:
    """The box as seen through two lenses that scale the view by ``power`` about their centres."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    # Each pixel looks through the nearer lens: the point it shows lies 1 / power as far from
    # that lens centre (farther when the lens minifies, nearer when it magnifies).
    d = [(xs - c[0]) ** 2 + (ys - c[1]) ** 2 for c in frame.centers]
    cx = np.where(d[0] < d[1], frame.centers[0][0], frame.centers[1][0]).astype(np.float32)
    cy = np.where(d[0] < d[1], frame.centers[0][1], frame.centers[1][1]).astype(np.float32)
    map_x = cx + (xs - cx) / power
    map_y = cy + (ys - cy) / power
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)


def _reflections(frame: _Frame, params: GlassesParams, box: Box) -> np.ndarray:
    """(h, w) glare: a soft window (two panes) in the upper part of each lens, at the same place on
    both since the window is far away, an optional sharp streak, and a faint overall sheen."""
    unit = frame.unit
    window, streak = Canvas(box), Canvas(box)
    along = (params.reflection_angle - 40) / 20  # -1 .. 1: where the window sits across the lens
    slant = 0.05 * along
    for center in to_face_units(frame, frame.centers):
        mid = center + np.array([0.14 * along, -0.12 * params.lens_height / 0.3])
        for pane in (-1, 1):
            cx = mid[0] + pane * 0.055
            quad = np.array([[cx - 0.045 + slant, mid[1] - 0.07], [cx + 0.045 + slant, mid[1] - 0.07],
                             [cx + 0.045 - slant, mid[1] + 0.07], [cx - 0.045 - slant, mid[1] + 0.07]])
            window.fill(to_image(frame.m, quad))
        if params.streak > 0:  # a short straight band of light across the lower outer part
            tilt = np.radians(params.reflection_angle)
            d = np.array([np.cos(tilt), -np.sin(tilt)]) * 0.35 * params.lens_width
            start = center + np.array([0.35 * params.lens_width * (1 if center[0] > 0 else -1),
                                       0.3 * params.lens_height])
            streak.stroke(to_image(frame.m, np.stack([start - d, start + d])), 0.03 * unit, closed=False)
    glare = blur(window.result(), 0.025 * unit) * params.reflection
    glare = glare + blur(streak.result(), 0.012 * unit) * params.streak
    return np.clip(glare + 0.035 * params.reflection, 0, 1)


def to_face_units(frame: _Frame, points: np.ndarray) -> np.ndarray:
    """Image pixels -> face units with the frame's own transform."""
    inv = cv2.invertAffineTransform(frame.m)
    return np.asarray(points, np.float64) @ inv[:, :2].T + inv[:, 2]


def _frame_color(params: GlassesParams, frame: _Frame, v: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32 colour of the frame material at each box pixel (before lighting)."""
    h, w = v.shape
    base = np.asarray(parse_color(params.rim_color), np.float32)
    accent = np.asarray(parse_color(params.accent_color), np.float32)
    if params.material == "tortoiseshell":
        t = _mottle(params.texture_seed, (h, w), frame.unit)[..., None]
        return base * (1 - t) + accent * t
    if params.material == "two-tone":
        t = _lower_half(v)[..., None]
        return base * (1 - t) + accent * t
    return base  # one colour: broadcasts


def _mottle(seed: int, shape: tuple[int, int], unit: float) -> np.ndarray:
    """(h, w) tortoiseshell pattern in [0, 1]: blotches stretched along the frame, two scales."""
    rng = np.random.default_rng(seed)
    h, w = shape
    total = np.zeros(shape, np.float32)
    for cell, weight in ((0.07, 0.7), (0.025, 0.3)):
        gy, gx = int(h / (cell * unit)) + 3, int(w / (cell * unit * 2.2)) + 3
        noise = rng.random((gy, gx)).astype(np.float32)
        total += weight * cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip((total - 0.45) / 0.3, 0, 1) ** 1.5


def _draw_rims(patch: np.ndarray, layers: dict[str, np.ndarray], params: GlassesParams, frame: _Frame,
               color: np.ndarray) -> np.ndarray:
    """Pads, mounts, rims and bridge in the material's colour, lit from above.

    Metal: a bright, sharp glint along the wire. Acetate: an opaque band with a darker inner bevel
    and a soft, broad sheen. Browline: the acetate bar on top, thin gunmetal wire below.
    """
    unit = frame.unit
    shade = np.clip(1.12 - 0.5 * layers["_v"], 0.8, 1.25)[..., None]  # lighter on top, darker below
    metal = np.asarray(parse_color(params.rim_color if params.material == "metal" else METAL_COLORS["silver"]),
                       np.float32)
    patch = over(patch, np.float32([228, 228, 224]), 0.3 * layers["pads"])
    patch = _screen(patch, 0.2 * layers["pads"] * (1 - blur(layers["pads"], 0.01 * unit)))
    patch = over(patch, np.clip(metal * 0.95, 0, 255), layers["pad_arms"])
    patch = over(patch, np.clip(metal * shade, 0, 255), layers["mounts"])
    rim, bar = layers["rim"], layers["bar"]
    glint = layers["glint"] * rim  # never outside the rim, even where the rim is thinner than it
    if params.material == "metal":
        patch = over(patch, np.clip(color * np.minimum(shade, 1.05), 0, 255), rim)
        patch = _screen(patch, 0.4 * glint)
        return _screen(patch, 0.3 * layers["mounts"] * (1 - blur(layers["mounts"], 0.006 * unit)))
    band = rim
    if params.style == "browline":
        wire = np.asarray(parse_color(METAL_COLORS["gunmetal"]), np.float32)
        patch = over(patch, np.clip(wire * shade, 0, 255), rim)
        patch = _screen(patch, 0.5 * glint * (1 - bar))
        band = bar
    # The acetate's thickness shows on the inner edge: a darker bevel where the band meets the lens.
    bevel = np.clip(layers["lens"] * 2 - 1, 0, 1) * blur(band, 0.004 * unit)
    lit = np.clip(color * shade * (1 - 0.35 * bevel[..., None]), 0, 255)
    patch = over(patch, lit, band * (layers["rim_alpha"] / np.maximum(rim, 1e-6)))
    sheen = blur(glint, 0.02 * unit) * band
    return _screen(patch, 0.22 * sheen)


def _grain(patch: np.ndarray, original: np.ndarray, layers: dict[str, np.ndarray],
           params: GlassesParams) -> np.ndarray:
    """Give the drawn frame the photo's own sensor noise: flat drawn colour beside noisy skin is a
    giveaway. The noise level is the median absolute deviation of the photo's fine detail."""
    gray = original.astype(np.float32).mean(axis=2)
    detail = gray - cv2.blur(gray, (3, 3))
    # Skin texture counts into the estimate too; 0.6 keeps the grain at or below the photo's.
    sigma = float(np.median(np.abs(detail - np.median(detail)))) * 1.4826 * 0.6
    if sigma < 0.3:
        return patch
    solid = np.maximum.reduce([layers["rim_alpha"], layers["arms"], layers["mounts"]])
    noise = np.random.default_rng(params.texture_seed + 1).normal(0, 1, patch.shape[:2]).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 0.6)  # compression softens grain into small blobs
    noise *= sigma / max(float(noise.std()), 1e-6)
    return patch + (noise * solid)[..., None]


def _screen(patch: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Screen-blend white with opacity ``light`` (h, w): brightens, never darkens."""
    if not np.any(light):
        return patch
    return 255 - (255 - patch) * (1 - light[..., None])


def _face_v(frame: _Frame, box: Box) -> np.ndarray:
    """(h, w) face-unit y coordinate of each box pixel."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1]
    m = frame.m
    normal = m[:, 1] / np.dot(m[:, 1], m[:, 1])
    return ((xs - m[0, 2]) * normal[0] + (ys - m[1, 2]) * normal[1]).astype(np.float32)
