"""`make demo`: run the pipeline on the bundled sample face and show the results.

1. detect and align the astronaut (each region's crop, a landmark overlay);
2. apply every effect model eyeedit ships (and any installed in the user store) to it;
3. write a PNG grid (original, then one tile per effect) and ``index.html`` showing it all.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from eyeedit.data.samples import astronaut
from eyeedit.editing.editor import Editor
from eyeedit.geometry import fit_crop_from_image, warp_to_crop
from eyeedit.imageio import write_image, write_text
from eyeedit.landmarks import Face, detect_faces
from eyeedit.model.store import list_models
from eyeedit.regions import REGIONS
from eyeedit.training.plots import image_grid
from eyeedit.viz import draw_face, fit_height


@dataclass(frozen=True)
class DemoResult:
    files: list[Path]
    effects: list[str] = field(default_factory=list)
    index: Path | None = None
    grid: Path | None = None


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    """The image with a caption bar underneath."""
    bar = np.full((28, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 1, cv2.LINE_AA)
    return np.concatenate([image, bar], axis=0)


def face_box(face: Face) -> tuple[slice, slice]:
    """(rows, columns) of a photo around ``face`` with some margin: tiles show the face, not the
    whole spacesuit."""
    x0, y0, x1, y1 = (int(v) for v in face.bbox)
    pad = (x1 - x0) // 2
    return slice(max(y0 - pad, 0), y1 + pad // 2), slice(max(x0 - pad, 0), x1 + pad)


def _crops(image: np.ndarray, face: Face, out: Path) -> list[Path]:
    """Step 1: each region's aligned crop, a landmark overlay and the crops side by side."""
    files, tiles = [], []
    for name, spec in REGIONS.items():
        crop_from_image = fit_crop_from_image(face.eye_corners, spec)
        crop = warp_to_crop(image, crop_from_image, spec.size)
        files.append(write_image(out / f"astronaut_crop-{name}.png", crop))
        tiles.append(fit_height(crop, 128))
        if name == "eyes":
            files.append(write_image(out / "astronaut_landmarks.png",
                                     draw_face(image, face, crop_from_image, spec.size)))
    files.append(write_image(out / "astronaut_regions.png", image_grid([tiles])))
    return files


def _effects(image: np.ndarray, out: Path) -> list[tuple[str, Path, np.ndarray]]:
    """Step 2: every available effect applied to the photo (one model per name, lookup order).

    Each is named by its effect, plus where it came from when that is not the package (a
    model you trained and installed as `glasses` replaces the shipped one, and says so).
    """
    done: list[tuple[str, Path, np.ndarray]] = []
    seen: set[str] = set()
    for entry in list_models():
        if entry.effect in seen:
            continue  # shadowed by a model earlier in the lookup order
        seen.add(entry.effect)
        edited = Editor.load(entry.path).edit(image)
        label = entry.effect if entry.source == "package" else f"{entry.effect} ({entry.source})"
        done.append((label, write_image(out / f"astronaut_{entry.effect}.png", edited), edited))
    return done


def _page(out: Path, effects: list[tuple[str, Path]]) -> Path:
    """Step 3: a static page with the grid, the crops and each effect."""
    items = "".join(f"<figure><img src='{html.escape(p.name)}' width='384'>"
                    f"<figcaption>{html.escape(e)}</figcaption></figure>" for e, p in effects)
    page = ("<!doctype html><meta charset='utf-8'><title>eyeedit demo</title>"
            "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
            "figure{display:inline-block;margin:6px}</style>"
            "<h1>eyeedit demo</h1><p>The sample face is scikit-image's public-domain astronaut "
            "portrait (NASA).</p><h2>Effects</h2><img src='grid.png' style='max-width:100%'>"
            f"<div>{items}</div><h2>Alignment</h2>"
            "<img src='astronaut_landmarks.png' width='384'><img src='astronaut_regions.png'>")
    return write_text(out / "index.html", page)


def run_demo(out_dir: str | Path) -> DemoResult:
    """Detect and align the astronaut, apply every effect, write a grid and an HTML page."""
    out = Path(out_dir)
    image = astronaut()
    faces = detect_faces(image, max_faces=1)
    if not faces:
        raise RuntimeError("Face Mesh found no face in the sample image")
    files = _crops(image, faces[0], out)
    effects = _effects(image, out)
    box = face_box(faces[0])
    tiles = [labelled(fit_height(image[box], 256), "original")]
    tiles += [labelled(fit_height(edited[box], 256), name) for name, _, edited in effects]
    grid_path = write_image(out / "grid.png", image_grid([tiles]))
    files += [p for _, p, _ in effects] + [grid_path]
    index = _page(out, [(name, path) for name, path, _ in effects])
    return DemoResult(files + [index], [name for name, _, _ in effects], index, grid_path)
