"""Procedural eyeglasses drawn onto a face from its Face Mesh landmarks.

The frame is designed in face units (see :mod:`eyeedit.data.effects.base`), so it follows the face's
roll and scale; the lenses sit on the eye centres (each scaled by its eye's apparent width, a
cheap cue of yaw), the bridge passes over the nose at landmark 168, the nose pads rest beside
landmark 6, and the arms run from the hinges toward the temples (127, 356).

Layers, bottom to top: a soft shadow of the frame on the skin, the arms, the lens (optional
minification as a prescription lens does, tint, reflections), the rims and bridge with their
material shading (a thin highlight line on metal, a broad matte sheen on plastic).

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
    blur,
    box_around,
    hex_color,
    image_from_face,
    jitter_color,
    over,
    parse_color,
    paste_patch,
    to_face,
    to_image,
)
from eyeedit.landmarks import NOSE_BRIDGE, TEMPLES, Face

STYLES = ("round", "rectangular", "browline", "aviator", "cat-eye")
MATERIALS = ("metal", "plastic")

METAL_COLORS = {"gold": "#b89858", "silver": "#b8babe", "gunmetal": "#55585e", "black": "#26262a",
                "rose-gold": "#b47c68"}
PLASTIC_COLORS = {"black": "#141414", "tortoise": "#4a2c1a", "havana": "#6b4428", "navy": "#1c2640",
                  "burgundy": "#561c28", "grey": "#55565a", "olive": "#3d3f2a"}
CLEAR_LENS = "#c8d2dc"  # the colour a clear lens gives, at a low alpha
TINTS = {"grey": "#3c4046", "brown": "#5a3f28", "green": "#2f4a36", "blue": "#2c4a6e", "rose": "#9a5a62"}

# (superellipse exponent, height / width) per style; the exponent squares the corners off.
_SHAPES = {"round": (2.0, 0.9), "rectangular": (4.5, 0.62), "browline": (3.2, 0.7),
           "aviator": (2.6, 0.82), "cat-eye": (2.5, 0.6)}
# Lens half-widths in face units: round lenses are smaller than the others.
_HALF_WIDTHS = {"round": (0.33, 0.39), "rectangular": (0.38, 0.45), "browline": (0.38, 0.44),
                "aviator": (0.4, 0.46), "cat-eye": (0.38, 0.44)}
_CONTOUR_POINTS = 96
# How far out (face units) an arm may run; past the temple the head hides it anyway.
ARM_REACH = 1.3


@dataclass(frozen=True)
class GlassesParams:
    """One pair of glasses. Lengths are in inter-eye distances; colours are ``#rrggbb``.

    ``lens_power`` < 1 shrinks what is seen through the lens (a myopic prescription); 1 is plano.
    ``lens_alpha`` is the tint's opacity (0 clear, 0.6 dark sunglasses that still show the eyes).
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


def sample_params(rng: np.random.Generator, face: Face, style: str | None = None,
                  material: str | None = None, color: str | None = None,
                  tint: str | None = None) -> GlassesParams:
    """Random plausible glasses. ``style`` pins the shape (one of :data:`STYLES`), ``material``
    the frame (:data:`MATERIALS`), ``color`` the rim (a palette name or a hex value) and
    ``tint`` the lenses ("clear" or one of :data:`TINTS`). Pinning all four gives one
    consistent look, which a model can learn from few examples.
    """
    check_pins(style, material, color, tint)
    style = style or str(rng.choice(STYLES))
    material = material or _sample_material(rng, style)
    palette = METAL_COLORS if material == "metal" else PLASTIC_COLORS
    drawn = jitter_color(rng, parse_color(palette[str(rng.choice(list(palette)))]), 12)
    rim = parse_color({**METAL_COLORS, **PLASTIC_COLORS}.get(color, color)) if color else drawn
    exponent, aspect = _SHAPES[style]
    lens_width = float(rng.uniform(*_HALF_WIDTHS[style]))
    tint_color, alpha = _sample_tint(rng)
    if tint == "clear":
        tint_color, alpha = CLEAR_LENS, 0.03
    elif tint is not None:
        tint_color, alpha = TINTS[tint], 0.25
    return GlassesParams(
        style=style, material=material, rim_color=hex_color(rim),
        rim_width=float(rng.uniform(0.011, 0.018) if material == "metal" else rng.uniform(0.03, 0.05)),
        lens_width=lens_width, lens_height=float(lens_width * aspect * rng.uniform(0.9, 1.1)),
        bridge_gap=float(rng.uniform(0.24, 0.32) + (0.1 if style == "round" else 0.0)), lens_drop=float(rng.uniform(0.02, 0.08)),
        lens_tint=tint_color, lens_alpha=alpha,
        lens_power=float(1.0 if rng.random() < 0.5 else rng.uniform(0.92, 0.98)),
        reflection=float(rng.uniform(0.12, 0.35)), reflection_angle=float(rng.uniform(20, 60)),
        shadow=float(rng.uniform(0.12, 0.3)),
    )


def check_pins(style: str | None = None, material: str | None = None, color: str | None = None,
               tint: str | None = None) -> None:
    """Raise ValueError naming the choices for a pin that is not one."""
    if style is not None and style not in STYLES:
        raise ValueError(f"unknown glasses style {style!r}; choose one of {', '.join(STYLES)}")
    if material is not None and material not in MATERIALS:
        raise ValueError(f"unknown frame material {material!r}; choose one of {', '.join(MATERIALS)}")
    if tint is not None and tint != "clear" and tint not in TINTS:
        raise ValueError(f"unknown lens tint {tint!r}; choose clear or one of {', '.join(TINTS)}")
    if color is not None and color not in METAL_COLORS and color not in PLASTIC_COLORS:
        try:
            parse_color(color)
        except ValueError:
            names = ", ".join(sorted({*METAL_COLORS, *PLASTIC_COLORS}))
            raise ValueError(f"unknown frame colour {color!r}; use a hex value or one of {names}") from None


def _sample_material(rng: np.random.Generator, style: str) -> str:
    # Browline frames are plastic on top and metal below; their `material` names the top bar.
    metal_odds = {"round": 0.7, "rectangular": 0.5, "browline": 0.0, "aviator": 1.0, "cat-eye": 0.1}
    return "metal" if rng.random() < metal_odds[style] else "plastic"


def _sample_tint(rng: np.random.Generator) -> tuple[str, float]:
    roll = rng.random()
    if roll < 0.65:  # clear lenses still dull the eye a little (anti-reflective coating, dust)
        return CLEAR_LENS, float(rng.uniform(0.0, 0.06))
    tint = TINTS[str(rng.choice(list(TINTS)))]
    return tint, float(rng.uniform(0.12, 0.3) if roll < 0.9 else rng.uniform(0.4, 0.6))


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
    return x, y


@dataclass(frozen=True)
class _Frame:
    """A frame laid out in image pixels for one face."""

    lenses: list[np.ndarray]  # two (N, 2) closed outlines, image left first
    centers: np.ndarray  # (2, 2) lens centres
    bridge: np.ndarray  # (M, 2) polyline over the nose
    top_bar: np.ndarray | None  # (M, 2) aviator double bridge
    arms: list[np.ndarray]  # two (2, 2) hinge -> temple segments
    pads: np.ndarray  # (2, 2) nose-pad centres
    unit: float  # pixels per face unit
    up: np.ndarray  # (2,) image vector of one pixel toward the top of the head


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
    arms = _arms(face, params, lenses, m)
    nose = to_face(face, face.points[[NOSE_BRIDGE[1]]])[0]
    pads = to_image(m, nose + np.array([[-0.1, 0.0], [0.1, 0.0]]))
    up = -m[:, 1] / np.linalg.norm(m[:, 1])
    return _Frame(lenses, to_image(m, centers), bridge, top_bar, arms, pads, face.eye_distance, up)


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


def _arms(face: Face, params: GlassesParams, lenses: list[np.ndarray], m: np.ndarray) -> list[np.ndarray]:
    """Hinge -> temple segments: from the outer top of each lens, a short end piece, then the arm.

    The arm stops a little past the temple landmark: beyond it the head hides the arm.
    """
    arms = []
    for lens, temple_idx, side in zip(lenses, TEMPLES, (-1, 1)):
        pts = to_face(face, lens)
        upper = pts[pts[:, 1] < params.lens_drop - 0.2 * params.lens_height]
        hinge = upper[np.argmax(upper[:, 0] * side)] + np.array([side * 0.05, 0.0])
        temple = to_face(face, face.points[[temple_idx]])[0]
        direction = temple - hinge
        end = temple + 0.08 * direction / max(np.linalg.norm(direction), 1e-6)
        if abs(end[0]) > ARM_REACH:  # stay inside the `glasses` crop (+-1.45)
            end = hinge + direction * (ARM_REACH - abs(hinge[0])) / max(abs(direction[0]), 1e-6)
        arms.append(to_image(m, np.stack([hinge - np.array([side * 0.05, 0.0]), hinge, end])))
    return arms


# --- rendering ----------------------------------------------------------------------------------


def render(image: np.ndarray, face: Face, params: GlassesParams) -> Rendered:
    """Draw ``params`` glasses on ``face`` in an (H, W, 3) uint8 RGB image.

    Returns the edited copy and the (H, W) bool mask of pixels the glasses touched; every other
    pixel is bit-identical to ``image``.
    """
    frame = layout(face, params)
    unit = frame.unit
    parts = np.concatenate(frame.lenses + frame.arms + [frame.bridge])
    box = box_around(parts, margin=0.12 * unit + 4, shape=image.shape)
    if box[2] <= box[0] or box[3] <= box[1]:
        return Rendered(image.copy(), np.zeros(image.shape[:2], bool))
    x0, y0, x1, y1 = box
    patch = image[y0:y1, x0:x1].astype(np.float32)
    layers = _masks(frame, params, box)
    patch = patch * (1 - params.shadow * layers["shadow"][..., None])
    patch = _draw_arms(patch, layers, params)
    patch = _draw_lenses(patch, image, frame, params, box, layers)
    patch = _draw_rims(patch, layers, params, box, face)
    touched = np.maximum.reduce([layers[k] for k in ("shadow", "arms", "lens", "rim", "pads")]) > 1e-3
    return paste_patch(image, box, patch, touched)


def _masks(frame: _Frame, params: GlassesParams, box: Box) -> dict[str, np.ndarray]:
    """Anti-aliased (h, w) float32 masks: lens, rim (metal or plastic), browline bar, arms,
    glint (a thin line along the top of the rims) and the frame's shadow."""
    rim_px = params.rim_width * frame.unit
    browline = params.style == "browline"
    wire_px = rim_px * 0.35 if browline else rim_px  # a browline's lower rim is thin metal
    lens, rim, bar, glint, arms, pads = (Canvas(box) for _ in range(6))
    up = frame.up * wire_px * 0.15  # the glint sits on the upper side of the wire or the band
    bridge_px = rim_px * (1.1 if params.material == "plastic" else 0.9)
    for outline in frame.lenses:
        lens.fill(outline)
        rim.stroke(outline, wire_px, closed=True)
        glint.stroke(outline + up, wire_px * 0.3, closed=True)
    for curve in [frame.bridge] + ([frame.top_bar] if frame.top_bar is not None else []):
        rim.stroke(curve, bridge_px, closed=False)
        glint.stroke(curve + up, bridge_px * 0.3, closed=False)
    if browline:
        for outline in frame.lenses:
            bar.stroke(_upper_part(outline) + frame.up * rim_px * 0.4, rim_px * 1.8, closed=False)
        bar.stroke(frame.bridge, bridge_px * 1.3, closed=False)
    if params.material == "metal":  # nose pads: small clear ovals beside the nose
        for center in frame.pads:
            pads.disc(center, 0.025 * frame.unit)
    for arm in frame.arms:
        arms.stroke(arm, rim_px * (0.8 if params.material == "plastic" else 1.2), closed=False)
    masks = {"lens": lens.result(), "rim": rim.result(), "bar": bar.result(), "arms": arms.result(),
             "glint": glint.result(), "pads": pads.result()}
    masks["rim"] = np.maximum(masks["rim"], masks["bar"])
    masks["shadow"] = _shadow(np.maximum(masks["rim"], masks["arms"]), frame.unit)
    return masks


def _upper_part(outline: np.ndarray) -> np.ndarray:
    """The upper part of a lens outline, as one polyline in outline order (for the browline bar)."""
    rel = outline - outline.mean(0)
    upper = rel[:, 1] < 0.15 * np.abs(rel[:, 1]).max()
    # Roll the closed outline so that the selected run does not wrap around the array's end.
    start = int(np.argmin(upper)) if not upper.all() else 0
    rolled, keep = np.roll(outline, -start, axis=0), np.roll(upper, -start)
    return rolled[keep]


def _shadow(frame_mask: np.ndarray, unit: float) -> np.ndarray:
    """The frame's soft shadow: its mask moved down (light from above) and blurred."""
    dy = max(1, round(0.035 * unit))
    shifted = np.zeros_like(frame_mask)
    shifted[dy:] = frame_mask[:-dy]
    return np.clip(blur(shifted, 0.025 * unit) * 1.6, 0, 1)


def _draw_arms(patch: np.ndarray, layers: dict[str, np.ndarray], params: GlassesParams) -> np.ndarray:
    color = np.asarray(parse_color(params.rim_color), np.float32) * 0.85  # turned away from the light
    return over(patch, color, layers["arms"])


def _draw_lenses(patch: np.ndarray, image: np.ndarray, frame: _Frame, params: GlassesParams,
                 box: Box, layers: dict[str, np.ndarray]) -> np.ndarray:
    lens = layers["lens"]
    if params.lens_power < 1:
        seen = _minified(image, frame, params.lens_power, box)
        seen = seen * (1 - params.shadow * layers["shadow"][..., None])
        patch = over(patch, seen, lens)
    tint = np.asarray(parse_color(params.lens_tint), np.float32)
    patch = over(patch, tint, params.lens_alpha * lens)
    glare = _reflections(frame, params, box) * lens
    return _screen(patch, glare)


def _minified(image: np.ndarray, frame: _Frame, power: float, box: Box) -> np.ndarray:
    """The box as seen through two lenses that shrink the view by ``power`` about their centres."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    # Each pixel looks through the nearer lens: its source lies farther from that lens centre.
    d = [(xs - c[0]) ** 2 + (ys - c[1]) ** 2 for c in frame.centers]
    cx = np.where(d[0] < d[1], frame.centers[0][0], frame.centers[1][0]).astype(np.float32)
    cy = np.where(d[0] < d[1], frame.centers[0][1], frame.centers[1][1]).astype(np.float32)
    map_x = cx + (xs - cx) / power
    map_y = cy + (ys - cy) / power
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)


def _reflections(frame: _Frame, params: GlassesParams, box: Box) -> np.ndarray:
    """(h, w) glare: a soft diagonal streak in the upper outer part of each lens plus a faint sheen."""
    unit = frame.unit
    streak = Canvas(box)
    angle = np.radians(params.reflection_angle)
    direction = np.array([np.cos(angle), -np.sin(angle)])
    for i, center in enumerate(frame.centers):
        side = -1 if i == 0 else 1
        offset = np.array([side * 0.12, -0.1]) * unit
        d = direction * np.array([side, 1.0]) * 0.16 * unit
        streak.stroke(np.stack([center + offset - d, center + offset + d]), 0.06 * unit, closed=False)
        small = center + offset + np.array([side * 0.12, 0.1]) * unit
        streak.stroke(np.stack([small - d * 0.4, small + d * 0.4]), 0.025 * unit, closed=False)
    glare = blur(streak.result(), 0.03 * unit) * params.reflection
    return np.clip(glare + 0.04 * params.reflection, 0, 1)


def _draw_rims(patch: np.ndarray, layers: dict[str, np.ndarray], params: GlassesParams, box: Box,
               face: Face) -> np.ndarray:
    """Rims and bridge in the material's colour, lit from above.

    Metal: a bright, sharp glint along the wire. Plastic: an opaque band with a soft, faint sheen.
    Browline: a plastic bar on top, thin silver-grey metal below.
    """
    base = np.asarray(parse_color(params.rim_color), np.float32)
    v = _face_v(face, box) - params.lens_drop  # lighter on top, darker below
    shade = np.clip(1.12 - 0.5 * v, 0.8, 1.25)[..., None]
    rim, bar = layers["rim"], layers["bar"]
    glint = layers["glint"] * rim  # never outside the rim, even where the rim is thinner than it
    if params.material == "metal":
        patch = over(patch, np.float32([225, 225, 220]), 0.12 * layers["pads"])
        patch = over(patch, np.clip(base * np.minimum(shade, 1.05), 0, 255), rim)
        return _screen(patch, 0.4 * glint)
    if params.style == "browline":
        wire = np.asarray(parse_color(METAL_COLORS["gunmetal"]), np.float32)
        patch = over(patch, np.clip(wire * shade, 0, 255), rim)
        patch = _screen(patch, 0.5 * glint * (1 - bar))
    patch = over(patch, np.clip(base * shade, 0, 255), bar if params.style == "browline" else rim)
    sheen = blur(glint, 0.02 * face.eye_distance) * (bar if params.style == "browline" else rim)
    return _screen(patch, 0.22 * sheen)


def _screen(patch: np.ndarray, light: np.ndarray) -> np.ndarray:
    """Screen-blend white with opacity ``light`` (h, w): brightens, never darkens."""
    return 255 - (255 - patch) * (1 - light[..., None])


def _face_v(face: Face, box: Box) -> np.ndarray:
    """(h, w) face-unit y coordinate of each box pixel."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1]
    m = image_from_face(face)
    normal = m[:, 1] / np.dot(m[:, 1], m[:, 1])
    return ((xs - m[0, 2]) * normal[0] + (ys - m[1, 2]) * normal[1]).astype(np.float32)
