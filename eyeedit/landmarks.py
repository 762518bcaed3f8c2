"""Face landmarks: a thin wrapper over MediaPipe Face Mesh (478 points with iris refinement).

This is the only module that imports mediapipe, and it does so lazily, so that the index tables
and the :class:`Face` type can be used (by geometry, effects and tests) without loading it.

Convention
----------
* Landmarks are float32 pixel coordinates ``(x, y)`` of the input image; ``x`` grows to the right,
  ``y`` downwards, and pixel centres sit on integer coordinates.
* "Right" and "left" are the subject's, as in MediaPipe: the subject's right eye (landmarks 33 and
  133 at its corners) appears on the *image's* left in a non-mirrored photo.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

NUM_LANDMARKS = 478

# Eye corners in the order the alignment template uses: subject's right eye outer, inner, then
# subject's left eye inner, outer (image left to right on a frontal face).
EYE_CORNERS = (33, 133, 362, 263)

# Closed contours (eyelid margins), starting at the outer corner, upper lid first.
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (133, 155, 154, 153, 145, 144, 163, 7, 33)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
RIGHT_EYE = RIGHT_EYE_UPPER + RIGHT_EYE_LOWER[1:-1]
LEFT_EYE = LEFT_EYE_UPPER + LEFT_EYE_LOWER[1:-1]

# Eyebrows as closed outlines: upper edge from outside in, then lower edge back out.
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)

# Iris (refine_landmarks=True): centre followed by four points on the iris rim.
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)

NOSE_BRIDGE = (168, 6)
NOSE_TIP = 1
TEMPLES = (127, 356)  # subject's right, left: where glasses arms run toward the ears
FACE_SIDES = (234, 454)  # cheek outline at eye height, subject's right then left
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


@dataclass(frozen=True)
class Face:
    """One detected face.

    ``points`` is (478, 2) float32 pixel (x, y); ``z`` is (478,) float32 relative depth in the same
    pixel units (smaller is closer to the camera); ``bbox`` is (x0, y0, x1, y1) of the landmarks.
    """

    points: np.ndarray
    z: np.ndarray

    def __post_init__(self) -> None:
        if self.points.shape != (NUM_LANDMARKS, 2):
            raise ValueError(f"expected ({NUM_LANDMARKS}, 2) landmarks, got {self.points.shape}")

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        x0, y0 = self.points.min(axis=0)
        x1, y1 = self.points.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return (x1 - x0) * (y1 - y0)

    @property
    def center(self) -> np.ndarray:
        """(2,) centre of the bounding box."""
        x0, y0, x1, y1 = self.bbox
        return np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32)

    @property
    def eye_corners(self) -> np.ndarray:
        """(4, 2) corners in :data:`EYE_CORNERS` order."""
        return self.points[list(EYE_CORNERS)]

    @property
    def eye_centers(self) -> np.ndarray:
        """(2, 2): subject's right eye then left eye; each the midpoint of its two corners."""
        c = self.eye_corners
        return np.stack([(c[0] + c[1]) / 2, (c[2] + c[3]) / 2])

    @property
    def eye_distance(self) -> float:
        """Distance between the two eye centres in pixels (the face's scale unit)."""
        a, b = self.eye_centers
        return float(np.hypot(*(b - a)))

    @property
    def iris_centers(self) -> np.ndarray:
        """(2, 2): subject's right iris centre, then left."""
        return self.points[[RIGHT_IRIS[0], LEFT_IRIS[0]]]

    @property
    def iris_radii(self) -> np.ndarray:
        """(2,): mean distance from each iris centre to its four rim points."""
        radii = []
        for idx in (RIGHT_IRIS, LEFT_IRIS):
            pts = self.points[list(idx)]
            radii.append(np.linalg.norm(pts[1:] - pts[0], axis=1).mean())
        return np.asarray(radii, np.float32)

    @property
    def roll(self) -> float:
        """In-plane rotation in degrees (positive: the image-right eye sits lower)."""
        a, b = self.eye_centers
        return float(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))

    @property
    def yaw(self) -> float:
        """Approximate head yaw in degrees from the nose tip's offset between the cheeks.

        0 is frontal; the sign follows image x (positive: the nose points to the image right).
        """
        right, left = self.points[list(FACE_SIDES)]
        axis = left - right
        half_width = max(float(np.hypot(*axis)) / 2, 1e-6)
        offset = float(np.dot(self.points[NOSE_TIP] - (left + right) / 2, axis / (2 * half_width)))
        return float(np.degrees(np.arcsin(np.clip(offset / half_width, -1, 1))))

    def eye_openness(self) -> np.ndarray:
        """(2,): lid opening height over eye width per eye (about 0.25-0.35 open, < 0.1 closed)."""
        out = []
        for upper, lower in ((RIGHT_EYE_UPPER, RIGHT_EYE_LOWER), (LEFT_EYE_UPPER, LEFT_EYE_LOWER)):
            top, bottom = self.points[upper[4]], self.points[lower[4]]
            width = np.hypot(*(self.points[upper[-1]] - self.points[upper[0]]))
            out.append(np.hypot(*(bottom - top)) / max(width, 1e-6))
        return np.asarray(out, np.float32)

    def transformed(self, matrix: np.ndarray) -> Face:
        """This face with its points mapped by a 2x3 affine (z scaled by the affine's scale)."""
        pts = self.points @ matrix[:, :2].T + matrix[:, 2]
        scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
        return Face(pts.astype(np.float32), (self.z * scale).astype(np.float32))


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C++ log lines MediaPipe/TFLite write straight to file descriptor 2."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr (e.g. some embedded hosts): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# The Face Mesh solution module, by name, for worker pools to preload; importing it is this
# module's job alone.
MEDIAPIPE_MODULE = "mediapipe.python.solutions.face_mesh"


def silence_native_logs() -> None:
    """Send file descriptor 2 to /dev/null for the rest of the process, keeping Python's stderr.

    MediaPipe's C++ threads log straight to descriptor 2, sometimes well after the call that
    caused it, so a temporary redirect cannot catch every line. The CLI calls this once at
    start-up: Python-level output (rich, click, warnings) moves to a duplicate of the original
    stderr and only native writes are dropped. Library users keep their stderr untouched.
    """
    if getattr(silence_native_logs, "done", False):
        return
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    sys.stderr.flush()
    sys.stderr = os.fdopen(saved, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                           errors="backslashreplace")
    os.dup2(devnull, 2)
    os.close(devnull)
    silence_native_logs.done = True  # type: ignore[attr-defined]


def _import_face_mesh():  # noqa: ANN202 - returns the mediapipe module
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    with warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")
        import importlib

        face_mesh = importlib.import_module(MEDIAPIPE_MODULE)
    return face_mesh


class FaceMeshDetector:
    """Face Mesh with iris refinement, for still images (``video=False``) or video (tracking).

    The MediaPipe graph is built once per detector (building it takes ~100 ms) and reused.
    In video mode, frames must come in order; landmarks are tracked between frames.
    Not thread-safe: give each thread or process its own detector.
    """

    def __init__(self, max_faces: int = 4, video: bool = False, min_confidence: float = 0.5):
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        self.max_faces = max_faces
        self.video = video
        face_mesh = _import_face_mesh()
        with _quiet_stderr():
            self._mesh = face_mesh.FaceMesh(
                static_image_mode=not video,
                max_num_faces=max_faces,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )
        self._first = True

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an (H, W, 3) uint8 RGB image, sorted left to right by bounding-box centre."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        rgb = np.ascontiguousarray(image)
        if self._first:  # the first call initialises TFLite delegates and logs about it
            with _quiet_stderr():
                result = self._mesh.process(rgb)
            self._first = False
        else:
            result = self._mesh.process(rgb)
        faces = []
        for lms in result.multi_face_landmarks or []:
            arr = np.array([(p.x, p.y, p.z) for p in lms.landmark], np.float32)  # (478, 3)
            # MediaPipe reports x and z relative to the image width, y relative to the height.
            pts = arr[:, :2] * np.array([w, h], np.float32)
            faces.append(Face(pts, arr[:, 2] * w))
        return sorted(faces, key=lambda f: float(f.center[0]))

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceMeshDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: dict[tuple[int, int], FaceMeshDetector] = {}
_shared_lock = threading.Lock()


def detect_faces(image: np.ndarray, max_faces: int = 4) -> list[Face]:
    """Detect faces in a still image with a per-process shared detector (built on first use)."""
    key = (max_faces, threading.get_ident())
    with _shared_lock:
        det = _shared.get(key)
        if det is None:
            det = _shared[key] = FaceMeshDetector(max_faces=max_faces, video=False)
    return det.detect(image)


def largest_face(faces: list[Face]) -> Face | None:
    return max(faces, key=lambda f: f.area) if faces else None
