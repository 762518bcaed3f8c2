import cv2
import numpy as np
import pytest

from eyeedit.data.samples import sample_images
from eyeedit.landmarks import EYE_CORNERS, NUM_LANDMARKS, Face, FaceMeshDetector, detect_faces


def test_face_fields(astronaut_face, astronaut):
    f = astronaut_face
    assert f.points.shape == (NUM_LANDMARKS, 2) and f.points.dtype == np.float32
    assert f.z.shape == (NUM_LANDMARKS,)
    x0, y0, x1, y1 = f.bbox
    h, w = astronaut.shape[:2]
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    # the subject's right eye appears on the image's left
    assert f.eye_centers[0, 0] < f.eye_centers[1, 0]
    assert 30 < f.eye_distance < 60
    # iris centres lie inside their eyes' corner span, radii are plausible (~1/5 eye width)
    c = f.eye_corners
    assert c[0, 0] < f.iris_centers[0, 0] < c[1, 0]
    assert c[2, 0] < f.iris_centers[1, 0] < c[3, 0]
    assert np.all((f.iris_radii > 1.5) & (f.iris_radii < 8))
    assert abs(f.roll) < 10 and abs(f.yaw) < 20
    assert np.all(f.eye_openness() > 0.15)


def test_no_face_and_two_faces_sorted_left_to_right():
    imgs = sample_images()
    assert detect_faces(imgs["no-face"]) == []
    two = detect_faces(imgs["two-faces"])
    assert len(two) == 2
    assert two[0].center[0] < two[1].center[0]
    assert len(detect_faces(imgs["two-faces"], max_faces=1)) == 1


def test_roll_follows_rotation():
    imgs = sample_images()
    (straight,) = detect_faces(imgs["astronaut"])
    (rotated,) = detect_faces(imgs["astronaut-rot30"])
    # rotating the photo 30 deg counter-clockwise lowers the image-left eye: roll drops by ~30
    assert straight.roll - rotated.roll == pytest.approx(30, abs=3)


def test_video_mode_tracks_frames(astronaut):
    with FaceMeshDetector(max_faces=1, video=True) as det:
        results = [det.detect(astronaut) for _ in range(3)]
    assert all(len(r) == 1 for r in results)
    assert np.abs(results[2][0].eye_corners - results[0][0].eye_corners).max() < 1.5


def test_bad_inputs_raise(astronaut):
    with pytest.raises(ValueError):
        detect_faces(astronaut[:, :, 0])
    with pytest.raises(ValueError):
        detect_faces(astronaut.astype(np.float32))
    with pytest.raises(ValueError):
        Face(np.zeros((10, 2), np.float32), np.zeros(10, np.float32))
    with pytest.raises(ValueError):
        FaceMeshDetector(max_faces=0)


def test_transformed_maps_points(astronaut_face):
    m = np.array([[2.0, 0, 5], [0, 2.0, -3]])
    moved = astronaut_face.transformed(m)
    assert np.allclose(moved.points, astronaut_face.points * 2 + [5, -3], atol=1e-3)
    assert moved.eye_distance == pytest.approx(2 * astronaut_face.eye_distance, rel=1e-4)


# --- group photos: detector first, then the mesh on each face ---------------------------------

WIDTHS = [300, 300, 300, 200, 200, 200, 200, 140, 140, 140, 140, 140, 140]  # eyes 55, 37, 26 px apart


def _tile_points(face, box):
    """The astronaut's landmarks (``face``, on the full sample photo) placed in a group tile."""
    x0, y0, x1, _ = box
    s = (x1 - x0) / 230  # astronaut_head() is 230 px wide, cut at (110, 20)
    return (face.points - [110, 20]) * s + [x0, y0]


@pytest.fixture(scope="module")
def group():
    from eyeedit.data.samples import astronaut_head, group_photo

    return group_photo([astronaut_head()], WIDTHS, size=(1280, 720))


def test_every_face_in_a_group_photo_is_found_and_meshed_as_if_alone(group, astronaut_face):
    image, boxes = group
    assert len(boxes) == len(WIDTHS)
    faces = detect_faces(image)
    assert len(faces) == len(boxes)
    for box in boxes:  # each tile's face, with the landmarks the sample photo gives it alone
        truth = _tile_points(astronaut_face, box)
        unit = np.hypot(*(truth[263] - truth[33]))
        (face,) = [f for f in faces if box[0] <= f.center[0] < box[2] and box[1] <= f.center[1] < box[3]]
        err = np.linalg.norm(face.eye_corners - truth[list(EYE_CORNERS)], axis=1).max() / unit
        assert err < 0.05, (box, err)


def test_max_faces_keeps_the_largest(group):
    image, _ = group
    largest3 = detect_faces(image, max_faces=3)
    assert len(largest3) == 3 and all(f.eye_distance > 45 for f in largest3)
    assert [f.center[0] for f in largest3] == sorted(f.center[0] for f in largest3)


@pytest.mark.parametrize("side", ["left", "top", "right", "bottom"])
def test_faces_cut_by_the_frame_edge_are_found(astronaut_face, side):
    from eyeedit.data.samples import astronaut

    # the astronaut's face box is (179, 71)-(271, 178): cut through the far cheek or the forehead
    cuts = {"left": (slice(None), slice(195, None)), "right": (slice(None), slice(None, 255)),
            "top": (slice(95, None), slice(None)), "bottom": (slice(None, 160), slice(None))}
    rows, cols = cuts[side]
    image = np.ascontiguousarray(astronaut()[rows, cols])
    (face,) = detect_faces(image)
    offset = np.array([cols.start or 0, rows.start or 0])
    truth = astronaut_face.eye_corners - offset
    assert np.abs(face.eye_corners - truth).max() < 0.1 * astronaut_face.eye_distance


def test_two_overlapping_faces_are_both_found():
    from eyeedit.data.samples import astronaut_head

    head = cv2.resize(astronaut_head(), (200, 200), interpolation=cv2.INTER_AREA)
    image = np.full((260, 400, 3), 200, np.uint8)
    image[30:230, 10:210] = head
    image[50:250, 150:350] = head[:, ::-1]  # in front, covering the first one's far shoulder and hair
    faces = detect_faces(image)
    assert len(faces) == 2
    assert faces[0].center[0] < 160 < faces[1].center[0]


def test_a_wrong_mesh_is_reported_not_returned(astronaut, monkeypatch):
    from eyeedit import landmarks

    det = FaceMeshDetector()
    real = landmarks._Graphs.landmarks

    def shifted(self, crop, roi):
        face = real(self, crop, roi)
        if face is None:
            return None
        return Face(face.points + [0, 0.5 * face.eye_distance], face.z)  # half an eye distance down

    monkeypatch.setattr(landmarks._Graphs, "landmarks", shifted)
    (found,) = det.find(astronaut)
    assert found.mesh is not None and found.face is None
    assert "eyes" in found.problem and "from the detector's" in found.problem
    assert det.detect(astronaut) == []


def test_two_threads_find_the_same_faces_as_one(group):
    image, _ = group
    with FaceMeshDetector(threads=1) as one, FaceMeshDetector(threads=2) as two:
        a, b = one.find(image), two.find(image)
        assert two._pool is not None  # the second thread really ran
    assert len(a) == len(b) == len(group[1])
    for fa, fb in zip(a, b):
        assert np.array_equal(fa.detection.box, fb.detection.box) and fa.problem == fb.problem
        assert np.allclose(fa.mesh.points, fb.mesh.points, atol=1e-3)


def test_detector_threads_setting(monkeypatch):
    from eyeedit import landmarks

    monkeypatch.setattr(landmarks, "_threads", None)
    assert 1 <= landmarks.detector_threads() <= 2
    landmarks.set_detector_threads(1)
    assert landmarks.detector_threads() == 1 and FaceMeshDetector().threads == 1
    with pytest.raises(ValueError, match="threads must be >= 1"):
        landmarks.set_detector_threads(0)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        FaceMeshDetector(threads=0)


def test_graph_runs_give_their_non_empty_outputs_by_stream_name():
    from types import SimpleNamespace

    from eyeedit.landmarks import _process

    class Solution:
        def process(self, inputs):
            return SimpleNamespace(detections=[inputs["image"]], empty=None)

    assert _process(Solution(), {"image": 7}) == {"detections": [7]}


def test_video_looks_for_new_faces_in_the_background():
    import time

    two = sample_images()["two-faces"]
    left_only = two.copy()
    left_only[:, two.shape[1] // 2:] = 0  # the right-hand face not there yet
    with FaceMeshDetector(video=True, redetect_every=3) as det:
        assert len(det.detect(left_only)) == 1
        counts, pending_seen = [], False
        for _ in range(60):
            counts.append(len(det.detect(two)))
            pending_seen |= det._rescan is not None and not det._rescan.done()
            if counts[-1] == 2:
                break
            time.sleep(0.02)
    # the periodic search ran in the background: frames kept coming with the followed face
    # while it ran, and the new face joined once it ended
    assert counts[0] == 1 and counts[-1] == 2 and pending_seen
