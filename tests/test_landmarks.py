import numpy as np
import pytest

from eyeedit.data.samples import sample_images
from eyeedit.landmarks import NUM_LANDMARKS, Face, FaceMeshDetector, detect_faces


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
