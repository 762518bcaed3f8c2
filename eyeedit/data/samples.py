"""Sample faces made from what the installed packages provide; no third-party photos are shipped.

The base image is scikit-image's ``astronaut`` (Eileen Collins, NASA, public domain). The
variants exercise the pipeline: rotation, scale, mirroring, a face at the frame edge, two faces
and no face at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from eyeedit.imageio import ImageError, write_image
from eyeedit.landmarks import LEFT_EYE, LEFT_EYE_UPPER, RIGHT_EYE, RIGHT_EYE_UPPER

# Where the astronaut's face is (pixel box x0, y0, x1, y1), measured with Face Mesh.
ASTRONAUT_FACE = (179, 71, 271, 178)


def astronaut() -> np.ndarray:
    """(512, 512, 3) uint8 RGB public-domain portrait bundled with scikit-image."""
    return np.ascontiguousarray(data.astronaut())


def rotate(image: np.ndarray, angle_deg: float, center: tuple[float, float] | None = None) -> np.ndarray:
    """Rotate counter-clockwise on screen about ``center`` (default: image centre), same size."""
    h, w = image.shape[:2]
    c = center if center is not None else ((w - 1) / 2, (h - 1) / 2)
    m = cv2.getRotationMatrix2D(c, angle_deg, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def turned(image: np.ndarray, bend: float, cx: float = 225.0, half: float = 60.0) -> np.ndarray:
    """The photo bent sideways about column ``cx`` so the nose shifts against the cheeks, as when
    the head turns (``half``: about half the face's width; the astronaut's defaults). A bend of
    0.2 gives the astronaut an estimated yaw of -12 to -15 degrees."""
    h, w = image.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    src_x = xs - bend * (xs - cx) ** 2 / half
    return cv2.remap(image, src_x, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def sample_images() -> dict[str, np.ndarray]:
    """Name -> (H, W, 3) uint8 RGB sample image."""
    base = astronaut()
    x0, y0, x1, y1 = ASTRONAUT_FACE
    face_center = ((x0 + x1) / 2, (y0 + y1) / 2)
    h, w = base.shape[:2]
    return {
        "astronaut": base,
        "astronaut-rot30": rotate(base, 30, face_center),
        "astronaut-small": cv2.resize(base, (w * 3 // 5, h * 3 // 5), interpolation=cv2.INTER_AREA),
        "astronaut-flip": np.ascontiguousarray(base[:, ::-1]),
        # The face touches the left border: crops reach outside the frame.
        "astronaut-edge": np.ascontiguousarray(base[:, x0 - 4 :]),
        "two-faces": np.concatenate([base[:, 96:416], base[:, 96:416][:, ::-1]], axis=1),
        # The rocket and flag corner of the same photo: no face.
        "no-face": np.ascontiguousarray(base[300:, 300:]),
    }


def astronaut_head() -> np.ndarray:
    """(230, 230, 3) uint8: the astronaut's head and shoulders, eyes 42 px apart, as a portrait
    tile for group photos."""
    return np.ascontiguousarray(astronaut()[20:250, 110:340])


def group_photo(tiles: list[np.ndarray], widths: list[int], size: tuple[int, int] = (1920, 1280),
                gap: int = 20, background: int = 200) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Portraits laid out like words in a paragraph: each tile resized to its width (keeping its
    aspect), left to right, a new row when one is full; ``tiles[i % len(tiles)]`` at ``widths[i]``.

    Returns the (H, W, 3) uint8 picture of ``size`` = (width, height) and each placed tile's box
    ``(x0, y0, x1, y1)``; tiles that no longer fit are left out.
    """
    w, h = size
    canvas = np.full((h, w, 3), background, np.uint8)
    boxes: list[tuple[int, int, int, int]] = []
    x, y, row = gap, gap, 0
    for i, width in enumerate(widths):
        tile = tiles[i % len(tiles)]
        th = round(tile.shape[0] * width / tile.shape[1])
        if x + width > w - gap:  # next row
            x, y, row = gap, y + row + gap, 0
        if y + th > h - gap:
            break
        canvas[y : y + th, x : x + width] = cv2.resize(tile, (width, th), interpolation=cv2.INTER_AREA)
        boxes.append((x, y, x + width, y + th))
        x, row = x + width + gap, max(row, th)
    return canvas, boxes


def write_samples(folder: str | Path) -> list[Path]:
    """Write every sample image as PNG into ``folder``; returns the paths written."""
    out = Path(folder)
    return [write_image(out / f"{name}.png", img) for name, img in sample_images().items()]


def moving_face_video(
    image: np.ndarray, frames: int, size: tuple[int, int] = (640, 480), seed: int = 0,
    noise: float = 2.0, motion: float = 1.0,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A synthetic clip of a face photo drifting smoothly: translation, rotation and scale.

    Returns (RGB frames of ``size`` = (width, height), the true ``frame_from_image`` 2x3
    transform of each frame). Per-frame pixel noise (std ``noise`` levels) makes the landmark
    detector jitter the way a camera sensor does, so smoothing can be measured against the
    known motion. ``motion`` scales the amplitude (1: a head drifting a few percent of the
    frame over the clip).
    """
    rng = np.random.default_rng(seed)
    w, h = size
    ih, iw = image.shape[:2]
    out, transforms = [], []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        angle = 4 * motion * np.sin(2 * np.pi * t)  # degrees
        scale = 1.0 + 0.08 * motion * np.sin(np.pi * t)
        cx = w / 2 + 0.05 * motion * w * np.sin(2 * np.pi * t)
        cy = h / 2 + 0.03 * motion * h * np.cos(2 * np.pi * t)
        m = cv2.getRotationMatrix2D((iw / 2, ih / 2), angle, scale)
        m[:, 2] += (cx - iw / 2, cy - ih / 2)
        frame = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        if noise:
            frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
        out.append(frame)
        transforms.append(m)
    return out, transforms


def write_video(path: str | Path, frames_rgb: list[np.ndarray], fps: float = 30.0) -> Path:
    """Write RGB frames as a video (MJPG in .avi, mp4v in .mp4), whole or not at all: into a
    hidden file beside ``path`` (the container follows its suffix), renamed when complete."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames_rgb[0].shape[:2]
    codec = "mp4v" if p.suffix.lower() == ".mp4" else "MJPG"
    partial = p.with_name(f".{p.stem}.partial{p.suffix}")
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    try:
        if not writer.isOpened():
            raise ImageError(p, f"cannot write a {codec} video")
        for f in frames_rgb:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        writer.release()
        os.replace(partial, p)
    finally:
        writer.release()
        partial.unlink(missing_ok=True)
    return p


def write_y4m(path: str | Path, frames_rgb: list[np.ndarray], fps: int = 30) -> Path:
    """Write RGB frames as an uncompressed 4:2:0 YUV4MPEG2 clip: what Chromium's fake camera
    plays (``--use-file-for-fake-video-capture``). Width and height must be even."""
    p = Path(path)
    h, w = frames_rgb[0].shape[:2]
    with open(p, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames_rgb:  # each frame: its Y, then U, then V plane
            fh.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return p


def close_eyes(image: np.ndarray, face) -> np.ndarray:  # noqa: ANN001 - a landmarks.Face
    """The photo with both eye openings painted over with skin and a lid line: a fake blink."""
    mask = np.zeros(image.shape[:2], np.uint8)
    for idx in (RIGHT_EYE, LEFT_EYE):
        cv2.fillPoly(mask, [np.round(face.points[list(idx)]).astype(np.int32)], 255)
    closed = cv2.inpaint(image, cv2.dilate(mask, np.ones((3, 3), np.uint8)), 5, cv2.INPAINT_TELEA)
    for upper in (RIGHT_EYE_UPPER, LEFT_EYE_UPPER):
        lid = np.round(face.points[list(upper)]).astype(np.int32)
        cv2.polylines(closed, [lid], False, (90, 60, 50), 1, cv2.LINE_AA)
    return closed
