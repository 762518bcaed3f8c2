import cv2
import numpy as np
import pytest

from eyeedit.data.samples import sample_images
from eyeedit.editing.editor import EditOptions, Editor
from eyeedit.regions import region_spec


def identity(crops: np.ndarray) -> np.ndarray:
    return crops.copy()


def tint(crops: np.ndarray) -> np.ndarray:
    """A mild edit: warmer and brighter everywhere in the crop."""
    return np.clip(crops.astype(int) + (16, 6, -6), 0, 255).astype(np.uint8)


def make_editor(translate, region="eyes", **opts) -> Editor:
    return Editor(translate, region_spec(region), EditOptions(**opts))


@pytest.mark.parametrize("blend", ["feather", "laplacian", "poisson"])
@pytest.mark.parametrize("region", ["eyes", "glasses"])
def test_identity_generator_changes_nothing_outside_mask(astronaut, blend, region):
    editor = make_editor(identity, region, blend=blend)
    res = editor.run(astronaut)
    assert res.image.shape == astronaut.shape and res.image.dtype == np.uint8
    (fe,) = res.faces
    from eyeedit.geometry import unwarp_from_crop

    alpha, coverage, (x0, y0, x1, y1) = unwarp_from_crop(fe.mask, fe.crop_from_image, astronaut.shape)
    outside = np.ones(astronaut.shape[:2], bool)
    outside[y0:y1, x0:x1] = (alpha * coverage) == 0
    assert np.array_equal(res.image[outside], astronaut[outside])
    # inside, an identity generator only costs resampling error
    diff = np.abs(res.image.astype(int) - astronaut.astype(int))
    assert diff.mean() < 0.5 and diff.max() < 60


def test_edit_stays_inside_crop_box_and_shows(astronaut):
    res = make_editor(tint).run(astronaut)
    changed = np.any(res.image != astronaut, axis=2)
    ys, xs = np.nonzero(changed)
    fx0, fy0, fx1, fy1 = res.faces[0].face.bbox
    assert xs.min() >= fx0 - 5 and xs.max() <= fx1 + 5 and ys.min() >= fy0 - 10 and ys.max() <= fy1
    # the tint is visible around the eyes
    cx, cy = res.faces[0].face.eye_centers.mean(0).round().astype(int)
    patch = res.image[cy - 5 : cy + 5, cx - 20 : cx + 20].astype(int) - astronaut[cy - 5 : cy + 5, cx - 20 : cx + 20]
    assert patch[..., 0].mean() > 8


def _seam_and_own_gradients(image, editor_factory):
    """Max gradient of the edit's contribution vs the 75th percentile of the photo's own."""
    brighten = lambda crops: np.clip(crops.astype(int) + 40, 0, 255).astype(np.uint8)
    edited = editor_factory(brighten).run(image)
    base = editor_factory(identity).run(image)  # same resampling, so only the blend remains
    delta = edited.image.astype(np.float32) - base.image.astype(np.float32)
    change_grad = np.hypot(*np.gradient(delta.mean(axis=2)))
    own_grad = np.hypot(*np.gradient(image.astype(np.float32).mean(axis=2)))
    fx0, fy0, fx1, fy1 = (int(v) for v in edited.faces[0].face.bbox)
    box = (slice(fy0, fy1), slice(fx0, fx1))
    assert np.abs(delta[box]).max() > 30  # the edit is really there
    return change_grad[box].max(), np.percentile(own_grad[box], 75)


@pytest.mark.parametrize("region", ["eyes", "glasses"])
def test_no_seam_at_mask_border(astronaut, region):
    # adaptive off: this checks the region mask's own feathering and border fade
    seam, own = _seam_and_own_gradients(astronaut, lambda t: make_editor(t, region, adaptive=False))
    assert seam <= own


def test_adaptive_mask_keeps_the_photo_where_nothing_changed(astronaut):
    assert np.array_equal(make_editor(identity).edit(astronaut), astronaut)  # bit-identical

    def iris_paint(crops):
        out = crops.copy()
        out[:, 60:90, 70:100] = (40, 90, 200)  # a blue block over one eye (crop pixels)
        return out

    res = make_editor(iris_paint, adaptive=True).run(astronaut)
    changed = np.any(res.image != astronaut, axis=2)
    from eyeedit.geometry import invert, transform_points

    # the change is where the block maps in the photo, and nowhere far from it
    corners = np.array([[70, 60], [100, 60], [100, 90], [70, 90]], float)
    block = transform_points(invert(res.faces[0].crop_from_image), corners)
    ys, xs = np.nonzero(changed)
    margin = 4
    assert xs.min() >= block[:, 0].min() - margin and xs.max() <= block[:, 0].max() + margin
    assert ys.min() >= block[:, 1].min() - margin and ys.max() <= block[:, 1].max() + margin
    cx, cy = block.mean(0).round().astype(int)
    assert res.image[cy, cx, 2] > res.image[cy, cx, 0] + 80  # blue inside


def test_seam_check_catches_a_hard_mask(astronaut, monkeypatch):
    import eyeedit.editing.editor as editor_module

    soft = editor_module.crop_mask
    monkeypatch.setattr(editor_module, "crop_mask", lambda p, s, k: (soft(p, s, k) > 0.3).astype(np.float32))
    seam, own = _seam_and_own_gradients(astronaut, lambda t: make_editor(t, "eyes", adaptive=False))
    assert seam > own


def test_strength_scales_the_edit(astronaut):
    full = make_editor(tint).edit(astronaut).astype(int) - astronaut
    half = make_editor(tint, strength=0.5).edit(astronaut).astype(int) - astronaut
    none = make_editor(tint, strength=0.0).edit(astronaut)
    assert np.array_equal(none, astronaut)
    assert abs(half[..., 0].sum() / full[..., 0].sum() - 0.5) < 0.05


def test_every_face_edited_in_one_batch():
    img = sample_images()["two-faces"]
    sizes = []

    def counting(crops):
        sizes.append(len(crops))
        return tint(crops)

    res = make_editor(counting).run(img)
    assert sizes == [2] and len(res.faces) == 2
    left, right = res.faces
    for fe in (left, right):
        cx, cy = fe.face.eye_centers.mean(0).round().astype(int)
        assert (res.image[cy, cx - 10 : cx + 10].astype(int) - img[cy, cx - 10 : cx + 10]).sum() > 0
    only_right = make_editor(tint, face_index=1).run(img)
    assert len(only_right.faces) == 1 and only_right.faces[0].face.center[0] > img.shape[1] / 2
    assert make_editor(tint, face_index=5).run(img).faces == []


def test_no_face_returns_copy():
    img = sample_images()["no-face"]
    res = make_editor(tint).run(img)
    assert res.faces == [] and np.array_equal(res.image, img) and res.image is not img


def test_face_at_frame_edge():
    img = sample_images()["astronaut-edge"]
    res = make_editor(tint, region="glasses").run(img)
    assert len(res.faces) == 1 and res.image.shape == img.shape
    # the face is edited though its crop runs off the photo, and nothing outside the crop's box
    from eyeedit.geometry import unwarp_from_crop

    e = res.faces[0]
    _, _, (x0, y0, x1, y1) = unwarp_from_crop(e.crop_in, e.crop_from_image, img.shape)
    changed = np.abs(res.image.astype(int) - img).max(axis=2) > 0
    outside = np.ones(changed.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert not changed[outside].any()
    eyes = np.round(e.face.eye_centers).astype(int)  # (2, 2) x, y in the photo
    on_photo = [(x, y) for x, y in eyes if 0 <= x < img.shape[1] and 0 <= y < img.shape[0]]
    assert on_photo and all(changed[max(0, y - 8):y + 8, max(0, x - 8):x + 8].mean() > 0.5 for x, y in on_photo)


def test_timings_and_crops(astronaut):
    res = make_editor(identity).run(astronaut)
    assert set(res.timings_ms) == {"detect", "align", "generator", "blend"}
    fe = res.faces[0]
    assert fe.crop_in.shape == fe.crop_out.shape == (128, 256, 3)
    assert fe.mask.shape == (128, 256)


def test_color_match_option(astronaut):
    res = make_editor(tint, color_match=True).run(astronaut)
    plain = make_editor(tint).run(astronaut)
    # matching the ring pulls the cast back toward the input colours
    d_match = np.abs(res.image.astype(int) - astronaut).sum()
    d_plain = np.abs(plain.image.astype(int) - astronaut).sum()
    assert d_match < d_plain


def test_bad_options():
    with pytest.raises(ValueError):
        EditOptions(strength=1.5)
    with pytest.raises(ValueError):
        EditOptions(max_faces=0)


# --- every face in a group photo ----------------------------------------------------------------


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def group():
    from eyeedit.data.samples import astronaut_head, group_photo

    widths = [300, 300, 200, 200, 200, 140, 140, 140, 140, 116, 116]  # eyes 55, 37, 26, 21 px apart
    return group_photo([astronaut_head(), astronaut_head()[:, ::-1]], widths, size=(1280, 720))


def test_every_face_in_a_group_is_edited_in_one_batch_as_if_alone(group):
    image, boxes = group
    batches = []

    def counting(crops):
        batches.append(len(crops))
        return tint(crops)

    editor = make_editor(counting)
    res = editor.run(image)
    assert res.found == len(boxes) and len(res.faces) == len(boxes) and res.skipped == []
    assert batches == [len(boxes)]
    assert [fe.index for fe in res.faces] == list(range(len(boxes)))
    for x0, y0, x1, y1 in boxes:
        tile = np.ascontiguousarray(image[y0:y1, x0:x1])
        alone = editor.run(tile)
        assert len(alone.faces) == 1
        edited = res.image[y0:y1, x0:x1]
        assert np.abs(edited.astype(int) - tile).max() > 8  # the edit is there
        assert psnr(edited, alone.image) >= 30, (x0, y0, psnr(edited, alone.image))
    # between the tiles nothing changed
    outside = np.ones(image.shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        outside[y0:y1, x0:x1] = False
    assert np.array_equal(res.image[outside], image[outside])


def test_a_face_cut_by_the_frame_edge_is_edited_as_in_the_whole_photo(astronaut):
    editor = make_editor(tint, region="glasses")
    whole = editor.edit(astronaut)
    cut = np.ascontiguousarray(astronaut[:, 200:])  # through the face, left of its left eye
    res = editor.run(cut)
    assert len(res.faces) == 1
    assert psnr(res.image[60:200], whole[60:200, 200:]) >= 30


def test_a_face_too_small_is_skipped_with_its_reason(group):
    from eyeedit.data.samples import astronaut_head
    from eyeedit.landmarks import FaceMeshDetector

    image = np.full((400, 600, 3), 200, np.uint8)
    image[20:320, 20:320] = cv2.resize(astronaut_head(), (300, 300), interpolation=cv2.INTER_AREA)
    image[200:280, 400:480] = cv2.resize(astronaut_head(), (80, 80), interpolation=cv2.INTER_AREA)  # eyes ~15 px
    finer = FaceMeshDetector(min_eye_distance=8)  # looks for smaller faces than the editor edits
    res = Editor(tint, region_spec("eyes"), EditOptions(), detector=finer).run(image)
    assert res.found == 2 and [fe.index for fe in res.faces] == [0]
    (small,) = res.skipped
    assert small.index == 1 and small.reason.startswith("face too small (eyes 1")
    assert small.describe().startswith("face 1: face too small") and small.describe().endswith(", skipped")
    assert np.array_equal(res.image[190:290, 390:490], image[190:290, 390:490])


def test_unreliable_landmarks_are_reported_and_never_blended(astronaut, monkeypatch):
    from eyeedit import landmarks

    real = landmarks._Graphs.landmarks

    def rotated(self, crop, roi):  # the mesh turned 30 degrees about one eye
        face = real(self, crop, roi)
        pivot, a = face.eye_centers[0], np.radians(30)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        return landmarks.Face(((face.points - pivot) @ rot.T + pivot).astype(np.float32), face.z)

    monkeypatch.setattr(landmarks._Graphs, "landmarks", rotated)
    res = make_editor(tint).run(astronaut)
    assert res.found == 1 and res.faces == [] and np.array_equal(res.image, astronaut)
    (bad,) = res.skipped
    assert bad.describe().startswith("face 0: landmarks not reliable (")


def test_a_turned_head_is_skipped(astronaut):
    from eyeedit.data.samples import turned

    res = make_editor(tint, max_yaw=10).run(turned(astronaut, 0.2))
    (skip,) = res.skipped
    assert res.faces == [] and skip.reason.startswith("head turned -1")


def test_max_faces_edits_the_largest_and_names_the_rest(group):
    image, boxes = group
    res = make_editor(tint, max_faces=2).run(image)
    big = boxes[:2]  # the two 300-px tiles
    assert len(res.faces) == 2
    for fe, (x0, y0, x1, y1) in zip(res.faces, big):
        assert x0 < fe.face.center[0] < x1 and y0 < fe.face.center[1] < y1
    assert len(res.skipped) == len(boxes) - 2
    assert all(s.reason == "beyond the 2 largest faces" for s in res.skipped)


def test_real_faces_in_a_group_are_edited_as_if_alone():
    """Twelve London faces at four sizes (eyes 51-85, 36-60, 26-43 and 22-38 px apart) in one picture."""
    from conftest import shared_faces

    from eyeedit.data.samples import group_photo
    from eyeedit.imageio import read_image

    folder = shared_faces("london/neutral")
    tiles = [read_image(p) for p in sorted(folder.glob("*.jpg"))[:12]]
    widths = [340] * 3 + [240] * 3 + [170] * 3 + [150] * 3
    image, boxes = group_photo(tiles, widths, size=(1280, 900))
    editor = make_editor(tint, region="glasses")
    res = editor.run(image)
    assert res.skipped == [] and len(res.faces) == len(boxes) == 12
    for x0, y0, x1, y1 in boxes:
        alone = editor.run(np.ascontiguousarray(image[y0:y1, x0:x1]))
        assert len(alone.faces) == 1
        assert psnr(res.image[y0:y1, x0:x1], alone.image) >= 30, (x0, y0)
