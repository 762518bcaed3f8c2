"""Finding faces before meshing them: where the detectors look, merging their boxes, the region
each mesh is run on, and the check that a mesh agrees with the detection it came from.

Two MediaPipe detectors are run by :mod:`eyeedit.landmarks`. The short-range model (Face Mesh's
own, 128x128 input, ~3 ms) looks at the whole photo: it finds faces close to the camera, even
ones filling the frame, but only while their eyes arrive 7.5 of its pixels apart. The
full-range model (192x192 input, ~7 ms a call) then looks for the smaller faces: over the whole
photo and, on larger photos, in windows overlapping by half, each sized so that the smallest
face wanted arrives 7 pixels apart. All detections are merged. Everything here is plain numpy
and OpenCV.

Convention
----------
* Points and boxes are float pixel coordinates ``(x, y)`` of the photo unless a name says
  otherwise; boxes are ``(x0, y0, x1, y1)``; pixel centres sit on integer coordinates.
* Detector keypoints come in MediaPipe's order (:data:`KEYPOINTS`); "right" and "left" are the
  subject's, so the right eye is on the image's left in a non-mirrored photo (as in
  :mod:`eyeedit.landmarks`).
* Angles are in-plane rotations in degrees, positive when the image-right eye sits lower
  (``Face.roll``'s sign).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
RIGHT_EYE_KP, LEFT_EYE_KP, NOSE_KP = 0, 1, 2

DETECTOR_INPUT = 192  # the full-range model's input side, pixels
SHORT_INPUT = 128  # the short-range model's
# On windows of the same packed pictures the short-range model found 93% of the faces whose
# eyes arrived 6-7 of its pixels apart and 97-100% from 7 up.
SHORT_EYE_AT_INPUT = 7.5
# Eye distance, in detector-input pixels, that a window is sized for. On 12 generated 1920x1280
# pictures of packed London and Congress faces, windows sized for 7 found 95% of the faces with
# eyes 20-22 px apart and all of those 22-25 px apart (sized for 6, with 30% fewer windows:
# 84% and 93%).
EYE_AT_INPUT = 7.0
MIN_EYE_DISTANCE = 20.0  # photo pixels: the smallest face looked for by default
# Degrees of head turn (Face.yaw) beyond which a face is neither trained on (prepare) nor
# edited (apply): the built-in models learned from faces within it, and further round the far
# eye is foreshortened and half hidden.
MAX_YAW = 30.0
# Below this many detector pixels between the eyes, keypoints are off by up to ~0.5 eye
# distances (measured on 16-25 px faces), too coarse to judge a mesh by.
PRECISE_EYE_AT_INPUT = 12.0
MAX_SCAN = 2048  # longer photos are shrunk to this for detection; meshes still use full pixels
MERGE_IOU = 0.3  # MediaPipe's own suppression threshold inside one window
ROI_SCALE = 1.5  # the mesh's square region around a detection box (MediaPipe's Face Mesh recipe)
MESH_INPUT = 192  # the landmark model's input side: each region is resampled to this


@dataclass(frozen=True)
class Detection:
    """One face box from the detector: ``box`` (4,) float32 ``(x0, y0, x1, y1)``, ``keypoints``
    (6, 2) float32 in :data:`KEYPOINTS` order, ``score`` in [0, 1], and ``pixel``: how many of
    these pixels one pixel of the detector's input covered (its keypoints are that coarse)."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float
    pixel: float = 1.0

    @property
    def center(self) -> np.ndarray:
        """(2,) centre of the box."""
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2], np.float32)

    @property
    def eye_distance(self) -> float:
        return float(np.hypot(*(self.keypoints[LEFT_EYE_KP] - self.keypoints[RIGHT_EYE_KP])))

    @property
    def roll(self) -> float:
        """In-plane rotation in degrees from the two eye keypoints."""
        dx, dy = self.keypoints[LEFT_EYE_KP] - self.keypoints[RIGHT_EYE_KP]
        return float(np.degrees(np.arctan2(dy, dx)))

    @property
    def precise(self) -> bool:
        """Whether the eyes were far enough apart at the detector's input to judge a mesh by."""
        return self.eye_distance / self.pixel >= PRECISE_EYE_AT_INPUT

    def mapped(self, scale: float, offset: tuple[float, float]) -> Detection:
        """This detection with every coordinate ``c`` moved to ``c / scale + offset``."""
        off = np.asarray(offset, np.float32)
        box = (self.box.reshape(2, 2) / scale + off).reshape(4)
        kps = self.keypoints / scale + off
        return Detection(box.astype(np.float32), kps.astype(np.float32), self.score, self.pixel / scale)


# ---------------------------------------------------------------------------------------------
# Scanning


@dataclass(frozen=True)
class Window:
    """A region ``(x0, y0, x1, y1)`` of the scan image (integers; it may reach past the image,
    where the detector sees black) given to the detector."""

    x0: int
    y0: int
    x1: int
    y1: int
    whole: bool = False  # the whole-photo pass: its detections are never cut by an edge


def scan_scale(width: int, height: int, max_scan: int = MAX_SCAN) -> float:
    """Factor from photo pixels to scan pixels (<= 1): photos longer than ``max_scan`` shrink."""
    return min(1.0, max_scan / max(width, height))


def window_side(min_eye: float) -> int:
    """Scan-window side (scan pixels) at which eyes ``min_eye`` apart reach the detector 7 pixels apart."""
    return max(DETECTOR_INPUT, round(DETECTOR_INPUT * min_eye / EYE_AT_INPUT))


def _starts(lo: int, hi: int, window: int) -> list[int]:
    """Evenly spaced starts of windows covering [lo, hi), neighbours overlapping by at least half."""
    length = hi - lo
    if length <= window:
        return [lo]
    n = math.ceil((length - window / 2) / (window / 2))
    return [lo + round(i * (length - window) / (n - 1)) for i in range(n)]


def short_range_reach(width: int, height: int) -> float:
    """The smallest eye distance (scan pixels) the short-range pass over the whole image finds."""
    return max(width, height) * SHORT_EYE_AT_INPUT / SHORT_INPUT


def scan_windows(width: int, height: int, min_eye: float = MIN_EYE_DISTANCE) -> list[Window]:
    """Where the full-range detector looks in a ``width`` x ``height`` scan image after the
    short-range pass: nowhere if that pass already reaches eyes ``min_eye`` apart; else the
    whole image, then, if it is longer than one window, windows overlapping by half.

    Everything is padded by a tenth of a window of black: the detector misses faces that touch
    the edge of its input (half of its misses on crowded pictures were faces in the top row).
    A photo up to a quarter longer than a window is one pass, its smallest faces seen a little
    coarser (a webcam frame stays one call). At the default 20 px: 320x240 needs no full-range
    call, 640x480 one, 1920x1080 the whole plus 7x4 windows of 549.
    """
    if short_range_reach(width, height) <= min_eye:
        return []
    side = window_side(min_eye)
    pad = side // 10
    whole = Window(-pad, -pad, width + pad, height + pad, whole=True)
    if max(width, height) <= 1.25 * side:
        return [whole]
    return [whole] + [Window(x, y, x + side, y + side)
                      for y in _starts(-pad, height + pad, side) for x in _starts(-pad, width + pad, side)]


def cut(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` where the box may reach past the image: black there."""
    h, w = image.shape[:2]
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        return image[y0:y1, x0:x1]
    out = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx1 > cx0 and cy1 > cy0:
        out[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = image[cy0:cy1, cx0:cx1]
    return out


def is_cut(det: Detection, win: Window, bounds: Window, margin: float = 4.0) -> bool:
    """Whether ``det`` (scan pixels) reaches an edge of ``win`` that lies inside ``bounds`` (the
    whole pass): that face is partly outside this window and whole inside a neighbouring one."""
    if win.whole:
        return False
    x0, y0, x1, y1 = det.box
    return bool((win.x0 > bounds.x0 and x0 < win.x0 + margin) or (win.y0 > bounds.y0 and y0 < win.y0 + margin)
                or (win.x1 < bounds.x1 and x1 > win.x1 - margin) or (win.y1 < bounds.y1 and y1 > win.y1 - margin))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)


def merge_detections(dets: list[Detection], threshold: float = MERGE_IOU) -> list[Detection]:
    """Non-maximum suppression: of boxes overlapping by more than ``threshold`` IoU, keep the
    best-scoring one. The result is in descending score order."""
    kept: list[Detection] = []
    for det in sorted(dets, key=lambda d: -d.score):
        if all(iou(det.box, k.box) <= threshold for k in kept):
            kept.append(det)
    return kept


# ---------------------------------------------------------------------------------------------
# The mesh's region


@dataclass(frozen=True)
class Roi:
    """A square region of the photo rotated by ``angle`` degrees about its ``center`` (2,);
    ``size`` is its side in photo pixels. The landmark model sees it upright at 192x192."""

    center: np.ndarray
    size: float
    angle: float


def roi_from_detection(det: Detection, scale: float = ROI_SCALE) -> Roi:
    """The detection box grown to a square ``scale`` times its longer side, turned upright by the
    eye keypoints' roll (MediaPipe's Face Mesh does the same)."""
    x0, y0, x1, y1 = det.box
    return Roi(det.center, float(max(x1 - x0, y1 - y0)) * scale, det.roll)


def roi_from_points(points: np.ndarray, roll: float, scale: float = ROI_SCALE) -> Roi:
    """The region for the next video frame from this frame's (N, 2) landmarks: their box in the
    face's upright frame, grown to a square ``scale`` times its longer side."""
    a = math.radians(roll)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # photo -> upright
    upright = points @ rot.T
    lo, hi = upright.min(axis=0), upright.max(axis=0)
    center = ((lo + hi) / 2) @ rot  # back to photo axes
    return Roi(center.astype(np.float32), float((hi - lo).max()) * scale, roll)


@dataclass(frozen=True)
class RoiCrop:
    """An upright square cut around a :class:`Roi`, resampled so the ROI is ``MESH_INPUT`` pixels
    wide: ``image`` (n, n, 3) uint8; crop position ``c`` is photo position ``c / scale + origin``."""

    image: np.ndarray
    origin: np.ndarray  # (2,) photo pixel of the crop's (0, 0)
    scale: float  # crop pixels per photo pixel


def crop_roi(image: np.ndarray, roi: Roi, out: int = MESH_INPUT) -> RoiCrop:
    """Cut the upright square that holds ``roi`` at any angle from an (H, W, 3) uint8 photo,
    resampled so the ROI is ``out`` pixels wide. Parts outside the photo are black (the landmark
    model pads its own crops with zeros too).

    The crop moves continuously with the ROI (one sub-pixel warp): snapping it to whole pixels
    made a tracked face's landmarks jump whenever the snapped origin or size changed. A face
    more than twice the output size is first shrunk by a whole factor on a grid fixed to the
    photo, so that shrinking averages pixels without aliasing and is the same in every frame.
    """
    a = math.radians(roi.angle)
    side = roi.size * (abs(math.cos(a)) + abs(math.sin(a)))
    scale = out / roi.size  # crop pixels per photo pixel
    origin = roi.center - side / 2  # photo pixel at the crop's (0, 0)
    n = max(1, math.ceil(side * scale))
    src, src_origin, k = image, np.zeros(2), 1
    if scale < 0.5:
        k = int(1 / scale)
        x0, y0 = (math.floor(v / k) * k - k for v in origin)
        x1, y1 = (math.ceil(v / k) * k + k for v in origin + side)
        src = cv2.resize(cut(image, x0, y0, x1, y1), ((x1 - x0) // k, (y1 - y0) // k), interpolation=cv2.INTER_AREA)
        src_origin = np.array([x0, y0]) + (k - 1) / 2  # photo position of the shrunk pixel (0, 0)
    shift = (src_origin - origin) * scale
    m = np.array([[k * scale, 0, shift[0]], [0, k * scale, shift[1]]])  # crop_from_src
    crop = cv2.warpAffine(src, m, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return RoiCrop(crop, origin.astype(np.float32), scale)


# ---------------------------------------------------------------------------------------------
# Plausibility


@dataclass(frozen=True)
class MeshLimits:
    """How far a mesh may stray from its detection, in the detection's inter-eye distances
    (and degrees for roll), before it is called unreliable.

    On 343 real faces (London, Congress and the CC0 photos, each at full size and at a quarter)
    the largest disagreements were 0.15 (eyes), 0.24 (nose), a ratio of 0.84-1.09 and 6.7
    degrees; a mesh turned 30 degrees about its centre moves each eye by 0.26 but breaks the
    roll limit, one turned about an eye moves the other eye by 0.52.
    """

    eye_offset: float = 0.3
    nose_offset: float = 0.45
    scale_range: tuple[float, float] = (0.7, 1.4)  # mesh eye distance / detection eye distance
    roll: float = 15.0
    # Mesh eye distance / detection box side (the box is square). On 320 faces (London, Congress
    # and the CC0 photos at full size and a quarter) 0.33-0.46, median 0.39.
    box_range: tuple[float, float] = (0.22, 0.65)


def mesh_problem(eyes: np.ndarray, nose: np.ndarray, det: Detection,
                 limits: MeshLimits = MeshLimits()) -> str:
    """Why a mesh disagrees with its detection, or "" when it agrees.

    ``eyes`` (2, 2) is the mesh's right then left eye centre, ``nose`` (2,) its nose tip; both
    are compared with the detector's keypoints in units of the detector's eye distance.
    """
    unit = max(det.eye_distance, 1e-6)
    kp = det.keypoints
    eye_err = float(np.linalg.norm(eyes - kp[[RIGHT_EYE_KP, LEFT_EYE_KP]], axis=1).max()) / unit
    if eye_err > limits.eye_offset:
        return f"eyes {eye_err:.2f} eye distances from the detector's"
    nose_err = float(np.linalg.norm(nose - kp[NOSE_KP])) / unit
    if nose_err > limits.nose_offset:
        return f"nose {nose_err:.2f} eye distances from the detector's"
    ratio = float(np.hypot(*(eyes[1] - eyes[0]))) / unit
    if not limits.scale_range[0] <= ratio <= limits.scale_range[1]:
        return f"eye distance {ratio:.2f}x the detector's"
    side = max(float(det.box[2] - det.box[0]), float(det.box[3] - det.box[1]), 1e-6)
    fill = float(np.hypot(*(eyes[1] - eyes[0]))) / side
    if not limits.box_range[0] <= fill <= limits.box_range[1]:
        return f"eye distance {fill:.2f} of the detector's box"
    dx, dy = eyes[1] - eyes[0]
    turn = (math.degrees(math.atan2(dy, dx)) - det.roll + 180) % 360 - 180
    if abs(turn) > limits.roll:
        return f"rolled {turn:+.0f} degrees from the detector's"
    return ""
