import cv2
import numpy as np
import pytest

from eyeedit.editing.blending import (
    BLEND_MODES,
    border_fade,
    brow_mask,
    composite,
    crop_mask,
    eye_mask,
    match_colors,
)
from eyeedit.geometry import fit_crop_from_image, transform_points
from eyeedit.regions import region_spec


@pytest.fixture
def crop_points(astronaut_face):
    spec = region_spec("eyes")
    m = fit_crop_from_image(astronaut_face.eye_corners, spec)
    return transform_points(m, astronaut_face.points), spec


@pytest.mark.parametrize("kind", ["eyes", "eyes-brows", "crop"])
def test_crop_mask_range_and_border(crop_points, kind):
    pts, spec = crop_points
    m = crop_mask(pts, spec, kind)
    assert m.shape == (spec.height, spec.width) and m.dtype == np.float32
    assert m.min() >= 0 and m.max() <= 1 and m.max() > 0.95
    # fades to exactly zero on the crop border
    assert m[0].max() == 0 and m[-1].max() == 0 and m[:, 0].max() == 0 and m[:, -1].max() == 0


def test_eyes_brows_mask_covers_features(crop_points):
    pts, spec = crop_points
    m = crop_mask(pts, spec, "eyes-brows")
    for x, y in pts[[468, 473, 105, 334]]:  # iris centres and mid-brows
        assert m[round(y), round(x)] > 0.9
    assert m[spec.height - 3, spec.width // 2] < 0.05  # nose below the eyes stays out
    assert crop_mask(pts, spec, "eyes").sum() < m.sum()


def test_mask_bad_kind(crop_points):
    pts, spec = crop_points
    with pytest.raises(ValueError):
        crop_mask(pts, spec, "nose")
    with pytest.raises(ValueError):
        crop_mask(None, spec, "eyes")


def test_border_fade():
    f = border_fade((10, 6), 2)
    assert f[0].max() == 0 and f[3, 4] == 1 and f[1, 5] == pytest.approx(0.5)


@pytest.mark.parametrize("mode", BLEND_MODES)
def test_composite_keeps_pixels_outside_alpha(mode):
    rng = np.random.default_rng(1)
    bg = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    bg = (bg // 2 + 64).astype(np.uint8)  # keep headroom so the edit does not clip
    fg = bg.copy()
    fg[15:25, 20:30] += 60  # the edit: a brighter square inside the mask
    alpha = np.zeros((40, 50), np.float32)
    alpha[8:32, 12:38] = 1.0
    out = composite(bg, fg, alpha, mode)
    outside = alpha == 0
    assert np.array_equal(out[outside], bg[outside])
    # the edit shows up against the rest of the mask (Poisson keeps it as a gradient)
    ring = alpha.astype(bool)
    ring[15:25, 20:30] = False
    gain = out[15:25, 20:30].astype(float).mean() - out[ring].astype(float).mean()
    base = bg[15:25, 20:30].astype(float).mean() - bg[ring].astype(float).mean()
    assert gain > base + 40


def test_composite_alpha_one_gives_foreground():
    bg = np.zeros((16, 16, 3), np.uint8)
    fg = np.full((16, 16, 3), 200, np.uint8)
    out = composite(bg, fg, np.ones((16, 16), np.float32), "feather")
    assert np.array_equal(out, fg)
    with pytest.raises(ValueError):
        composite(bg, fg, np.ones((16, 16), np.float32), "median")
    with pytest.raises(ValueError):
        composite(bg, fg[:8], np.ones((16, 16), np.float32))


def test_match_colors_removes_cast_but_keeps_edit():
    rng = np.random.default_rng(2)
    src = np.clip(rng.normal(150, 10, (64, 64, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((64, 64), np.float32)
    mask[8:56, 8:56] = 0.3  # the ring: partial mask
    mask[20:44, 20:44] = 1.0  # the edit
    gen = src.copy()
    gen[20:44, 20:44] = (40, 40, 200)  # the edit: blue block
    gen = np.clip(gen.astype(int) + (30, -20, 0), 0, 255).astype(np.uint8)  # plus a colour cast
    out = match_colors(gen, src, mask)
    ring = (mask > 0.02) & (mask < 0.5)
    assert np.abs(out[ring].astype(float).mean(0) - src[ring].mean(0)).max() < 3
    assert out[25:40, 25:40, 2].mean() > out[25:40, 25:40, 0].mean() + 80  # still blue


def test_masks_cover_eyes_and_brows(astronaut_face):
    spec = region_spec("eyes")
    crop_from_image = fit_crop_from_image(astronaut_face.eye_corners, spec)
    pts = transform_points(crop_from_image, astronaut_face.points)
    eyes, brows = eye_mask(pts, spec.size), brow_mask(pts, spec.size)
    assert eyes.shape == brows.shape == (spec.height, spec.width)
    assert set(np.unique(eyes)) == {0.0, 1.0}
    assert 0.01 < eyes.mean() < 0.15 and 0.01 < brows.mean() < 0.2
    assert (eyes * brows).sum() == 0  # brows sit above the eyes
    ys = np.nonzero(brows)[0].mean(), np.nonzero(eyes)[0].mean()
    assert ys[0] < ys[1]
    # iris centres fall inside the eye mask
    for x, y in transform_points(crop_from_image, astronaut_face.iris_centers):
        assert eyes[round(y), round(x)] == 1


def test_tone_fill_takes_the_shading_around_the_hole_and_keeps_the_painted_detail():
    from eyeedit.editing.blending import tone_fill

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:128]
    source = np.stack([60 + xx, 40 + yy, np.full_like(xx, 90)], axis=2).astype(np.uint8)  # smooth shading
    hole = np.zeros((64, 128), np.float32)
    hole[28:36, 10:118] = 1  # a frame's band
    painted = source.copy()
    detail = rng.integers(-6, 7, (8, 108, 3))
    painted[28:36, 10:118] = np.clip(200 + detail, 0, 255)  # a pale band with some texture
    out = tone_fill(painted, source, hole)
    assert np.array_equal(out[hole == 0], painted[hole == 0])  # nothing outside the hole moves
    # Inside the band (its edge rows are only partly corrected) it takes the skin's tone...
    core, skin = out[30:34, 20:108].astype(float), source[30:34, 20:108].astype(float)
    assert np.abs(core.mean(axis=(0, 1)) - skin.mean(axis=(0, 1))).max() < 10
    assert np.abs(out[28:36, 10:118].astype(float) - source[28:36, 10:118]).mean() < 0.3 * np.abs(
        painted[28:36, 10:118].astype(float) - source[28:36, 10:118]).mean()
    # ...and keeps the painted detail (not a flat copy of the surroundings).
    assert (core - skin).std(axis=(0, 1)).min() > 2
    assert tone_fill(painted, source, np.zeros_like(hole)) is painted


def test_tone_fill_gives_a_smooth_fill_the_grain_of_the_skin_around_it():
    from eyeedit.editing.blending import tone_fill

    rng = np.random.default_rng(1)
    skin = np.clip(150 + rng.normal(0, 6, (64, 128, 1)) + np.zeros((1, 1, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros((64, 128), np.float32)
    hole[26:38, 10:118] = 1
    painted = skin.copy()
    painted[26:38, 10:118] = 150  # painted perfectly flat: reads as a smear
    out = tone_fill(painted, skin, hole)
    assert np.array_equal(out[hole == 0], painted[hole == 0])

    def fine(img):  # fine detail's spread in the hole's core
        lum = img.astype(np.float32).mean(axis=2)
        return (lum - cv2.GaussianBlur(lum, (0, 0), 1.5))[28:36, 20:108].std()

    assert fine(painted) < 0.5 and 0.5 * fine(skin) < fine(out) < 1.5 * fine(skin)
    assert abs(out[28:36, 20:108].mean() - 150) < 2  # grain, not a change of tone
    assert np.array_equal(tone_fill(painted, skin, hole), out)  # the same grain every time
    from eyeedit.editing.blending import _grain

    flat = np.full(skin.shape, 150, np.float32)  # no texture around the hole: nothing to match
    assert not _grain(flat, flat, hole > 0.5).any()
    # where the painted hole has the skin's detail already, next to nothing is added
    assert _grain(skin.astype(np.float32), skin.astype(np.float32), hole > 0.5).std() < 0.3 * fine(skin)


def test_pin_chroma_gives_the_painted_colour_its_pinned_hue_and_keeps_its_shading():
    import cv2

    from eyeedit.editing.blending import pin_chroma

    rng = np.random.default_rng(1)
    source = rng.integers(120, 200, (32, 64, 3)).astype(np.uint8)
    alpha = np.zeros((32, 64), np.float32)
    alpha[10:20, :] = 1.0
    alpha[20:24, :] = 0.5
    generated = source.copy()
    generated[10:24] = (20, 60, 30)  # a dark rim painted with a green tinge
    out = pin_chroma(generated, source, alpha, "#141414")
    assert np.array_equal(out[alpha == 0], generated[alpha == 0])  # nothing unpainted moves
    lab = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2LAB).astype(int)  # noqa: E731
    rim, painted = lab(out)[10:20], lab(generated)[10:20]
    assert np.abs(rim[..., 1:] - 128).max() <= 2  # neutral like #141414: the green is gone
    assert np.abs(rim[..., 0] - painted[..., 0]).max() <= 2  # and the lightness is the painted one
    half = lab(out)[20:24, ..., 1:]
    expected = (lab(source)[20:24, ..., 1:] + 128) / 2  # half the photo's hue, half the pinned one
    assert np.abs(half - expected).max() <= 2
