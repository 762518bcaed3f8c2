import numpy as np
import pytest

from eyeedit.data.samples import rotate, sample_images
from eyeedit.geometry import (
    alignment_residual,
    cast_shadow,
    compose,
    crop_box,
    face_axes,
    fit_crop_from_image,
    invert,
    similarity,
    similarity_params,
    template_points,
    transform_points,
    unwarp_from_crop,
    warp_to_crop,
)
from eyeedit.landmarks import detect_faces
from eyeedit.regions import REGIONS, RegionSpec, parse_size, region_spec


@pytest.mark.parametrize("spec", list(REGIONS.values()), ids=list(REGIONS))
def test_template_inside_crop(spec):
    pts = template_points(spec)
    assert pts.shape == (4, 2)
    # one-eye regions hold only their own eye (subject's right eye = first two corners)
    pts = {"right-eye": pts[:2], "left-eye": pts[2:]}.get(spec.name, pts)
    assert np.all(pts[:, 0] > 0) and np.all(pts[:, 0] < spec.width)
    assert np.all(pts[:, 1] > 0) and np.all(pts[:, 1] < spec.height)


def test_eyes_template_numbers():
    spec = region_spec("eyes")
    pts = template_points(spec)
    centres = np.stack([pts[:2].mean(0), pts[2:].mean(0)])
    mid = centres.mean(0)
    assert mid == pytest.approx([spec.width / 2, 0.58 * spec.height])
    assert np.hypot(*(centres[1] - centres[0])) == pytest.approx(spec.width / 2.2)


@pytest.mark.parametrize("scale,angle,tx,ty", [(1.0, 0, 0, 0), (0.5, 30, 10, -4), (2.5, -75, -100, 40)])
def test_similarity_round_trip(scale, angle, tx, ty):
    m = similarity(scale, angle, tx, ty)
    assert similarity_params(m) == pytest.approx((scale, angle, tx, ty))
    pts = np.random.default_rng(0).uniform(-50, 50, (10, 2))
    back = transform_points(invert(m), transform_points(m, pts))
    assert np.allclose(back, pts)
    assert np.allclose(compose(invert(m), m), [[1, 0, 0], [0, 1, 0]])


@pytest.mark.parametrize("scale,angle,tx,ty", [(1.3, 20, 15, -8), (0.7, -45, -30, 60), (2.0, 170, 5, 5)])
def test_fit_recovers_known_transform(scale, angle, tx, ty):
    spec = region_spec("eyes")
    crop_from_image = similarity(scale, angle, tx, ty)
    corners = transform_points(invert(crop_from_image), template_points(spec))
    fitted = fit_crop_from_image(corners, spec)
    assert np.allclose(fitted, crop_from_image, atol=1e-6)
    assert alignment_residual(corners, fitted, spec) < 1e-6


def test_crop_then_unwarp_reproduces_pixels(astronaut, astronaut_face):
    spec = region_spec("eyes")
    crop_from_image = fit_crop_from_image(astronaut_face.eye_corners, spec)
    crop = warp_to_crop(astronaut, crop_from_image, spec.size)
    assert crop.shape == (spec.height, spec.width, 3) and crop.dtype == np.uint8
    patch, coverage, (x0, y0, x1, y1) = unwarp_from_crop(crop, crop_from_image, astronaut.shape)
    assert patch.shape[:2] == coverage.shape == (y1 - y0, x1 - x0)
    # the box is small: just the crop's footprint, not the whole frame
    assert (x1 - x0) * (y1 - y0) < 0.1 * astronaut.shape[0] * astronaut.shape[1]
    inside = coverage > 0.999
    original = astronaut[y0:y1, x0:x1].astype(np.float32)
    err = np.abs(patch.astype(np.float32) - original)[inside].mean() / 255
    assert err < 2 / 255


def test_rotated_face_gives_same_crop(astronaut, astronaut_face):
    spec = region_spec("eyes")
    rotated = rotate(astronaut, 30, tuple(astronaut_face.center))
    (face_r,) = detect_faces(rotated)
    crop_a = warp_to_crop(astronaut, fit_crop_from_image(astronaut_face.eye_corners, spec), spec.size)
    crop_b = warp_to_crop(rotated, fit_crop_from_image(face_r.eye_corners, spec), spec.size)
    diff = np.abs(crop_a.astype(np.float32) - crop_b.astype(np.float32)).mean() / 255
    assert diff < 0.06
    # the crops are far more alike than two crops offset by a few pixels
    shifted = np.roll(crop_a, 6, axis=1).astype(np.float32)
    assert diff < 0.6 * np.abs(crop_a.astype(np.float32) - shifted).mean() / 255


def test_crop_at_frame_edge_uses_reflection():
    img = sample_images()["astronaut-edge"]
    (face,) = detect_faces(img)
    spec = region_spec("glasses")
    crop_from_image = fit_crop_from_image(face.eye_corners, spec)
    crop = warp_to_crop(img, crop_from_image, spec.size)
    x0, _, _, _ = crop_box(crop_from_image, spec.size, img.shape)
    assert x0 == 0  # the crop reaches past the left border...
    assert crop[:, :8].mean() > 40  # ...and the part outside is filled, not black


def test_unwarp_off_frame_is_empty():
    crop = np.zeros((32, 64, 3), np.uint8)
    m = similarity(1.0, 0, 500, 500)  # the crop frame sees image pixels at (-500, -500)
    patch, coverage, box = unwarp_from_crop(crop, m, (100, 100, 3))
    assert patch.size == 0 and coverage.size == 0 and box[0] == box[2]


def test_bad_shapes_raise(astronaut):
    spec = region_spec("eyes")
    with pytest.raises(ValueError):
        fit_crop_from_image(np.zeros((3, 2)), spec)
    with pytest.raises(ValueError):
        transform_points(np.eye(3), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        transform_points(np.zeros((2, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError):
        warp_to_crop(np.zeros(10, np.uint8), np.zeros((2, 3)), (8, 8))
    with pytest.raises(ValueError):
        RegionSpec("nose")
    with pytest.raises(ValueError):
        RegionSpec("eyes", 8, 8)


def test_parse_size():
    assert parse_size("256x128") == (256, 128)
    assert parse_size("64") == (64, 64)
    for bad in ("abc", "0x5", "1x2x3"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_region_roundtrip_dict():
    spec = region_spec("glasses", (128, 64))
    assert RegionSpec.from_dict(spec.to_dict()) == spec
    assert spec.size == (128, 64)


@pytest.mark.parametrize("name", ["glasses", "eyes"])
def test_eye_openings_cover_each_eye_and_nothing_between(name):
    from eyeedit.geometry import eye_openings

    spec = region_spec(name)
    mask = eye_openings(spec)
    assert mask.shape == (spec.height, spec.width) and set(np.unique(mask)) == {0.0, 1.0}
    corners = template_points(spec)
    for a, b in (corners[0:2], corners[2:4]):
        cx, cy = np.round((a + b) / 2).astype(int)
        assert mask[cy, cx] == 1  # the iris
        x0, x1 = sorted((a[0], b[0]))
        assert mask[cy, int(x0)] == 1 and mask[cy, int(np.ceil(x1))] == 1  # both corners
        width = np.linalg.norm(b - a)
        assert mask[int(cy - 0.35 * width), cx] == 0 and mask[int(cy + 0.35 * width), cx] == 0  # brow, cheek
    bridge = np.round(corners[[1, 2]].mean(axis=0)).astype(int)
    assert mask[bridge[1], bridge[0]] == 0  # the nose bridge, where frames sit, is never kept
    assert 0.03 < mask.mean() < 0.15


def test_a_shadow_is_its_mask_moved_and_softened():
    mask = np.zeros((60, 80), np.float32)
    mask[20:24, 10:70] = 1  # a thin bar
    axes = face_axes(np.array([[30.0, 10.0], [40.0, 10.0]]))  # eyes 10 px apart, level
    assert np.array_equal(axes, [[10, 0], [0, 10]])  # a face unit across, and one down
    shadow = cast_shadow(mask, axes, 0.0, 0.5, 0.15)  # 5 px down, blurred by 1.5 px
    assert shadow.dtype == np.float32 and shadow.min() >= 0 and shadow.max() == 1
    rows = shadow[:, 40]
    assert np.argmax(rows) in (26, 27) and abs(float((rows * np.arange(60)).sum() / rows.sum()) - 26.5) < 0.2
    assert shadow[:12].max() == 0 and shadow[36:].max() == 0  # a finite blur: 3 sigma each side
    assert np.array_equal(cast_shadow(mask, axes, 0.0, 0.0, 0.0), mask)  # unmoved and unblurred: the mask
    sideways = cast_shadow(mask, axes, 90.0, 0.5, 0.0)  # turned a quarter: 5 px across, not down
    assert np.array_equal(sideways[20:24, 15:70], mask[20:24, 10:65]) and sideways[24:].max() == 0
