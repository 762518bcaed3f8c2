"""Pictures for people: landmark overlays and image grids (contact sheets, galleries)."""

from __future__ import annotations

import cv2
import numpy as np

from eyeedit.geometry import crop_box, invert, transform_points
from eyeedit.landmarks import EYE_CORNERS, Face


def draw_face(image: np.ndarray, face: Face, crop_from_image: np.ndarray | None = None,
              size: tuple[int, int] | None = None) -> np.ndarray:
    """Copy of an (H, W, 3) uint8 image with the landmarks, eye corners and the crop outline."""
    out = image.copy()
    radius = max(1, round(face.eye_distance / 80))
    for x, y in face.points:
        cv2.circle(out, (round(x), round(y)), radius, (0, 255, 0), -1, cv2.LINE_AA)
    for x, y in face.points[list(EYE_CORNERS)]:
        cv2.circle(out, (round(x), round(y)), radius * 3, (255, 0, 0), -1, cv2.LINE_AA)
    if crop_from_image is not None and size is not None:
        w, h = size
        corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
        outline = transform_points(invert(crop_from_image), corners)
        cv2.polylines(out, [np.round(outline * 16).astype(np.int32)], True, (255, 255, 0),
                      max(1, radius), cv2.LINE_AA, shift=4)
        x0, y0, x1, y1 = crop_box(crop_from_image, size, image.shape)
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (255, 0, 255), 1)
    return out


def fit_height(image: np.ndarray, height: int) -> np.ndarray:
    """Resize an image to ``height`` pixels tall, keeping its aspect ratio."""
    h, w = image.shape[:2]
    if h == height:
        return image
    interp = cv2.INTER_AREA if height < h else cv2.INTER_CUBIC
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=interp)
