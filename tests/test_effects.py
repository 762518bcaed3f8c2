"""Effect renderers: edits stay where they belong, untouched pixels are bit-identical, colours
hit their targets, and the same parameters give the same picture."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from eyeedit.data.effects import EFFECTS, Pins, eye_color, get_effect, glasses, makeup, params_dict
from eyeedit.data.effects.base import to_face
from eyeedit.geometry import fit_crop_from_image, polygon_mask, transform_points
from eyeedit.imageio import parse_color
from eyeedit.landmarks import LEFT_EYE, NOSE_BRIDGE, RIGHT_EYE, Face
from eyeedit.regions import REGIONS


def _render(name: str, image: np.ndarray, face: Face, seed: int = 0, pins: Pins = Pins()):
    effect = get_effect(name)
    params = effect.sample(np.random.default_rng(seed), face, pins)
    return params, effect.render(image, face, params)


@pytest.mark.parametrize("name", list(EFFECTS))
def test_untouched_pixels_are_bit_identical(name, big_face):
    image, face = big_face
    _, out = _render(name, image, face)
    assert out.image.shape == image.shape and out.image.dtype == np.uint8
    changed = (out.image != image).any(axis=2)
    assert changed.sum() > 50  # the effect did something
    assert not (changed & ~out.mask).any()  # every changed pixel is reported as touched
    assert np.array_equal(out.image[~out.mask], image[~out.mask])
    assert out.mask.sum() < 0.25 * out.mask.size


@pytest.mark.parametrize("name", list(EFFECTS))
def test_same_params_same_picture_and_seeds_differ(name, big_face):
    image, face = big_face
    p1, r1 = _render(name, image, face, seed=3)
    p2, r2 = _render(name, image, face, seed=3)
    p3, r3 = _render(name, image, face, seed=4)
    assert p1 == p2 and np.array_equal(r1.image, r2.image)
    assert p1 != p3 and not np.array_equal(r1.image, r3.image)
    record = params_dict(p1)
    assert type(p1)(**record) == p1  # the manifest's dict rebuilds the exact params


def _face_units(face: Face, mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return to_face(face, np.column_stack([xs, ys]))  # (N, 2) in inter-eye distances


@pytest.mark.parametrize("style", glasses.STYLES)
def test_glasses_stay_around_the_eyes_and_inside_the_glasses_crop(style, big_face):
    image, face = big_face
    params, out = _render("glasses", image, face, pins=Pins(style=style))
    assert params.style == style
    pts = _face_units(face, out.mask)
    assert np.abs(pts[:, 0]).max() < 1.4 and -0.6 < pts[:, 1].min() and pts[:, 1].max() < 0.6
    # The frame front (everything but the arms) spans about +-1.15 eye distances.
    assert np.abs(pts[:, 0]).max() > 0.9
    # The bridge crosses the nose at landmark 168.
    bridge = face.points[NOSE_BRIDGE[0]]
    near = np.hypot(*(np.argwhere(out.mask)[:, ::-1] - bridge).T) < 0.15 * face.eye_distance
    assert near.any()
    # Every touched pixel lands inside the `glasses` crop: the model sees the whole frame.
    spec = REGIONS["glasses"]
    ys, xs = np.nonzero(out.mask)
    crop_pts = transform_points(fit_crop_from_image(face.eye_corners, spec), np.column_stack([xs, ys]))
    assert crop_pts.min() >= 0
    assert crop_pts[:, 0].max() < spec.width and crop_pts[:, 1].max() < spec.height


def test_glasses_follow_roll(big_face):
    image, face = big_face
    center = tuple(float(c) for c in face.center)
    rot = cv2.getRotationMatrix2D(center, 20, 1.0)
    turned_image = cv2.warpAffine(image, rot, image.shape[1::-1])
    turned = face.transformed(rot)
    params = glasses.sample_params(np.random.default_rng(0), face, "rectangular")
    a = to_face(face, np.argwhere(glasses.render(image, face, params).mask)[:, ::-1])
    b = to_face(turned, np.argwhere(glasses.render(turned_image, turned, params).mask)[:, ::-1])
    # In face units the two frames cover the same area.
    assert abs(len(a) - len(b)) < 0.05 * len(a)
    assert np.allclose(np.percentile(a, [5, 50, 95], axis=0), np.percentile(b, [5, 50, 95], axis=0), atol=0.03)


def test_unknown_glasses_style_is_refused(big_face):
    with pytest.raises(ValueError, match="cat-eye"):
        glasses.sample_params(np.random.default_rng(0), big_face[1], "monocle")


def _eye_openings(face: Face, shape: tuple[int, ...]) -> np.ndarray:
    size = (shape[1], shape[0])
    return polygon_mask([face.points[list(RIGHT_EYE)], face.points[list(LEFT_EYE)]], size) > 0


@pytest.mark.parametrize("color", ["blue", "green", "#7a4ab0"])
def test_eye_color_stays_in_the_iris_and_hits_the_target_hue(color, big_face):
    image, face = big_face
    params, out = _render("eye-color", image, face, pins=Pins(color=color))
    openings = cv2.dilate(_eye_openings(face, image.shape).astype(np.uint8), np.ones((3, 3))) > 0
    assert out.mask.any() and not (out.mask & ~openings).any()
    # Only inside the iris circles (plus a pixel of anti-aliasing), never the pupil centres.
    for center, radius in zip(face.iris_centers, face.iris_radii):
        ys, xs = np.nonzero(out.mask)
        d = np.hypot(xs - center[0], ys - center[1])
        assert d[d < 2 * radius].max() <= radius + 1.5
        assert not out.mask[int(round(center[1])), int(round(center[0]))]
    hue = _mean_hue(out.image[out.mask])
    target = _mean_hue(np.array([parse_color(params.color)], np.uint8))
    assert abs((hue - target + 180) % 360 - 180) < 25, (hue, target)
    assert abs((_mean_hue(image[out.mask]) - target + 180) % 360 - 180) > 60  # was another colour


def _mean_hue(rgb: np.ndarray) -> float:
    """Mean Lab hue angle (degrees) of (N, 3) uint8 RGB pixels, averaged on the a/b plane."""
    lab = cv2.cvtColor(rgb.reshape(-1, 1, 3).astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[:, 0]
    return float(np.degrees(np.arctan2(lab[:, 2].mean(), lab[:, 1].mean())))


def test_eye_color_names_and_hex():
    assert eye_color.parse_target("Blue") == ("blue", eye_color.COLORS["blue"])
    assert eye_color.parse_target("gray")[0] == "grey"
    assert eye_color.parse_target("#3A6EA5") == ("custom", "#3a6ea5")
    with pytest.raises(ValueError, match="neither one of blue"):
        eye_color.parse_target("purple-ish")


def test_eye_color_skips_closed_eyes_and_tiny_irises(big_face):
    _, face = big_face
    assert eye_color.unusable(face) is None
    pts = face.points.copy()
    for upper, lower in ((RIGHT_EYE[1:8], RIGHT_EYE[9:][::-1]), (LEFT_EYE[1:8], LEFT_EYE[9:][::-1])):
        pts[list(upper)] = pts[list(lower)]  # lids shut: the upper margin on the lower one
    assert eye_color.unusable(Face(pts, face.z)) == "eyes-closed"
    tiny = face.transformed(np.array([[0.2, 0, 0], [0, 0.2, 0]]))
    assert eye_color.unusable(tiny) == "face-too-small"


def test_makeup_stays_on_the_lids(big_face):
    image, face = big_face
    _, out = _render("makeup", image, face, seed=1)
    pts = _face_units(face, out.mask)
    # Between the brows and just below the lash line, no further out than a short wing.
    assert -0.6 < pts[:, 1].min() and pts[:, 1].max() < 0.15
    assert np.abs(pts[:, 0]).max() < 1.0
    inner = cv2.erode(_eye_openings(face, image.shape).astype(np.uint8), np.ones((3, 3))) > 0
    assert not (out.mask & inner).any()  # nothing drawn on the eyeball
    # Darker on average: powder and liner darken the skin they cover.
    assert out.image[out.mask].mean() < image[out.mask].mean()


def test_makeup_liner_has_a_wing_past_the_outer_corner(big_face):
    image, face = big_face
    params = makeup.sample_params(np.random.default_rng(0), face)
    winged = makeup.render(image, face, type(params)(**{**params_dict(params), "wing": 0.12}))
    plain = makeup.render(image, face, type(params)(**{**params_dict(params), "wing": 0.0}))
    wing = _face_units(face, (winged.image != plain.image).any(axis=2))
    outer_corner = np.abs(to_face(face, face.eye_corners[[0, 3]])[:, 0]).min()
    assert np.abs(wing[:, 0]).max() > outer_corner + 0.05  # the wing reaches past the corner
    assert (wing[:, 1] < 0.02).all()  # and it points up, never down the cheek
