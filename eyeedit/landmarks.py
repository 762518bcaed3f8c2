"""Face landmarks: MediaPipe's full-range face detector, then Face Mesh's landmark model on each
face (478 points with iris refinement).

Two stages, because Face Mesh's own detector is short-range: it sees the whole photo at 128x128
and misses small faces. Here the short-range detector looks at the whole photo and the
full-range one at the whole photo and overlapping windows; :mod:`eyeedit.detection` plans where
they look, merges their boxes, cuts each face's region for the mesh and checks each mesh against
its detection.

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
import importlib
import itertools
import math
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import cv2
import numpy as np

from eyeedit.detection import (
    DETECTOR_INPUT,
    MESH_INPUT,
    MIN_EYE_DISTANCE,
    SHORT_INPUT,
    Detection,
    Roi,
    RoiCrop,
    Window,
    crop_roi,
    cut,
    is_cut,
    merge_detections,
    mesh_problem,
    roi_from_detection,
    roi_from_points,
    scan_scale,
    scan_windows,
)

NUM_LANDMARKS = 478

R = TypeVar("R")

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
MOUTH_CENTER = 13  # inner upper lip, on the midline
TEMPLES = (127, 356)  # subject's right, left: where glasses arms run toward the ears
FACE_SIDES = (234, 454)  # cheek outline at eye height, subject's right then left


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


_stderr_lock = threading.RLock()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C++ log lines MediaPipe/TFLite write straight to file descriptor 2.

    Descriptor 2 is the process's: one thread at a time swaps it, or a second thread would save
    the first one's /dev/null as "the original" and leave stderr silenced for good.
    """
    with _stderr_lock:
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


# The MediaPipe module the detector imports first, by name, for worker pools to preload;
# importing MediaPipe is this module's job alone.
MEDIAPIPE_MODULE = "mediapipe.python.solutions.face_detection"


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


# Face Mesh's landmark model on its own (with attention: refined lids and irises, 478 points),
# given a region to look at instead of running Face Mesh's short-range detector on the photo.
_MESH_GRAPH = """
input_stream: "image"
input_stream: "roi"
input_side_packet: "with_attention"
output_stream: "face_landmarks"
node {
  calculator: "FaceLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "WITH_ATTENTION:with_attention"
  output_stream: "LANDMARKS:face_landmarks"
}
"""


def _import_mediapipe() -> tuple[Any, Any, Any]:
    """(the face detection solution, SolutionBase, NormalizedRect), imported quietly."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")
        face_detection = importlib.import_module(MEDIAPIPE_MODULE)
        base = importlib.import_module("mediapipe.python.solution_base")
        rect = importlib.import_module("mediapipe.framework.formats.rect_pb2")
    return face_detection, base.SolutionBase, rect.NormalizedRect


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")


# Runs ``fn(graphs, item)`` for every item, each call on some thread's own graphs; results in order.
Mapper = Callable[[Callable[["_Graphs", Any], Any], Sequence[Any]], list[Any]]

_threads: int | None = None


def set_detector_threads(n: int | None) -> None:
    """How many threads each detector built from now on runs MediaPipe's graphs on (None: up to
    two of this process's cores). Worker processes that already share the cores set 1."""
    global _threads
    if n is not None and n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    _threads = n


def detector_threads() -> int:
    """The threads a new detector uses: as set, else 2 where this process may use 2 cores.
    More did not pay: a photo's passes and meshes are a few milliseconds each."""
    if _threads is not None:
        return _threads
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def _serial(graphs: _Graphs) -> Mapper:
    return lambda fn, items: [fn(graphs, item) for item in items]


class _Graphs:
    """The MediaPipe graphs: the full- and short-range face detectors and the landmark model."""

    def __init__(self, min_confidence: float):
        face_detection, solution, self._rect = _import_mediapipe()
        with _quiet_stderr():
            self._detector = face_detection.FaceDetection(min_detection_confidence=min_confidence,
                                                          model_selection=1)
            self._short = face_detection.FaceDetection(min_detection_confidence=min_confidence,
                                                       model_selection=0)
            self._mesh = solution(graph_config=_MESH_GRAPH, side_inputs={"with_attention": True})
        self._quiet = {"detector", "short", "mesh"}  # each graph's first run logs its TFLite set-up

    def warmed(self) -> _Graphs:
        """These graphs after a first run of each on a blank image, here and quietly: their
        set-up logs are then written before any other thread could be swapping stderr."""
        blank = np.zeros((MESH_INPUT, MESH_INPUT, 3), np.uint8)
        self._run("detector", self._detector, blank)
        self._run("short", self._short, blank)
        rect = self._rect(x_center=0.5, y_center=0.5, width=1.0, height=1.0, rotation=0.0)
        self._run("mesh", self._mesh, {"image": blank, "roi": rect})
        return self

    def _run(self, name: str, graph: Any, inputs: Any) -> dict[str, Any]:
        if name not in self._quiet:
            return _process(graph, inputs)
        with _quiet_stderr():
            self._quiet.discard(name)
            return _process(graph, inputs)

    def detect(self, image: np.ndarray, short: bool = False) -> list[Detection]:
        """Faces the full-range (or ``short``-range) detector sees in an image, in its pixels."""
        h, w = image.shape[:2]
        pixel = max(h, w) / (SHORT_INPUT if short else DETECTOR_INPUT)
        # MediaPipe shrinks bilinearly, which the model is used to: on packed group pictures it
        # found as many faces as shrinking by area first (which costs ~2 ms on 640x480). Much
        # larger images would alias, so those are first brought to twice the input by area.
        if pixel > 8:
            f = 2 / pixel
            image = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        name, graph = ("short", self._short) if short else ("detector", self._detector)
        result = self._run(name, graph, np.ascontiguousarray(image))
        return [_detection(d, w, h, pixel) for d in result.get("detections") or []]

    def scan(self, image: np.ndarray, min_eye: float, mapper: Mapper | None = None) -> list[Detection]:
        """Every face in a photo (photo pixels) down to eyes ``min_eye`` apart (scan pixels: the
        photo's own unless it is longer than MAX_SCAN): the short-range pass over the whole
        photo, then the full-range passes it needs, merged. ``mapper`` runs the passes (on
        several threads' graphs); by default one after the other on these graphs."""
        h, w = image.shape[:2]
        s = scan_scale(w, h)
        small = image if s == 1 else cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        windows = scan_windows(small.shape[1], small.shape[0], min_eye)
        # Both whole-photo passes see the photo at under 400 px: shrink it once for both.
        f = min(1.0, 2 * DETECTOR_INPUT / max(small.shape[:2]))
        overview = small if f == 1 else cv2.resize(small, (round(small.shape[1] * f), round(small.shape[0] * f)),
                                                   interpolation=cv2.INTER_AREA)

        def look(graphs: _Graphs, win: Window | None) -> list[Detection]:
            if win is None:  # the short-range pass
                return [d.mapped(f, (0.0, 0.0)) for d in graphs.detect(overview, short=True)]
            src, k = (overview, f) if win.whole else (small, 1.0)
            x0, y0, x1, y1 = (round(v * k) for v in (win.x0, win.y0, win.x1, win.y1))
            dets = (d.mapped(1.0, (x0, y0)).mapped(k, (0.0, 0.0)) for d in graphs.detect(cut(src, x0, y0, x1, y1)))
            return [d for d in dets if not is_cut(d, win, windows[0])]

        passes = (mapper or _serial(self))(look, [None, *windows])
        return [d.mapped(s, (0.0, 0.0)) for d in merge_detections([d for found in passes for d in found])]

    def refine(self, crop: RoiCrop, near: Detection) -> Detection | None:
        """The detector run again on a face's mesh crop, where the face is large: sharp keypoints
        for a face found small. Photo pixels; None if it finds no face near ``near``."""
        dets = [d.mapped(crop.scale, tuple(crop.origin)) for d in self.detect(crop.image)]
        reach = 0.5 * near.eye_distance + 2 * near.pixel
        close = [d for d in dets if np.linalg.norm(d.center - near.center) < reach]
        return max(close, key=lambda d: d.score) if close else None

    def landmarks(self, crop: RoiCrop, roi: Roi) -> Face | None:
        """The mesh inside ``roi``, from its crop, in photo pixels; None when the model sees no face."""
        n = crop.image.shape[1]
        center = (roi.center - crop.origin) * crop.scale / n  # normalised to the crop
        side = roi.size * crop.scale / n
        rect = self._rect(x_center=float(center[0]), y_center=float(center[1]), width=side, height=side,
                          rotation=math.radians(roi.angle))
        result = self._run("mesh", self._mesh, {"image": crop.image, "roi": rect}).get("face_landmarks")
        if result is None:
            return None
        # MediaPipe reports x, y and z relative to the crop's side (z on x's scale).
        arr = np.array([(p.x, p.y, p.z) for p in result.landmark], np.float32) * n  # (478, 3)
        return Face(arr[:, :2] / crop.scale + crop.origin, arr[:, 2] / crop.scale)

    def close(self) -> None:
        self._detector.close()
        self._short.close()
        self._mesh.close()


class SingleStageMesh:
    """Face Mesh's own pipeline, as eyeedit found faces before the two-stage detector: its
    short-range detector on the whole image, then the mesh (still images, iris refinement).
    Finds only faces whose eyes reach its 128x128 input ~7.5 pixels apart (about 37 px in a
    640x480 photo) and checks no mesh. Kept as the benchmark's reference for what finding
    every face costs; not used for editing."""

    def __init__(self, max_faces: int = 1):
        os.environ.setdefault("GLOG_minloglevel", "2")
        with warnings.catch_warnings(), _quiet_stderr():
            warnings.simplefilter("ignore")
            face_mesh = importlib.import_module("mediapipe.python.solutions.face_mesh")
            self._mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=max_faces,
                                            refine_landmarks=True, min_detection_confidence=0.5)
        self._first = True

    def detect(self, image: np.ndarray) -> list[Face]:
        """The faces in an (H, W, 3) uint8 RGB image, in its pixels, left to right."""
        _check_image(image)
        if self._first:
            with _quiet_stderr():
                result = self._mesh.process(image)
            self._first = False
        else:
            result = self._mesh.process(image)
        h, w = image.shape[:2]
        faces = [Face(np.array([(p.x * w, p.y * h) for p in lm.landmark], np.float32),
                      np.array([p.z * w for p in lm.landmark], np.float32))
                 for lm in result.multi_face_landmarks or []]
        return sorted(faces, key=lambda f: float(f.center[0]))

    def close(self) -> None:
        self._mesh.close()


def _process(solution: Any, inputs: Any) -> dict[str, Any]:
    """One run of a MediaPipe solution graph (``inputs`` as its ``process`` takes them: an image,
    or a dict by stream name): its non-empty outputs by stream name."""
    result = solution.process(inputs)
    # one attribute per output stream (named in _fields when the result is a namedtuple)
    names = getattr(result, "_fields", None) or [k for k in vars(result) if not k.startswith("_")]
    return {k: getattr(result, k) for k in names if getattr(result, k) is not None}


def _detection(d: Any, w: int, h: int, pixel: float) -> Detection:
    """A MediaPipe detection (coordinates relative to its input) in pixels of a w x h image of
    which the detector saw one pixel per ``pixel``."""
    loc = d.location_data
    bb = loc.relative_bounding_box
    box = np.array([bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h], np.float32)
    keypoints = np.array([(k.x * w, k.y * h) for k in loc.relative_keypoints], np.float32)  # (6, 2)
    return Detection(box, keypoints, float(d.score[0]), pixel)


@dataclass(frozen=True)
class FoundFace:
    """One detection and its mesh: ``mesh`` is None when the landmark model saw no face;
    ``problem`` says why a mesh is not to be trusted ("" when it is)."""

    detection: Detection
    mesh: Face | None
    problem: str = ""

    @property
    def face(self) -> Face | None:
        """The mesh if it is reliable, else None."""
        return self.mesh if not self.problem else None


def anchor_of(face: Face) -> Detection:
    """A mesh seen as a detection (its box, eye centres, nose tip, mouth and cheek sides), to
    check the next video frame's mesh of the same face against."""
    kps = np.concatenate([face.eye_centers, face.points[[NOSE_TIP, MOUTH_CENTER]], face.points[list(FACE_SIDES)]])
    return Detection(np.asarray(face.bbox, np.float32), kps.astype(np.float32), 1.0)


def largest(faces: list[Face], max_faces: int | None) -> list[Face]:
    """The ``max_faces`` largest faces (all when None), sorted left to right."""
    if max_faces is not None:
        faces = sorted(faces, key=lambda f: -f.area)[:max_faces]
    return sorted(faces, key=lambda f: float(f.center[0]))


class FaceMeshDetector:
    """Two-stage landmarks: the full-range face detector finds every face (windowed, so small
    faces survive), then Face Mesh's landmark model runs on each face's own region.

    Still images (``video=False``): every call detects afresh. Video (``video=True``): frames
    must come in order; each face's mesh is followed from its previous one, and the detectors
    run again when a face is lost, and every ``redetect_every`` frames in a background thread
    (new faces join when that search ends, a frame or two later). Every mesh is checked
    against its detection (or its previous frame) and dropped when they disagree. The MediaPipe
    graphs are built once per detector (~100 ms). Not thread-safe: one detector per thread.
    """

    def __init__(self, max_faces: int | None = None, video: bool = False, min_confidence: float = 0.5,
                 min_eye_distance: float = MIN_EYE_DISTANCE, redetect_every: int = 10,
                 threads: int | None = None):
        if max_faces is not None and max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        if min_eye_distance <= 0:
            raise ValueError(f"min_eye_distance must be positive, got {min_eye_distance}")
        self.max_faces = max_faces
        self.video = video
        self.min_eye_distance = min_eye_distance
        self.redetect_every = redetect_every
        self.min_confidence = min_confidence
        self._graphs = _Graphs(min_confidence)
        self._tracked: list[Face] = []
        self._since_scan = 0
        # MediaPipe releases the GIL while a graph runs, so a second thread with its own graphs
        # takes half of a photo's detector passes and meshes (built on first use, ~100 ms).
        self.threads = detector_threads() if threads is None else threads
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self._pool: ThreadPoolExecutor | None = None
        self._helpers: list[_Graphs] = []
        self._scanner: ThreadPoolExecutor | None = None  # video: the background search for new faces
        self._rescan_graphs: _Graphs | None = None
        self._rescan: Future[list[Detection]] | None = None

    def _map(self, fn: Callable[[_Graphs, Any], R], items: Sequence[Any]) -> list[R]:
        """``fn(graphs, item)`` for each item over this detector's threads; results in order."""
        if self.threads < 2 or len(items) < 2:
            return [fn(self._graphs, item) for item in items]
        if self._pool is None:
            self._helpers = [_Graphs(self.min_confidence).warmed() for _ in range(self.threads - 1)]
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="eyeedit-landmarks")
        out: list[Any] = [None] * len(items)
        order = itertools.count()  # next() is atomic under the GIL: each item is taken once

        def work(graphs: _Graphs) -> None:
            while (i := next(order)) < len(items):
                out[i] = fn(graphs, items[i])

        futures = [self._pool.submit(work, g) for g in self._helpers]
        try:
            work(self._graphs)
        finally:
            for fut in futures:
                fut.result()
        return out

    def find(self, image: np.ndarray) -> list[FoundFace]:
        """Every face the detector finds in an (H, W, 3) uint8 RGB photo, with its checked mesh,
        sorted left to right by box centre (``max_faces`` does not apply)."""
        _check_image(image)
        dets = self._graphs.scan(image, self.min_eye_distance, self._map)
        found = self._map(lambda graphs, det: _mesh_detection(graphs, image, det), dets)
        return sorted(found, key=lambda f: float(f.detection.center[0]))

    def detect(self, image: np.ndarray) -> list[Face]:
        """The reliable faces in an (H, W, 3) uint8 RGB image (the ``max_faces`` largest),
        sorted left to right by bounding-box centre."""
        if self.video:
            _check_image(image)
            return self._track(image)
        return largest([f.face for f in self.find(image) if f.face is not None], self.max_faces)

    def _track(self, image: np.ndarray) -> list[Face]:
        """Follow last frame's faces; look for new ones when one was lost (now) or when it is
        time (in the background, while frames keep coming: a 1920x1080 frame's search for
        20-pixel faces takes ~30 detector calls, which would stall the video every N frames)."""
        followed = self._map(lambda graphs, prev: _follow(graphs, image, prev), self._tracked)
        faces = [f for f in followed if f is not None]
        self._since_scan += 1
        found: list[Detection] = []
        if len(faces) < len(self._tracked) or not faces:
            self._since_scan = 0
            found = self._graphs.scan(image, self.min_eye_distance, self._map)
        elif self._rescan is not None and self._rescan.done():
            found, self._rescan = self._rescan.result(), None
        elif self._rescan is None and self._since_scan >= self.redetect_every:
            self._since_scan = 0
            self._rescan = self._background().submit(self._rescan_graphs.scan, image.copy(), self.min_eye_distance)
        # Detections from a frame or two ago: a face that moved since fails its mesh check and
        # is picked up by the next search.
        new = [d for d in found if not any(_same_face(d, f) for f in faces)]
        meshed = self._map(lambda graphs, det: _mesh_detection(graphs, image, det).face, new)
        faces += [f for f in meshed if f is not None]
        self._tracked = largest(faces, self.max_faces)
        return self._tracked

    def _background(self) -> ThreadPoolExecutor:
        """The thread (and its own graphs) that searches video frames for new faces."""
        if self._scanner is None:
            self._rescan_graphs = _Graphs(self.min_confidence).warmed()
            self._scanner = ThreadPoolExecutor(1, thread_name_prefix="eyeedit-rescan")
        return self._scanner

    def close(self) -> None:
        for pool in (self._pool, self._scanner):
            if pool is not None:
                pool.shutdown(wait=True)
        self._pool = self._scanner = self._rescan = None
        for graphs in [self._graphs, *self._helpers, *([self._rescan_graphs] if self._rescan_graphs else [])]:
            graphs.close()
        self._helpers, self._rescan_graphs = [], None

    def __enter__(self) -> FaceMeshDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _mesh_detection(graphs: _Graphs, image: np.ndarray, det: Detection) -> FoundFace:
    """Mesh one detection and check it; a face found small is checked against a second look
    of the detector at its crop when the coarse keypoints disagree with the mesh."""
    roi = roi_from_detection(det)
    crop = crop_roi(image, roi)
    mesh = graphs.landmarks(crop, roi)
    if mesh is None:
        return FoundFace(det, None, "no landmarks")
    problem = _problem(mesh, det)
    if problem and not det.precise:
        sharper = graphs.refine(crop, det)
        problem = _problem(mesh, sharper) if sharper is not None else problem
    return FoundFace(det, mesh, problem)


def _follow(graphs: _Graphs, image: np.ndarray, prev: Face) -> Face | None:
    """Last frame's face meshed again in this frame, or None when the mesh strays from it."""
    roi = roi_from_points(prev.points, prev.roll)
    mesh = graphs.landmarks(crop_roi(image, roi), roi)
    return mesh if mesh is not None and not _problem(mesh, anchor_of(prev)) else None


def _problem(mesh: Face, det: Detection) -> str:
    return mesh_problem(mesh.eye_centers, mesh.points[NOSE_TIP], det)


def _same_face(det: Detection, face: Face) -> bool:
    """Whether a detection lies on a face already followed (eye midpoints within half an eye distance)."""
    gap = np.linalg.norm(det.keypoints[:2].mean(axis=0) - face.eye_centers.mean(axis=0))
    return bool(gap < 0.5 * face.eye_distance)


_shared: dict[tuple[int, float], FaceMeshDetector] = {}
_shared_lock = threading.Lock()


def shared_detector(min_eye_distance: float = MIN_EYE_DISTANCE) -> FaceMeshDetector:
    """This thread's still-image detector for that smallest face, built on first use and kept
    for the process."""
    key = (threading.get_ident(), min_eye_distance)
    with _shared_lock:
        det = _shared.get(key)
        if det is None:
            det = _shared[key] = FaceMeshDetector(video=False, min_eye_distance=min_eye_distance)
    return det


def detect_faces(image: np.ndarray, max_faces: int | None = None,
                 min_eye_distance: float = MIN_EYE_DISTANCE) -> list[Face]:
    """The reliable faces in a still (H, W, 3) uint8 RGB image, left to right: all of them, or
    the ``max_faces`` largest. Faces with eyes closer than ``min_eye_distance`` pixels may be
    missed (a larger value scans faster). Uses this thread's shared detector."""
    if max_faces is not None and max_faces < 1:
        raise ValueError(f"max_faces must be >= 1, got {max_faces}")
    found = shared_detector(min_eye_distance).find(image)
    return largest([f.face for f in found if f.face is not None], max_faces)


def largest_face(faces: list[Face]) -> Face | None:
    """The face with the largest box (by area), or None when there is none."""
    return max(faces, key=lambda f: f.area) if faces else None
