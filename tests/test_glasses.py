"""The glasses renderer: every frame type draws, coverage agrees with the touched mask, arms reach
the ears, refraction stays in the lens, the pinned look is stable and its rims pass the rim check."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from eyeedit.data.effects import glasses
from eyeedit.data.effects.base import TypicalDraws, to_face
from eyeedit.data.effects.rimcheck import check_rim
from eyeedit.imageio import parse_color
from eyeedit.landmarks import NOSE_TIP, TEMPLES, Face
from eyeedit.model.networks import solid_parts

PINNED = ("rectangular", "plastic", "black", "clear")  # pipelines/glasses.toml


def _check_output(image: np.ndarray, out) -> None:
    changed = (out.image != image).any(axis=2)
    assert changed.sum() > 50
    assert not (changed & ~out.mask).any()
    assert np.array_equal(out.image[~out.mask], image[~out.mask])
    cov = out.coverage
    assert cov is not None and cov.shape == image.shape[:2] and cov.dtype == np.float32
    assert cov.min() >= 0 and cov.max() <= 1
    assert not ((cov > 0) & ~out.mask).any()  # coverage only where the glasses touched
    assert cov.max() > 0.5  # some part of the frame is (nearly) opaque


@pytest.mark.parametrize("material", glasses.MATERIALS)
@pytest.mark.parametrize("style", glasses.STYLES)
def test_every_style_and_material_renders_with_consistent_coverage(style, material, big_face):
    image, face = big_face
    params = glasses.sample_params(np.random.default_rng(1), face, style, material)
    assert (params.style, params.material) == (style, material)
    _check_output(image, glasses.render(image, face, params))


def test_random_draws_cover_every_frame_mostly_everyday(big_face):
    _, face = big_face
    draws = [glasses.sample_params(np.random.default_rng(s), face) for s in range(600)]
    styles = [p.style for p in draws]
    assert set(styles) == set(glasses.STYLES)
    assert {p.material for p in draws} == set(glasses.MATERIALS)
    assert max(set(styles), key=styles.count) == "rectangular"
    sunglasses = np.mean([p.lens_alpha >= 0.4 for p in draws])
    clear = np.mean([p.lens_tint == glasses.CLEAR_LENS for p in draws])
    assert 0.03 < sunglasses < 0.2 and clear > 0.5
    powers = np.array([p.lens_power for p in draws])
    assert (powers < 1).any() and (powers > 1).any() and (powers == 1).any()
    outs = [glasses.render(big_face[0], face, p) for p in draws[:8]]
    for out in outs:
        _check_output(big_face[0], out)


def test_same_seed_same_picture_and_coverage(big_face):
    image, face = big_face
    a, b = (glasses.render(image, face, glasses.sample_params(np.random.default_rng(7), face)) for _ in range(2))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.coverage, b.coverage)


def _arm_reach(face: Face, arms: np.ndarray) -> tuple[float, float]:
    """How far out (face units) the arm pixels reach on the image-left and image-right sides."""
    ys, xs = np.nonzero(arms > 0.5)
    x = to_face(face, np.column_stack([xs, ys]))[:, 0]
    return float(-x.min()), float(x.max())


@pytest.mark.parametrize("style", ["rectangular", "rimless"])
def test_arms_run_past_the_eye_corners_to_the_ears(style, big_face):
    image, face = big_face
    params = glasses.sample_params(TypicalDraws(), face, style)
    layers = glasses.frame_layers(image.shape, face, params)
    corners = np.abs(to_face(face, face.eye_corners[[0, 3]])[:, 0])
    ears = np.abs(to_face(face, face.points[list(TEMPLES)])[:, 0])
    reach = _arm_reach(face, layers["arms"])
    for side in range(2):
        assert reach[side] > corners[side] + 0.3  # well past the eye's outer corner
        assert reach[side] >= min(ears[side], glasses.ARM_REACH) - 0.02  # up to the face outline


def test_the_far_arm_hides_behind_a_turned_head(big_face):
    image, face = big_face
    points = face.points.copy()
    # Move the nose tip toward image right: the head turns that way and its right side recedes.
    points[NOSE_TIP] += np.array([0.45, 0.0]) * face.eye_distance
    turned = Face(points, face.z)
    assert turned.yaw > 20
    params = glasses.sample_params(TypicalDraws(), turned, "rectangular")
    left, right = _arm_reach(turned, glasses.frame_layers(image.shape, turned, params)["arms"])
    front_left, front_right = _arm_reach(face, glasses.frame_layers(image.shape, face, params)["arms"])
    assert right < front_right - 0.1 and abs(left - front_left) < 0.05


def test_arms_taper_toward_the_ears(big_face):
    image, face = big_face
    params = glasses.sample_params(TypicalDraws(), face, "rectangular", "plastic")
    arms = glasses.frame_layers(image.shape, face, params)["arms"]
    ys, xs = np.nonzero(arms > 0.5)
    pts = to_face(face, np.column_stack([xs, ys]))
    right = pts[pts[:, 0] > 0]
    near, far = np.percentile(right[:, 0], [20, 80])
    # Pixels per unit of length: thicker near the hinge than near the ear.
    assert (np.abs(right[:, 0] - near) < 0.03).sum() > (np.abs(right[:, 0] - far) < 0.03).sum()


@pytest.mark.parametrize("power", [0.88, 1.1])
def test_refraction_changes_pixels_inside_the_lens_only(power, big_face):
    image, face = big_face
    plano = glasses.sample_params(TypicalDraws(), face, *PINNED)
    assert plano.lens_power == 1.0
    a = glasses.render(image, face, plano)
    b = glasses.render(image, face, replace(plano, lens_power=power))
    lens = glasses.frame_layers(image.shape, face, plano)["lens"]
    moved = (a.image != b.image).any(axis=2)
    assert moved.sum() > 200
    assert not (moved & (lens == 0)).any()
    assert np.array_equal(a.mask, b.mask)


def test_shadow_falls_beside_the_rims_not_on_the_lens(big_face):
    image, face = big_face
    params = glasses.sample_params(TypicalDraws(), face, *PINNED)
    layers = glasses.frame_layers(image.shape, face, params)
    assert layers["shadow"].max() > 0.3
    assert layers["shadow"][layers["lens"] >= 1].max() == 0
    # Light from above: more shadow below the frame's centre line than above it.
    ys = np.nonzero(layers["shadow"] > 0.1)[0]
    center_y = face.eye_centers[:, 1].mean()
    assert (ys > center_y).sum() > (ys < center_y).sum()


def test_a_tinted_lens_covers_more_than_a_clear_one(big_face):
    image, face = big_face
    clear = glasses.sample_params(TypicalDraws(), face, "round", "metal", tint="clear")
    dark = replace(clear, lens_tint=glasses.TINTS["grey"], lens_alpha=0.6)
    center = np.round(glasses.layout(face, clear).centers[0]).astype(int)
    cov = [glasses.render(image, face, p).coverage[center[1], center[0]] for p in (clear, dark)]
    assert 0.15 <= cov[0] < cov[1] <= 0.55


def test_pinned_look_is_stable_and_its_rims_are_clean_and_even(astronaut, astronaut_face):
    params = glasses.sample_params(TypicalDraws(), astronaut_face, *PINNED)
    again = glasses.sample_params(TypicalDraws(), astronaut_face, *PINNED)
    assert params == again
    assert params.rim_color == "#141414" and params.streak == 0 and params.shadow_angle == 0
    assert params.lens_power == 1.0
    out = glasses.render(astronaut, astronaut_face, params)
    assert np.array_equal(out.image, glasses.render(astronaut, astronaut_face, again).image)
    rim = glasses.frame_layers(astronaut.shape, astronaut_face, params)["rim"]
    result = check_rim(out.image, rim, parse_color(params.rim_color))
    assert result.delta_e <= 10 and result.width_even >= 0.9
    assert result.width_px == pytest.approx(params.rim_width * astronaut_face.eye_distance, rel=0.6)


def _ring(shape: tuple[int, int], bumpy: bool) -> np.ndarray:
    """A rectangular-ish ring mask: even (4 px) or with a width that swings between 2 and 9 px."""
    mask = np.zeros(shape, np.uint8)
    center = np.array([shape[1] / 2, shape[0] / 2])
    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    pts = center + np.column_stack([60 * np.cos(t), 35 * np.sin(t)])
    widths = 2 + 7 * (np.sin(5 * t) > 0) if bumpy else np.full(t.shape, 4)
    for p, w in zip(pts, widths):
        cv2.circle(mask, (int(round(p[0])), int(round(p[1]))), int(w) // 2, 1, -1)
    return mask > 0


def test_rim_check_flags_a_discoloured_or_bumpy_rim(astronaut):
    image = astronaut[100:260, 100:300].copy()
    black = (20, 20, 20)
    even = _ring(image.shape[:2], bumpy=False)
    image[even] = black
    good = check_rim(image, even, black)
    assert good.delta_e < 1 and good.width_even >= 0.9 and 3 <= good.width_px <= 5.5
    brown = image.copy()
    brown[even] = (110, 70, 40)
    assert check_rim(brown, even, black).delta_e > 10
    bumpy = _ring(image.shape[:2], bumpy=True)
    lumpy = image.copy()
    lumpy[bumpy] = black
    assert check_rim(lumpy, bumpy, black).width_even < 0.9


def test_rim_check_refuses_an_empty_or_mismatched_mask(astronaut):
    with pytest.raises(ValueError, match="empty"):
        check_rim(astronaut, np.zeros(astronaut.shape[:2], bool), (0, 0, 0))
    with pytest.raises(ValueError, match="does not match"):
        check_rim(astronaut, np.ones((4, 4), bool), (0, 0, 0))


def test_new_choices_are_pins_and_unknown_ones_are_refused(big_face):
    _, face = big_face
    p = glasses.sample_params(TypicalDraws(), face, "semi-rimless", "tortoiseshell", "havana")
    assert (p.style, p.material) == ("semi-rimless", "tortoiseshell")
    with pytest.raises(ValueError, match="two-tone"):
        glasses.sample_params(TypicalDraws(), face, "round", "wood")


@pytest.mark.parametrize("style", ["rimless", "semi-rimless", "rectangular"])
def test_a_lens_edge_no_rim_hides_counts_as_frame_to_remove(style, big_face):
    # A removal model learns to erase what synth's coverage marks solid; the edge of a rimless
    # lens is what a person sees as the glasses, so the lowest point of each lens must be solid.
    image, face = big_face
    params = glasses.sample_params(np.random.default_rng(4), face, style, "metal", tint="clear")
    cov = glasses.render(image, face, params).coverage
    solid = solid_parts(torch.from_numpy(cov)[None, None])[0, 0].numpy() > 0
    for outline in glasses.layout(face, params).lenses:
        x, y = np.round(outline[np.argmax(outline[:, 1])]).astype(int)
        assert solid[y - 1:y + 2, x - 1:x + 2].any(), f"{style}: lower lens edge at ({x}, {y}) not solid"
    # ... and the lens itself, inside its edge, stays not solid (the eye behind it is kept).
    center = np.round(glasses.layout(face, params).centers[0]).astype(int)
    assert not solid[center[1], center[0]]


@pytest.mark.parametrize("style", ["rimless", "semi-rimless"])
def test_a_rimless_lens_edge_shines_and_its_glow_counts_as_frame(style, big_face):
    # In portraits a rimless lens shows as a whitish band along its lower edge (the ground edge
    # catches the light), not only as a dark line: the glow brightens the edge, and a removal
    # model learns to erase the band.
    image, face = big_face
    base = replace(glasses.sample_params(np.random.default_rng(4), face, style, "metal", tint="clear"),
                   edge_width=0.03, edge_dark=0.08)
    bright = glasses.render(image, face, replace(base, edge_glow=0.45))
    unlit = glasses.render(image, face, replace(base, edge_glow=0.0))
    dark = glasses.render(image, face, replace(base, edge_glow=0.0, edge_dark=0.3))
    solid = solid_parts(torch.from_numpy(bright.coverage)[None, None])[0, 0].numpy() > 0
    lum = lambda im, y, x: float(im[y - 1:y + 2, x - 1:x + 2].astype(np.float32).mean())  # noqa: E731
    for outline in glasses.layout(face, base).lenses:
        x, y = np.round(outline[np.argmax(outline[:, 1])]).astype(int)
        assert lum(bright.image, y, x) > lum(unlit.image, y, x) + 5, f"{style}: lower edge at ({x}, {y}) not lit"
        assert lum(dark.image, y, x) < lum(unlit.image, y, x) - 5, f"{style}: dark line at ({x}, {y}) too faint"
        assert solid[y - 1:y + 2, x - 1:x + 2].any(), f"{style}: glowing edge at ({x}, {y}) not solid"
