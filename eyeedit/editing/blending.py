"""Blending a translated crop back into the photo: masks, colour matching, composition.

Masks are built in crop space, where one inter-eye distance is always ``spec.width / spec.span``
pixels, so feathering "in proportion to the face size" is a fixed number of crop pixels per
region. Composition happens in the image frame, inside the crop's bounding box only.

Every blend mode guarantees that pixels where the (un-warped) mask is zero are returned
bit-identical to the input.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from eyeedit.geometry import cast_shadow, face_axes, polygon_mask
from eyeedit.imageio import parse_color
from eyeedit.landmarks import LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE
from eyeedit.regions import RegionSpec

BLEND_MODES = ("feather", "laplacian", "poisson")
MASK_KINDS = ("eyes", "eyes-brows", "crop")
# Which part of the crop an effect edits, by region, when the model does not say.
DEFAULT_MASK = {"eyes": "eyes-brows", "glasses": "crop", "left-eye": "eyes", "right-eye": "eyes"}


def eye_mask(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 {0, 1} mask of both eye openings, from (478, 2) landmarks in crop pixels."""
    pts = np.asarray(points, np.float32)
    return polygon_mask([pts[list(RIGHT_EYE)], pts[list(LEFT_EYE)]], size)


def brow_mask(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 {0, 1} mask of both eyebrows, from (478, 2) landmarks in crop pixels."""
    pts = np.asarray(points, np.float32)
    return polygon_mask([pts[list(RIGHT_BROW)], pts[list(LEFT_BROW)]], size)


def grow_mask(mask: np.ndarray, radius: float) -> np.ndarray:
    """Dilate a {0, 1} float mask by a disk of ``radius`` pixels."""
    outside = (mask < 0.5).astype(np.uint8)
    if not outside.all():
        dist = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_5)  # to the nearest 1
        return (dist <= radius).astype(np.float32)
    return np.zeros_like(mask, np.float32)


@functools.lru_cache(maxsize=16)
def border_fade(size: tuple[int, int], width: float) -> np.ndarray:
    """(H, W) float32 ramp: 0 on the crop border, rising linearly to 1 at ``width`` pixels in.
    Made once per size and width (every face's blend uses it): read-only."""
    w, h = size
    x = np.minimum(np.arange(w), np.arange(w)[::-1]).astype(np.float32)
    y = np.minimum(np.arange(h), np.arange(h)[::-1]).astype(np.float32)
    d = np.minimum(y[:, None], x[None, :])
    fade = np.clip(d / max(width, 1e-6), 0, 1)
    fade.flags.writeable = False
    return fade


def _smoothstep(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 up to ``low``, 1 from ``high``, a smooth cubic between (float32, in place on a copy)."""
    t = (x - np.float32(low)) * np.float32(1 / (high - low))
    np.clip(t, 0, 1, out=t)
    return t * t * (3 - 2 * t)


def _channel_max(image: np.ndarray) -> np.ndarray:
    """(H, W) largest of an (H, W, 3) image's channels (OpenCV: ~10x numpy's max over axis 2)."""
    return cv2.max(cv2.max(image[..., 0], image[..., 1]), image[..., 2])


def crop_mask(points: np.ndarray | None, spec: RegionSpec, kind: str) -> np.ndarray:
    """(H, W) float32 blend mask in [0, 1] for one face, in crop space.

    ``points`` are the face's (478, 2) landmarks in crop pixels (unused for ``crop``). Eyes and
    brows are joined, dilated to take in lids and the skin an effect tints, then eroded back a
    little and feathered, so the mask's edge runs through skin rather than along a feature.
    The mask always fades to zero at the crop border: nothing outside the crop can change.
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {', '.join(MASK_KINDS)}")
    eye_px = spec.width / spec.span  # one inter-eye distance in crop pixels
    if kind == "crop":
        hard = np.ones((spec.height, spec.width), np.float32)
    else:
        if points is None:
            raise ValueError(f"mask kind {kind!r} needs landmarks")
        hard = eye_mask(points, spec.size)
        if kind == "eyes-brows":
            hard = np.maximum(hard, brow_mask(points, spec.size))
        # Dilate past lids and brows, then erode back a little so thin gaps stay closed but the
        # edges move in. Both by thresholding distance transforms: the same as morphology with
        # a disk, but linear in the pixel count rather than in the disk's area.
        hard = grow_mask(hard, 0.15 * eye_px)
        hard = 1.0 - grow_mask(1.0 - hard, 0.04 * eye_px)
    feather = 0.12 * eye_px
    soft = cv2.GaussianBlur(hard, (0, 0), sigmaX=feather / 2) if kind != "crop" else hard
    fade = border_fade(spec.size, 0.18 * eye_px if kind == "crop" else feather)
    return np.clip(soft * fade, 0, 1).astype(np.float32)


# Where the generator changed a crop pixel by less than CHANGE_LOW levels (0-255) the photo's own
# full-resolution pixel is kept; above CHANGE_HIGH the generated one is used; in between, a blend.
CHANGE_LOW, CHANGE_HIGH = 3.0, 12.0


def change_weight(generated: np.ndarray, source: np.ndarray, spec: RegionSpec) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much the generator actually changed each crop pixel.

    The crop is a resampled (usually downscaled) copy of the photo, so even a perfect
    "no change" from the generator would cost the photo its fine detail if pasted back.
    Weighting the blend mask by the change keeps the original pixels wherever the edit did
    not reach (skin around glasses, lashes beside a recoloured iris). The difference is
    smoothed first so that noise does not switch pixels on and off.
    """
    diff = _channel_max(cv2.absdiff(generated, source)).astype(np.float32)  # (H, W)
    sigma = 0.02 * spec.width / spec.span  # ~2 crop pixels at the default sizes
    diff = cv2.GaussianBlur(diff, (0, 0), sigmaX=max(sigma, 0.5))
    weight = _smoothstep(diff, CHANGE_LOW, CHANGE_HIGH)
    # grow the weight a little so each edit's edge fades out over skin, not inside the edit
    grown = cv2.dilate(weight, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    return cv2.GaussianBlur(grown, (0, 0), sigmaX=max(sigma, 0.5)).astype(np.float32)


# A model with alpha says where it edits; below ALPHA_LOW the photo is kept exactly, from
# ALPHA_HIGH up the generator's crop (already mixed by alpha) is used, with a smoothstep between.
ALPHA_LOW, ALPHA_HIGH = 0.02, 0.5
# What a model with alpha paints (and the shadow its frame casts) fades out over this many
# pixels at the crop border: the alpha already keeps the rest of the crop as it was, so the
# fade only has to hide the crop's edge, not blend a whole crop in.
ALPHA_BORDER_FADE = 2.0


def alpha_mask(alpha: np.ndarray, spec: RegionSpec) -> np.ndarray:
    """(H, W) float32 blend mask in [0, 1] from a generator's (H, W) alpha in crop space.

    Alpha below ALPHA_LOW counts as "not edited" and gives 0; the mask is feathered by about
    one crop pixel so its edge is not a hard line, and it fades to 0 on the crop border.
    """
    weight = _smoothstep(alpha.astype(np.float32), ALPHA_LOW, ALPHA_HIGH)  # exactly 0 at alpha <= ALPHA_LOW
    sigma = max(0.01 * spec.width / spec.span, 0.5)  # ~1 crop pixel at the default sizes
    soft = cv2.GaussianBlur(weight, (0, 0), sigmaX=sigma)
    return np.clip(soft * border_fade(spec.size, ALPHA_BORDER_FADE), 0, 1).astype(np.float32)


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)


def match_colors(generated: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer in Lab, with statistics from the unedited ring only.

    The ring is where the blend mask is partial but low (0 < mask < 0.5): skin the generator
    should have left alone. Matching there corrects a global colour cast of the generator
    without undoing the edit itself. Inputs are (H, W, 3) uint8 RGB crops; returns the same.
    """
    ring = (mask > 0.02) & (mask < 0.5)
    if ring.sum() < 16:
        return generated
    g, s = _lab(generated), _lab(source)
    g_mean, g_std = g[ring].mean(0), g[ring].std(0) + 1e-3
    s_mean, s_std = s[ring].mean(0), s[ring].std(0) + 1e-3
    scale = np.clip(s_std / g_std, 0.5, 2.0)  # bounded: a flat ring must not explode contrast
    out = (g - g_mean) * scale + s_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def pin_chroma(generated: np.ndarray, source: np.ndarray, alpha: np.ndarray, color: str) -> np.ndarray:
    """An alpha model's (H, W, 3) uint8 output with the colour it painted given ``color``'s hue
    (``#rrggbb``), its lightness (the shading, a highlight along a rim) kept.

    The output is source * (1 - alpha) + paint * alpha; in Lab its a*b* become
    source's * (1 - alpha) + ``color``'s * alpha, which removes a tinge the generator left in a
    colour its data never had (a dark-green fringe along black rims). Pixels with alpha under
    ``PIN_MIN_ALPHA`` are left as they were.
    """
    pinned = _lab(np.array([[parse_color(color)]], np.uint8))[0, 0, 1:]
    lab, a = _lab(generated), alpha.astype(np.float32)[..., None]
    lab[..., 1:] = _lab(source)[..., 1:] * (1 - a) + pinned * a
    out = cv2.cvtColor(np.clip(np.rint(lab), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return np.where(a >= PIN_MIN_ALPHA, out, generated)


# Below this alpha the paint moves a pixel's hue by under a level, less than converting it to Lab
# and back does: such pixels (most of a crop, at alpha 0.001) stay bit for bit as they were.
PIN_MIN_ALPHA = 0.02


# Alpha above which (ramping up to FRAME_SOLID + 0.4) an adding model's pixel is frame, whose
# shadow falls on the skin: not the faint lens tint nor the model's own soft halo around the rims.
FRAME_SOLID = 0.3


def frame_shadow(alpha: np.ndarray, eye_centers: np.ndarray, shadow: dict[str, float]) -> np.ndarray:
    """(H, W) float32 darkening in [0, strength] of the shadow the frame an adding model drew
    (its (H, W) ``alpha``) casts on the skin, as synth casts it: the frame moved ``offset`` face
    units away from the light (``angle`` degrees from the face's down), blurred by ``softness``
    face units, none on the frame itself. ``eye_centers`` (2, 2): the face's right and left eye
    centres in the crop's pixels (a face unit is the distance between them)."""
    solid = np.clip((alpha.astype(np.float32) - FRAME_SOLID) / 0.4, 0, 1)
    shade = cast_shadow(solid, face_axes(eye_centers), shadow["angle"], shadow["offset"], shadow["softness"])
    dark = shadow["strength"] * shade * (1 - np.clip(alpha, 0, 1))
    return (dark * border_fade((alpha.shape[1], alpha.shape[0]), ALPHA_BORDER_FADE)).astype(np.float32)


# Scale (crop pixels) below which a painted hole keeps the generator's own detail; its shading
# above it comes from the photo. On real wearers the generator paints erased frames a shade
# too pale and pink (a smooth band in the shape of the frame); an inpainting carries the
# colours at the hole's edge inward exactly, but flat. Its blur plus the generator's detail
# has both: on glasses wearers not held out the bands took the skin's tone, most clearly on
# dark skin; what is left of a frame at the hole's edge is carried in too (a grey smudge
# where a pale band was). Tried on the same wearers and not kept: the inpainting from a hole
# grown 2-4 px (it lightens the hole's rim, so what is left of a frame outside it stands out
# as a dark line), OpenCV contrib's frequency-selective inpainting instead of Telea's (green
# at the temples, 0.8 s a crop), the shift on the colour alone (Lab a*, b*) or capped at
# 15-30 levels (no visible difference).
FILL_TONE_SIGMA = 2.0


def tone_fill(generated: np.ndarray, source: np.ndarray, hole: np.ndarray,
              sigma: float = FILL_TONE_SIGMA) -> np.ndarray:
    """A fill generator's (H, W, 3) uint8 output with the shading inside its ``hole`` (H, W;
    > 0.5 counts) taken from ``source`` inpainted from the hole's edge, and the grain of the
    skin around the hole (:func:`_grain`); pixels outside the hole are returned unchanged."""
    inside = (hole > 0.5).astype(np.uint8)
    if not inside.any():
        return generated
    guide = cv2.inpaint(source, inside, 3, cv2.INPAINT_TELEA).astype(np.float32)
    painted = generated.astype(np.float32)
    k = 2 * int(np.ceil(3 * sigma)) + 1
    # Blurred across the hole's edge, where the two agree (both the photo), so the shift fades
    # out toward the edge: a frame's remnant there is not carried in at full strength.
    shift = cv2.GaussianBlur(guide, (k, k), sigma) - cv2.GaussianBlur(painted, (k, k), sigma)
    toned = painted + shift
    toned += _grain(source.astype(np.float32), toned, inside.astype(bool))[..., None]
    return np.where(inside[..., None] > 0, np.clip(np.rint(toned), 0, 255).astype(np.uint8), generated)


# The painted hole is smoother than skin: a band the eye reads as a smear even in the right
# tone. Grain at the strength the photo's own fine detail has around the hole (what is missing
# of it: the detail the generator painted counts) hides it. Fine detail: luminance above a
# Gaussian of GRAIN_SCALE px, measured robustly (median absolute deviation) in a ring
# GRAIN_RING px wide around the hole; the grain is unit noise blurred by GRAIN_BLUR px, so
# that it is no finer than a photo's. On glasses wearers not held out the painted bands then
# read as skin; faces without glasses kept their figures (their holes are specks).
GRAIN_SCALE = 1.5
GRAIN_RING = 4
GRAIN_BLUR = 0.6


def _fine_detail_sd(lum: np.ndarray, where: np.ndarray) -> float:
    fine = lum - cv2.GaussianBlur(lum, (0, 0), GRAIN_SCALE)
    return float(1.4826 * np.median(np.abs(fine[where]))) if where.any() else 0.0


def _grain(source: np.ndarray, painted: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """(H, W) float grain to add inside ``inside`` (zero elsewhere): fixed noise (the same
    for a face from frame to frame, so video does not shimmer) scaled to the fine detail the
    skin around the hole has and the painted hole lacks."""
    size = 2 * GRAIN_RING + 1
    ring = (cv2.dilate(inside.astype(np.uint8), np.ones((size, size), np.uint8)) > 0) & ~inside
    target = _fine_detail_sd(source.mean(axis=2), ring)
    have = _fine_detail_sd(painted.mean(axis=2), inside)
    if target <= have:
        return np.zeros(inside.shape, np.float32)
    return np.sqrt(target**2 - have**2) * _unit_noise(inside.shape) * inside


@functools.lru_cache(maxsize=8)
def _unit_noise(shape: tuple[int, int]) -> np.ndarray:
    noise = cv2.GaussianBlur(np.random.default_rng(0).standard_normal(shape).astype(np.float32), (0, 0), GRAIN_BLUR)
    noise /= noise.std()
    noise.flags.writeable = False
    return noise


def composite(
    background: np.ndarray, foreground: np.ndarray, alpha: np.ndarray, mode: str = "feather"
) -> np.ndarray:
    """Blend two (H, W, 3) uint8 images of one box with an (H, W) float alpha in [0, 1].

    ``feather`` is a plain alpha blend; ``laplacian`` blends band by band over an image
    pyramid (low frequencies over a wide transition, fine detail over a narrow one);
    ``poisson`` solves for the foreground's gradients with the background's colours on the
    mask border (OpenCV seamless cloning; for stills, it is slower). Pixels with alpha == 0 are
    copied from ``background`` unchanged in every mode.
    """
    if mode not in BLEND_MODES:
        raise ValueError(f"unknown blend mode {mode!r}; choose one of {', '.join(BLEND_MODES)}")
    if background.shape != foreground.shape or background.shape[:2] != alpha.shape:
        raise ValueError(f"shapes differ: {background.shape}, {foreground.shape}, {alpha.shape}")
    a = alpha.astype(np.float32)[..., None]
    if mode == "feather":
        mixed = background * (1 - a) + foreground * a
    elif mode == "laplacian":
        mixed = _pyramid_blend(background, foreground, alpha)
    else:
        mixed = _poisson_blend(background, foreground, alpha)
    out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return np.where(a > 0, out, background)


def _pyramid_levels(shape: tuple[int, ...]) -> int:
    return int(max(1, min(5, np.log2(max(min(shape[:2]), 2)) - 3)))


def _pyramid_blend(background: np.ndarray, foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    levels = _pyramid_levels(background.shape)
    bg, fg = background.astype(np.float32), foreground.astype(np.float32)
    a = alpha.astype(np.float32)
    gauss_a, lap_bg, lap_fg = [a], [], []
    for _ in range(levels):
        small_bg, small_fg = cv2.pyrDown(bg), cv2.pyrDown(fg)
        size = (bg.shape[1], bg.shape[0])
        lap_bg.append(bg - cv2.pyrUp(small_bg, dstsize=size))
        lap_fg.append(fg - cv2.pyrUp(small_fg, dstsize=size))
        bg, fg = small_bg, small_fg
        gauss_a.append(cv2.pyrDown(gauss_a[-1]))
    out = bg * (1 - gauss_a[-1][..., None]) + fg * gauss_a[-1][..., None]
    for lb, lf, ga in zip(reversed(lap_bg), reversed(lap_fg), reversed(gauss_a[:-1])):
        out = cv2.pyrUp(out, dstsize=(lb.shape[1], lb.shape[0]))
        out += lb * (1 - ga[..., None]) + lf * ga[..., None]
    return out


def _poisson_blend(background: np.ndarray, foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    h, w = alpha.shape
    binary = (alpha > 0.5).astype(np.uint8) * 255
    binary[[0, -1], :] = 0  # seamlessClone needs the mask to stay off the box border
    binary[:, [0, -1]] = 0
    if binary.sum() == 0 or h < 4 or w < 4:
        return background * (1 - alpha[..., None]) + foreground * alpha[..., None]
    ys, xs = np.nonzero(binary)
    # seamlessClone places the mask's bounding-box centre at ``center``.
    center = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
    cloned = cv2.seamlessClone(foreground, background, binary, center, cv2.NORMAL_CLONE)
    # Feather the cloned result into the background over the soft part of the mask.
    a = alpha[..., None]
    return background * (1 - a) + cloned.astype(np.float32) * a
