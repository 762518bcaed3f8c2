"""Scanning windows, merging detections, the mesh's region and the plausibility check (pure)."""

import math

import numpy as np
import pytest

from eyeedit.detection import (
    DETECTOR_INPUT,
    EYE_AT_INPUT,
    Detection,
    Roi,
    Window,
    crop_roi,
    is_cut,
    merge_detections,
    mesh_problem,
    roi_from_detection,
    roi_from_points,
    scan_windows,
    window_side,
)


def detection(cx=100.0, cy=100.0, eye=40.0, roll=0.0, score=0.9) -> Detection:
    """A frontal face's detection: eyes ``eye`` apart, nose below their midpoint, box 2.5 eyes."""
    a = math.radians(roll)
    along, down = np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])
    c = np.array([cx, cy])
    kps = [c - along * eye / 2, c + along * eye / 2, c + down * eye * 0.6, c + down * eye * 1.1,
           c - along * eye * 1.2, c + along * eye * 1.2]
    half = 1.25 * eye
    box = np.array([cx - half, cy - 0.8 * eye, cx + half, cy - 0.8 * eye + 2 * half], np.float32)
    return Detection(box, np.array(kps, np.float32), score)


def test_small_photos_are_one_pass_larger_ones_are_covered_by_half_overlapping_windows():
    assert scan_windows(320, 240) == []  # the short-range pass sees eyes 20 px apart there
    assert len(scan_windows(640, 480)) == 1 and scan_windows(640, 480)[0].whole
    assert scan_windows(640, 480, min_eye=40) == []
    windows = scan_windows(1920, 1080)
    whole, tiles = windows[0], windows[1:]
    side = window_side(20)
    assert side == round(DETECTOR_INPUT * 20 / EYE_AT_INPUT)
    assert all(w.x1 - w.x0 == side and w.y1 - w.y0 == side for w in tiles)
    # together they cover the padded photo, and any box up to half a window lies whole in one
    assert min(w.x0 for w in tiles) == whole.x0 and max(w.x1 for w in tiles) == whole.x1
    assert min(w.y0 for w in tiles) == whole.y0 and max(w.y1 for w in tiles) == whole.y1
    rng = np.random.default_rng(0)
    for _ in range(200):
        x, y = rng.uniform(0, 1920 - side / 2), rng.uniform(0, 1080 - side / 2)
        assert any(w.x0 <= x and x + side / 2 <= w.x1 and w.y0 <= y and y + side / 2 <= w.y1 for w in tiles)
    # a larger smallest face means larger windows, fewer of them
    assert len(scan_windows(1920, 1080, min_eye=40)) < len(windows)
    assert len(scan_windows(1920, 1080, min_eye=80)) == 1 and scan_windows(1920, 1080, min_eye=120) == []


def test_detections_cut_by_an_inner_window_edge_are_dropped():
    bounds = Window(-64, -64, 1984, 1344, whole=True)
    win = Window(576, -64, 1216, 576)
    inside, straddling = detection(800, 200, eye=30), detection(590, 200, eye=30)
    assert not is_cut(inside, win, bounds) and is_cut(straddling, win, bounds)
    # the photo's own edge is not a window edge: a face there is kept
    top = Window(-64, -64, 576, 576)
    assert not is_cut(detection(80, 10, eye=30), top, bounds)
    assert not is_cut(straddling, bounds, bounds)


def test_merge_keeps_the_best_of_overlapping_boxes_and_every_separate_face():
    a, a2 = detection(100, 100, score=0.9), detection(104, 102, score=0.7)
    b = detection(300, 100, score=0.6)
    merged = merge_detections([a2, b, a])
    assert merged == [a, b]


def test_mapped_detection_moves_boxes_keypoints_and_pixel_size():
    d = detection(50, 60, eye=10)
    m = d.mapped(0.5, (100.0, 200.0))
    assert np.allclose(m.keypoints, d.keypoints * 2 + [100, 200])
    assert m.eye_distance == pytest.approx(20) and m.pixel == pytest.approx(2.0)


@pytest.mark.parametrize("size", [180.0, 700.0])  # enlarged, and shrunk on the fixed grid
@pytest.mark.parametrize("roll", [0.0, 25.0, -40.0])
def test_roi_crop_maps_back_to_photo_pixels(roll, size):
    ys, xs = np.mgrid[0:900, 0:1000].astype(np.float64)
    ramp = np.dstack([0.15 * xs + 0.1 * ys] * 3).astype(np.uint8)  # smooth: resampling is exact enough
    roi = Roi(np.array([480.3, 420.7], np.float32), size, roll)
    crop = crop_roi(ramp, roi)
    n = crop.image.shape[0]
    assert crop.image.shape == (n, n, 3) and n >= 192
    for cx, cy in [(40, 50), (100, 120), (150, 30), (n - 5, n - 5)]:
        px, py = np.array([cx, cy]) / crop.scale + crop.origin
        assert abs(float(crop.image[cy, cx, 0]) - (0.15 * px + 0.1 * py)) < 1.5


def test_roi_crop_past_the_frame_edge_is_black():
    image = np.full((100, 100, 3), 200, np.uint8)
    crop = crop_roi(image, Roi(np.array([5.0, 50.0], np.float32), 80.0, 0.0))
    assert crop.image[:, :40].max() == 0 and crop.image[:, -40:].min() == 200


def test_roi_from_points_is_the_upright_box_grown():
    pts = np.array([[0, 0], [100, 0], [100, 50], [0, 50]], np.float64)
    roi = roi_from_points(pts, 0.0)
    assert np.allclose(roi.center, [50, 25]) and roi.size == pytest.approx(150)
    rot = np.array([[math.cos(0.5), -math.sin(0.5)], [math.sin(0.5), math.cos(0.5)]])
    turned = roi_from_points(pts @ rot.T, math.degrees(0.5))
    assert turned.size == pytest.approx(150) and np.allclose(turned.center, rot @ [50, 25], atol=1e-4)
    assert roi_from_detection(detection(eye=40)).size == pytest.approx(150)


def _mesh_of(det: Detection):
    """The eye centres and nose tip a correct mesh would report for ``det``."""
    return det.keypoints[:2].copy(), det.keypoints[2].copy()


def test_a_mesh_that_agrees_with_its_detection_passes():
    det = detection(eye=40, roll=10)
    eyes, nose = _mesh_of(det)
    rng = np.random.default_rng(0)
    assert mesh_problem(eyes + rng.normal(0, 2, eyes.shape), nose + rng.normal(0, 3, 2), det) == ""


@pytest.mark.parametrize("wrong", ["shifted", "turned", "turned about an eye", "shrunk", "other face"])
def test_a_wrong_mesh_is_rejected(wrong):
    det = detection(eye=40)
    eyes, nose = _mesh_of(det)
    pts = np.vstack([eyes, nose])
    if wrong == "shifted":
        pts = pts + [0, 16]  # 0.4 eye distances down
    elif wrong in ("turned", "turned about an eye"):
        pivot = pts[0] if wrong == "turned about an eye" else pts[:2].mean(0)
        a = math.radians(30)
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        pts = (pts - pivot) @ rot.T + pivot
    elif wrong == "shrunk":
        pts = (pts - pts.mean(0)) * 0.5 + pts.mean(0)
    else:
        pts = pts + [110, 0]
    assert mesh_problem(pts[:2], pts[2], det) != ""


def test_a_mesh_far_too_small_or_large_for_the_detection_box_is_rejected():
    det = detection(eye=40)  # box 2.5 eye distances wide: the mesh's eyes fill 0.4 of it
    eyes, nose = _mesh_of(det)
    assert mesh_problem(eyes, nose, det) == ""
    for factor in (0.5, 2.0):  # the same keypoints in a box twice too small or too large
        c = det.center
        box = ((det.box.reshape(2, 2) - c) * factor + c).reshape(4).astype(np.float32)
        wrong = Detection(box, det.keypoints, det.score)
        assert "of the detector's box" in mesh_problem(eyes, nose, wrong)
