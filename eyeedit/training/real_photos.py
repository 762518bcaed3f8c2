"""`eyeedit eval MODEL --real DIR`: what an effect does to real photos, where no target exists.

For each photo the largest face is found, edited by the model, and measured three ways:

1. **The judge's verdict** (:mod:`eyeedit.model.judge`) on the face's aligned ``glasses`` crop
   before and after the edit, both cut with the transform fitted on the original photo. For a
   removal effect the figure is the share still judged "glasses" after the edit; for an adding
   effect the share judged "glasses".
2. **Landmark drift**: Face Mesh is run again on the edited photo, and its eye corners and iris
   centres are compared with those found on the original, in pixels of the effect's own crop
   (median and 90th percentile over photos). An edit that moves the eyes, or makes them
   impossible to find, shows here. The floor beside it is the drift the detector shows by itself
   when the photo is only re-saved as a JPEG (quality 90), an invisible change.
3. **Near-identity outside the edit**: the share of the photo's pixels that changed at all, and
   the largest change outside the crop's box (the editor promises none); and the PSNR of the
   edited crop against the original one (for a removal effect on faces without glasses: how
   little it touches a face with nothing to remove).
4. **The rims an adding effect draws** (models that predict where they edit, given the colour
   the frames should have): inside the rims the model's alpha marks (alpha >= 0.5, between the
   hinges), the mean colour difference from that colour (CIEDE2000) and the share of the rim's
   length whose width is within 30% of its median (:mod:`eyeedit.data.effects.rimcheck`).

Only photos where a face is found count; the report says how many there were. A file that is
a byte-for-byte copy of one before it (in sorted order) is measured once: the report names it
under ``duplicates`` and counts it nowhere else.
"""

from __future__ import annotations

import hashlib
import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from eyeedit.data.effects.rimcheck import check_rim
from eyeedit.editing.editor import Editor
from eyeedit.geometry import crop_box, transform_points, warp_to_crop
from eyeedit.imageio import ImageError, find_images, read_image, write_image, write_text
from eyeedit.landmarks import EYE_CORNERS, LEFT_IRIS, RIGHT_IRIS, Face, largest_face
from eyeedit.model.judge import Judge
from eyeedit.model.store import read_metadata
from eyeedit.training.evaluate import psnr_from_mse
from eyeedit.training.plots import image_grid

REMOVAL, ADDING, OTHER = "removal", "adding", "other"
OK, NO_FACE, UNREADABLE, SKIPPED = "ok", "no-face", "unreadable", "skipped"
IRIS_CENTERS = (RIGHT_IRIS[0], LEFT_IRIS[0])
# A face found again on the edited photo is the same face when its eye midpoint moved by less
# than this many inter-eye distances; anything further is another face or a detector failure.
SAME_FACE = 0.5
FLOOR_JPEG_QUALITY = 90
# Rims are measured this far either side of the eyes' midpoint, in inter-eye distances: the
# lenses' outer edges reach about 0.95, where the arms begin.
RIM_REACH = 0.9


def effect_kind(meta: dict[str, Any]) -> str:
    """``removal``, ``adding`` or ``other`` glasses effect, from a model's metadata.

    A name or description that speaks of removing glasses (``no-glasses``, "remove eyeglasses")
    is a removal; any other effect that mentions glasses, or was trained on glasses pairs, adds
    them; everything else (eye colour, makeup) is ``other``.
    """
    name = str(meta.get("effect", "")).lower()
    text = f"{name} {str(meta.get('description', '')).lower()}"
    if "glasses" in text and ("no-glasses" in name or "remov" in text or "without" in text):
        return REMOVAL
    data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    return ADDING if "glasses" in text or data.get("effect") == "glasses" else OTHER


@dataclass
class PhotoResult:
    """One photo's measurements; the crops are the effect's region, for the gallery."""

    name: str
    status: str  # ok | no-face | unreadable | skipped (found, but the editor declined it)
    reason: str = ""
    before: float | None = None  # judge's P(glasses)
    after: float | None = None
    corner_drift: float | None = None  # crop pixels, mean over the four eye corners
    iris_drift: float | None = None  # crop pixels, mean over the two iris centres
    corner_floor: float | None = None  # the same after a JPEG re-save of the original
    iris_floor: float | None = None
    changed_share: float | None = None  # share of the photo's pixels that changed at all
    outside_change: int | None = None  # largest change (0-255) outside the crop's box
    crop_psnr: float | None = None  # dB, edited crop against the original crop (99: unchanged)
    rim_delta_e: float | None = None  # CIEDE2000, rim colour against the colour asked for
    rim_even: float | None = None  # share of the rim's length within 30% of its median width
    crop_before: np.ndarray | None = None  # (h, w, 3) uint8
    crop_after: np.ndarray | None = None

    def row(self) -> dict[str, Any]:
        """The JSON-ready figures (no images)."""
        keys = ("name", "status", "reason", "before", "after", "corner_drift", "iris_drift",
                "corner_floor", "iris_floor", "changed_share", "outside_change", "crop_psnr",
                "rim_delta_e", "rim_even")
        return {k: getattr(self, k) for k in keys}


def measure_photo(image: np.ndarray, editor: Editor, judge: Judge, name: str,
                  rim_color: tuple[int, int, int] | None = None) -> PhotoResult:
    """Edit the largest face of an (H, W, 3) uint8 RGB photo and measure the edit; with
    ``rim_color``, also the rims of a model that predicts where it edits."""
    face = largest_face(editor.detector.detect(image))
    if face is None:
        return PhotoResult(name, NO_FACE, "no face found")
    result = editor.run(image, faces=[face])
    if not result.faces:  # the editor declined the face (turned away, too small, ...)
        return PhotoResult(name, SKIPPED, result.skipped[0].reason if result.skipped else "not edited")
    edited, m = result.image, result.faces[0].crop_from_image
    before, after = judge.probability(np.stack([judge.crop(im, face)[0] for im in (image, edited)]))
    corner, iris = _drift(face, editor.detector.detect(edited), m)
    corner_floor, iris_floor = _drift(face, editor.detector.detect(_jpeg(image)), m)
    diff = np.abs(edited.astype(np.int16) - image.astype(np.int16)).max(axis=2)  # (H, W)
    x0, y0, x1, y1 = crop_box(m, editor.region.size, image.shape)
    outside = diff.copy()
    outside[y0:y1, x0:x1] = 0
    size = editor.region.size
    crop_before, crop_after = warp_to_crop(image, m, size), warp_to_crop(edited, m, size)
    alpha = result.faces[0].alpha
    rims = _rims(alpha, face, m, crop_after, rim_color) if rim_color and alpha is not None else (None, None)
    return PhotoResult(name, OK, "", float(before), float(after), corner, iris, corner_floor,
                       iris_floor, float((diff > 0).mean()), int(outside.max()),
                       psnr(crop_before, crop_after), *rims, crop_before, crop_after)


PSNR_CAP = 99.0  # dB reported for identical crops (JSON has no infinity)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images, at most PSNR_CAP."""
    return psnr_from_mse(float(np.mean(((a.astype(np.float64) - b) / 255.0) ** 2)), PSNR_CAP)


def _rims(alpha: np.ndarray, face: Face, crop_from_image: np.ndarray, crop_after: np.ndarray,
          color: tuple[int, int, int]) -> tuple[float | None, float | None]:
    """(colour difference, evenness) of the rims the model's (h, w) alpha marks on this face's
    crop; (None, None) when it marks no rim."""
    eyes = transform_points(crop_from_image, face.eye_centers)
    mid, reach = eyes.mean(axis=0), RIM_REACH * float(np.linalg.norm(eyes[1] - eyes[0]))
    rim = alpha.astype(np.float32)  # a copy: the edit's own alpha stays as it was
    xs = np.arange(rim.shape[1])
    rim[:, (xs < mid[0] - reach) | (xs > mid[0] + reach)] = 0  # the arms are not rims
    if not (rim >= 0.5).any():
        return None, None
    check = check_rim(crop_after, rim, color)
    return check.delta_e, check.width_even


def _drift(face: Face, found: list[Face],
           crop_from_image: np.ndarray) -> tuple[float | None, float | None]:
    """Mean distance (crop pixels) of the eye corners and of the iris centres between ``face``
    and the same face among ``found``; (None, None) when it is not among them."""
    def offset(f: Face) -> float:
        return float(np.linalg.norm(f.eye_centers.mean(0) - face.eye_centers.mean(0)))

    again = min(found, key=offset, default=None)
    if again is None or offset(again) > SAME_FACE * face.eye_distance:
        return None, None
    out = []
    for idx in (EYE_CORNERS, IRIS_CENTERS):
        a = transform_points(crop_from_image, face.points[list(idx)])
        b = transform_points(crop_from_image, again.points[list(idx)])
        out.append(float(np.linalg.norm(a - b, axis=1).mean()))
    return out[0], out[1]


def _jpeg(image: np.ndarray) -> np.ndarray:
    """The photo re-saved as a JPEG: a change no one sees, to measure the detector's own jitter."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=FLOOR_JPEG_QUALITY)
    return np.asarray(Image.open(buf).convert("RGB"))


def run_real_eval(model_path: str | Path, folder: str | Path, judge: Judge, backend: str = "torch",
                  limit: int | None = None, progress: Callable[[int, int], None] | None = None,
                  rim_color: tuple[int, int, int] | None = None,
                  ) -> tuple[dict[str, Any], list[PhotoResult]]:
    """Measure a model on every photo under ``folder`` (recursive); returns (report, per photo).

    ``progress(done, total)`` is called after each photo; ``rim_color`` is the colour an adding
    effect's frames should have (rims are then measured).
    """
    editor = Editor.load(Path(model_path), backend=backend)
    paths, duplicates = distinct_files(find_images(folder), Path(folder), limit)
    if not paths:
        raise FileNotFoundError(f"{folder}: no photos found")
    results = []
    for i, path in enumerate(paths):
        name = path.relative_to(folder).as_posix()
        try:
            results.append(measure_photo(read_image(path), editor, judge, name, rim_color))
        except ImageError as exc:
            results.append(PhotoResult(name, UNREADABLE, exc.reason))
        if progress is not None:
            progress(i + 1, len(paths))
    kind = effect_kind(read_metadata(model_path))
    report = summarize(results, kind, judge, editor, str(folder))
    report["duplicates"] = duplicates
    if report.get("rims") and rim_color is not None:  # what the rims were compared with
        report["rims"]["color"] = "#{:02x}{:02x}{:02x}".format(*rim_color)
    return report, results


def distinct_files(paths: list[Path], root: Path, limit: int | None = None,
                   ) -> tuple[list[Path], list[str]]:
    """``paths`` less byte-for-byte copies of an earlier one, and a line per copy left out
    ("b.jpg: the same file as a.jpg", names relative to ``root``). A photo set can hold the
    same portrait under two names; measured twice, it would weigh twice in every figure.
    Files that cannot be read are kept (the measuring reports them). With ``limit``, reading
    stops once that many are kept (a quick run does not read the whole folder)."""
    seen: dict[str, Path] = {}
    kept: list[Path] = []
    copies: list[str] = []
    for path in paths:
        if limit is not None and len(kept) >= limit:
            break
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            kept.append(path)
            continue
        if digest in seen:
            copies.append(f"{path.relative_to(root).as_posix()}: the same file as "
                          f"{seen[digest].relative_to(root).as_posix()}")
            continue
        seen[digest] = path
        kept.append(path)
    return kept, copies


def summarize(results: list[PhotoResult], kind: str, judge: Judge, editor: Editor,
              folder: str) -> dict[str, Any]:
    """The report: counts, the judge's shares before and after, drift, change outside the edit."""
    ok = [r for r in results if r.status == OK]
    region = editor.region
    report: dict[str, Any] = {
        "folder": folder, "effect": editor.name, "effect_kind": kind,
        "crop": f"{region.name} {region.width}x{region.height}",
        "photos": len(results), "faces_found": sum(r.status in (OK, SKIPPED) for r in results),
        "edited": len(ok),
        "no_face": [r.name for r in results if r.status == NO_FACE],
        "unreadable": [r.name for r in results if r.status == UNREADABLE],
        "skipped": [f"{r.name}: {r.reason}" for r in results if r.status == SKIPPED],
        "judge": _judge_figures(ok, kind, judge),
        "drift": _drift_figures(ok),
        "outside": {"changed_share_mean": _mean([r.changed_share for r in ok]),
                    "max_change_outside_crop": max((r.outside_change for r in ok), default=None)},
        "crop_psnr_db": _spread([r.crop_psnr for r in ok if r.crop_psnr is not None]),
        "rims": _rim_figures(ok),
        "per_photo": [r.row() for r in results],
    }
    return report


def _judge_figures(ok: list[PhotoResult], kind: str, judge: Judge) -> dict[str, Any]:
    t = judge.threshold
    before = np.array([r.before for r in ok])
    after = np.array([r.after for r in ok])
    out: dict[str, Any] = {
        "threshold": t,
        "before": {"glasses_share": _mean(before >= t), "mean_probability": _mean(before)},
        "after": {"glasses_share": _mean(after >= t), "mean_probability": _mean(after)},
    }
    if kind == REMOVAL:  # among the faces the judge saw glasses on, how many keep them
        had = before >= t
        out["still_glasses"] = {"of": int(had.sum()), "share": _mean(after[had] >= t)}
    return out


def _drift_figures(ok: list[PhotoResult]) -> dict[str, Any]:
    again = [r for r in ok if r.corner_drift is not None]
    floor = [r for r in ok if r.corner_floor is not None]
    return {"found_again": len(again),
            "eye_corners_px": _spread([r.corner_drift for r in again]),
            "iris_px": _spread([r.iris_drift for r in again]),
            "floor": {"eye_corners_px": _spread([r.corner_floor for r in floor]),
                      "iris_px": _spread([r.iris_floor for r in floor])}}


def _rim_figures(ok: list[PhotoResult]) -> dict[str, Any] | None:
    measured = [r for r in ok if r.rim_delta_e is not None]
    if not measured:
        return None
    return {"measured": len(measured), "delta_e": _spread([r.rim_delta_e for r in measured]),
            "even_share": _spread([r.rim_even for r in measured])}


def _mean(values: Any) -> float | None:
    arr = np.asarray(values, np.float64)
    return float(arr.mean()) if arr.size else None


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p10": None, "p90": None}
    return {"median": float(np.median(values)), "p10": float(np.percentile(values, 10)),
            "p90": float(np.percentile(values, 90))}


def write_real_gallery(folder: str | Path, results: list[PhotoResult], title: str,
                       limit: int = 24) -> tuple[Path, Path]:
    """A PNG grid and an HTML page of before | after crops with the judge's probabilities."""
    out = Path(folder)
    shown = [r for r in results if r.status == OK][:limit]
    blank = np.full((8, 8, 3), 255, np.uint8)
    rows = [[_captioned(r.crop_before, f"before  P(glasses) {r.before:.2f}"),
             _captioned(r.crop_after, f"after  P(glasses) {r.after:.2f}")] for r in shown]
    png = write_image(out / "gallery.png", image_grid(rows) if rows else blank)
    cells = []
    for i, r in enumerate(shown):
        for tag, img in (("before", r.crop_before), ("after", r.crop_after)):
            write_image(out / "images" / f"{i:03d}_{tag}.png", img)
        drift = "-" if r.corner_drift is None else f"{r.corner_drift:.1f} / {r.iris_drift:.1f}"
        cells.append(f"<tr><td>{html.escape(r.name)}</td>"
                     f"<td><img src='images/{i:03d}_before.png'></td>"
                     f"<td><img src='images/{i:03d}_after.png'></td>"
                     f"<td>{r.before:.2f} &rarr; {r.after:.2f}</td><td>{drift}</td></tr>")
    page = (f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif}td{padding:2px;font-size:12px}"
            "img{display:block}</style>"
            f"<h1>{html.escape(title)}</h1><table><tr><th>photo</th><th>before</th><th>after</th>"
            "<th>P(glasses)</th><th>drift px (corners / irises)</th></tr>" + "".join(cells)
            + "</table>" + ("" if cells else "<p>No faces found.</p>"))
    return png, write_text(out / "index.html", page)


def _captioned(crop: np.ndarray, text: str) -> np.ndarray:
    """The crop with a white strip below it carrying ``text``."""
    strip = np.full((18, crop.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([crop, strip], axis=0)
