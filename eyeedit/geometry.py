"""Eye-region geometry: the alignment template, similarity transforms, crop and un-warp, masks.

Pure numpy/OpenCV; no model code and no MediaPipe.

Convention
----------
* Points are ``(x, y)`` float arrays of shape (N, 2) in pixels; ``x`` grows right, ``y`` down, and
  the centre of pixel (i, j) (row i, column j) is the point (j, i). This is OpenCV's convention,
  so the matrices below can be passed to ``cv2.warpAffine`` unchanged.
* A transform is a (2, 3) float64 affine matrix named ``<dst>_from_<src>``: it maps a point in
  the ``src`` frame to the ``dst`` frame, ``p_dst = M[:, :2] @ p_src + M[:, 2]``.
  ``crop_from_image`` maps full-image pixels to crop pixels; ``image_from_crop`` is its inverse.
* Sizes are ``(width, height)`` like OpenCV; arrays are (H, W[, C]) like numpy.
* Eye units: a face-centred frame where the two eye centres sit at (-0.5, 0) and (0.5, 0)
  (one unit = the inter-eye distance), x to the image right, y down.
"""

from __future__ import annotations

import cv2
import numpy as np

from eyeedit.landmarks import EYE_CORNERS
from eyeedit.regions import RegionSpec

# Eye corners (landmarks 33, 133, 362, 263) in eye units. Each eye centre is the midpoint of its
# two corners, so the template is symmetric: half an eye width (EYE_HALF_WIDTH) either side of the
# centre, the outer corners slightly higher than the inner ones (canthal tilt). The two numbers
# are medians over the 86 London neutral faces (scripts/measure_template.py).
EYE_HALF_WIDTH = 0.226
CANTHAL_RISE = 0.014
TEMPLATE_EYE_CORNERS = np.array(
    [
        [-0.5 - EYE_HALF_WIDTH, -CANTHAL_RISE],
        [-0.5 + EYE_HALF_WIDTH, CANTHAL_RISE],
        [0.5 - EYE_HALF_WIDTH, CANTHAL_RISE],
        [0.5 + EYE_HALF_WIDTH, -CANTHAL_RISE],
    ],
    np.float64,
)

# Where each region is anchored, in eye units: both-eye regions on the eye midpoint, one-eye
# regions on that eye's centre (the subject's right eye is on the image's left).
_ANCHORS = {"eyes": (0.0, 0.0), "glasses": (0.0, 0.0), "right-eye": (-0.5, 0.0), "left-eye": (0.5, 0.0)}


def _check_points(points: np.ndarray, n: int | None = None) -> np.ndarray:
    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or (n is not None and pts.shape[0] != n):
        want = f"({n}, 2)" if n is not None else "(N, 2)"
        raise ValueError(f"expected points of shape {want}, got {pts.shape}")
    return pts


def _check_matrix(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, np.float64)
    if m.shape != (2, 3):
        raise ValueError(f"expected a (2, 3) affine matrix, got {m.shape}")
    return m


def crop_from_eye_units(spec: RegionSpec) -> np.ndarray:
    """(2, 3) affine from eye units to crop pixels for ``spec``."""
    scale = spec.width / spec.span
    ax, ay = _ANCHORS[spec.name]
    tx = spec.width / 2 - scale * ax
    ty = spec.center_y * spec.height - scale * ay
    return np.array([[scale, 0.0, tx], [0.0, scale, ty]])


def template_points(spec: RegionSpec) -> np.ndarray:
    """(4, 2) float64 crop-pixel positions of the eye corners (:data:`EYE_CORNERS` order)."""
    return transform_points(crop_from_eye_units(spec), TEMPLATE_EYE_CORNERS)


# The open eye around the template's corners, as an ellipse: half-axes in corner-to-corner
# widths. On the aligned crops of 47 real glasses wearers these cover lids, iris and lashes
# with a little room, and stay inside the lens of every frame.
EYE_OPENING_HALF_WIDTH = 0.55
EYE_OPENING_HALF_HEIGHT = 0.25


def eye_openings(spec: RegionSpec) -> np.ndarray:
    """(H, W) float32 {0, 1} mask of where the two eyes open in a crop made with ``spec``."""
    mask = np.zeros((spec.height, spec.width), np.uint8)
    corners = template_points(spec)
    for a, b in (corners[0:2], corners[2:4]):
        width = float(np.linalg.norm(b - a))
        angle = float(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))
        axes = (2 * EYE_OPENING_HALF_WIDTH * width, 2 * EYE_OPENING_HALF_HEIGHT * width)
        cv2.ellipse(mask, (tuple(float(v) for v in (a + b) / 2), axes, angle), 1, -1)
    return mask.astype(np.float32)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a (2, 3) affine; returns (N, 2) float64."""
    m, pts = _check_matrix(matrix), _check_points(points)
    return pts @ m[:, :2].T + m[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine, e.g. ``image_from_crop = invert(crop_from_image)``."""
    return cv2.invertAffineTransform(_check_matrix(matrix))


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The affine ``outer . inner`` (apply ``inner`` first): ``c_from_a = compose(c_from_b, b_from_a)``."""
    o, i = _check_matrix(outer), _check_matrix(inner)
    return np.hstack([o[:, :2] @ i[:, :2], (o[:, :2] @ i[:, 2] + o[:, 2])[:, None]])


def similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    """(2, 3) similarity: rotate counter-clockwise on screen by ``angle_deg``, scale, translate."""
    a = np.radians(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    # y points down, so a counter-clockwise turn on screen has +s in the top-right entry.
    return np.array([[c, s, tx], [-s, c, ty]])


def similarity_params(matrix: np.ndarray) -> tuple[float, float, float, float]:
    """(scale, angle_deg, tx, ty) of a similarity built by :func:`similarity`."""
    m = _check_matrix(matrix)
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    angle = float(np.degrees(np.arctan2(m[0, 1], m[0, 0])))
    return scale, angle, float(m[0, 2]), float(m[1, 2])


def fit_crop_from_image(corners: np.ndarray, spec: RegionSpec, robust: bool = True) -> np.ndarray:
    """Similarity mapping the four image eye corners (33, 133, 362, 263) onto the template.

    Least median of squares keeps one badly placed corner (a squint, a blink) from dragging the
    whole crop; falls back to least squares if OpenCV finds no consensus. ``robust=False`` is
    plain least squares, which moves continuously with the corners (for smoothed video tracks).
    """
    src = _check_points(corners, len(EYE_CORNERS))
    dst = template_points(spec)
    if not robust:
        return _least_squares_similarity(src, dst)
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if matrix is None:
        matrix = _least_squares_similarity(src, dst)
    return matrix


def _least_squares_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Umeyama-style closed-form similarity (no reflection) taking ``src`` onto ``dst``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    a = (s * d).sum()  # sum of dot products
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()  # sum of cross products
    norm = max((s**2).sum(), 1e-12)
    c, sn = a / norm, b / norm
    rot = np.array([[c, -sn], [sn, c]])
    return np.hstack([rot, (mu_d - rot @ mu_s)[:, None]])


def alignment_residual(corners: np.ndarray, crop_from_image: np.ndarray, spec: RegionSpec) -> float:
    """RMS distance (in eye units) between the mapped corners and the template corners."""
    mapped = transform_points(crop_from_image, corners)
    rms = float(np.sqrt(((mapped - template_points(spec)) ** 2).sum(1).mean()))
    return rms / (spec.width / spec.span)


def warp_to_crop(image: np.ndarray, crop_from_image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample ``image`` (H, W[, C]) into a crop of ``size`` = (width, height).

    Parts of the crop outside the image are filled by reflection, so a face at the frame edge
    still yields a natural-looking crop rather than a black band.
    """
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W[, C]) image, got {image.shape}")
    return cv2.warpAffine(
        image, _check_matrix(crop_from_image), size, flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    )


def crop_box(crop_from_image: np.ndarray, size: tuple[int, int], image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1) box of the image covered by the crop, clipped to the image.

    ``x1``/``y1`` are exclusive. The box may be empty (x0 == x1) when the crop lies off-frame.
    """
    w, h = size
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    pts = transform_points(invert(crop_from_image), corners)
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
    ih, iw = image_shape[:2]
    return max(x0, 0), max(y0, 0), min(max(x1, 0), iw), min(max(y1, 0), ih)


def unwarp_from_crop(
    crop: np.ndarray, crop_from_image: np.ndarray, image_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Map a crop back into the image frame, over the crop's bounding box only.

    Returns ``(patch, coverage, box)``: ``patch`` is the crop resampled into the (y1-y0, x1-x0)
    box of the image, ``coverage`` (same H, W, float32 in [0, 1]) is how much of each box pixel
    the crop covers, and ``box`` is (x0, y0, x1, y1). Only the box is touched, so the cost does
    not grow with the photo size.
    """
    if crop.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W[, C]) crop, got {crop.shape}")
    h, w = crop.shape[:2]
    x0, y0, x1, y1 = crop_box(crop_from_image, (w, h), image_shape)
    # box_from_crop = translate(-x0, -y0) . image_from_crop
    box_from_crop = invert(crop_from_image)
    box_from_crop[:, 2] -= (x0, y0)
    box_size = (max(x1 - x0, 0), max(y1 - y0, 0))
    if box_size[0] == 0 or box_size[1] == 0:
        empty = np.zeros((box_size[1], box_size[0]) + crop.shape[2:], crop.dtype)
        return empty, np.zeros(box_size[::-1], np.float32), (x0, y0, x1, y1)
    patch = cv2.warpAffine(crop, box_from_crop, box_size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    coverage = cv2.warpAffine(np.ones((h, w), np.float32), box_from_crop, box_size,
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return patch, coverage, (x0, y0, x1, y1)


def polygon_mask(polygons: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """(H, W) float32 mask in {0, 1} filled inside each (N, 2) polygon, anti-aliased edges off."""
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    # 4 fractional bits keep sub-pixel landmark positions.
    polys = [np.round(_check_points(p) * 16).astype(np.int32) for p in polygons]
    cv2.fillPoly(mask, polys, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(np.float32)


def blur(layer: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of an (h, w) float32 layer; the kernel is finite (3 sigma), so is the spread
    (nothing beyond the image comes in). Below 0.2 px, or for an empty layer, the layer itself."""
    if sigma_px <= 0.2 or layer.size == 0:
        return layer
    k = 2 * int(np.ceil(3 * sigma_px)) + 1
    return cv2.GaussianBlur(layer, (k, k), sigma_px, borderType=cv2.BORDER_CONSTANT)


def face_axes(eye_centers: np.ndarray) -> np.ndarray:
    """(2, 2) columns: one face unit across the face (the right eye's centre to the left's) and
    one down it (that turned 90 degrees), in the pixels of ``eye_centers`` ((2, 2), right eye
    first). Face units are the glasses' and the shadow's (see ``eyeedit.data.effects.base``)."""
    right, left = np.asarray(eye_centers, np.float64)
    axis = left - right
    return np.column_stack([axis, [-axis[1], axis[0]]])


def cast_shadow(mask: np.ndarray, axes: np.ndarray, angle: float, offset: float, softness: float) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the soft shadow an (H, W) float ``mask`` casts on a face whose
    :func:`face_axes` are ``axes``: moved ``offset`` face units away from a light above, turned
    ``angle`` degrees from the face's down, and blurred by a Gaussian of ``softness`` face units
    (kernel 3 sigma each side, nothing beyond the image). Thin parts keep some depth: the
    blurred mask is scaled by 1.5 before clipping, so a 2-px rim's shadow is not a faint wash."""
    turn = np.radians(angle)
    dx, dy = axes @ (np.array([np.sin(turn), np.cos(turn)]) * offset)
    sigma = softness * float(np.hypot(*axes[:, 0]))
    h, w = mask.shape
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(mask.astype(np.float32), shift, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return np.clip(blur(moved, sigma) * 1.5, 0, 1)
