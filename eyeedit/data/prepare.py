"""Real before/after photos -> an aligned, paired eye-region dataset (`eyeedit prepare`).

The steps, in order:

1. :func:`find_pairs` matches ``raw/before`` with ``raw/after`` (or ``raw/A`` with ``raw/B``) by
   relative path without suffix; that path is the pair's key.
2. :func:`process_pair` reads both photos, picks one face in each, aligns each photo to the
   region template on its own eye corners (or uses the before photo's transform for both with
   ``same_frame``), and rejects pairs whose aligned eye and brow landmarks still disagree.
3. :func:`run_pairs` does step 2 in worker processes (one Face Mesh graph per process); each
   worker writes its pair's crops atomically, and the main process appends the manifest line.
4. :class:`~eyeedit.data.pairs.DatasetWriter` handles resuming and writes ``report.csv`` and
   ``dataset.json`` at the end.

Every input pair ends with exactly one status (:data:`STATUSES`), recorded in the manifest with
a one-line reason naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eyeedit.data.pairs import (
    MULTIPLE_FACES,
    NO_FACE,
    OK,
    SPLITS,
    UNREADABLE,
    BuildReport,
    DatasetWriter,
    InputError,
    OnItem,
    OnStart,
    Skip,
    build_dataset,
    check_output_outside,
    output_errors,
    pick_face,
    remove_stale_temp_files,
    split_of,
    write_pair,
)
from eyeedit.data.workers import ordered_map
from eyeedit.detection import MAX_YAW
from eyeedit.geometry import alignment_residual, fit_crop_from_image, transform_points, warp_to_crop
from eyeedit.imageio import ImageError, find_images, read_image, same_file, write_image
from eyeedit.landmarks import LEFT_BROW, LEFT_EYE, RIGHT_BROW, RIGHT_EYE, Face, detect_faces
from eyeedit.regions import REGIONS, RegionSpec

PROFILE = "profile"
MISALIGNED = "misaligned"
MISSING_PARTNER = "missing-partner"
AMBIGUOUS = "ambiguous"  # several files of one name on one side (a.jpg and a.png)
STATUSES = (OK, UNREADABLE, NO_FACE, MULTIPLE_FACES, PROFILE, MISALIGNED, MISSING_PARTNER, AMBIGUOUS)

# Accepted names for the (before, after) input folders, in order of preference.
SIDE_FOLDERS = (("before", "after"), ("A", "B"), ("a", "b"))

# Landmarks compared between the two aligned crops: eyelid contours and brows, the content the
# model has to keep in register. Corners alone are what the alignment fitted, so they say little.
MISALIGNMENT_POINTS = RIGHT_EYE + LEFT_EYE + RIGHT_BROW + LEFT_BROW

# Threshold on the RMS landmark disagreement in eye units (inter-eye distances). On the 86 real
# London neutral->smiling pairs the disagreement is at most 0.046 (median 0.013, p95 0.028);
# squashing a face horizontally to 70% (the foreshortening of a ~45 degree head turn) gives
# 0.068, and 11% of mismatched-person London pairs exceed 0.06. See tests/test_prepare.py.
DEFAULT_MAX_MISALIGNMENT = 0.06

# London faces reach |yaw| 14 degrees; beyond ~30 the far eye is foreshortened and half-hidden.
DEFAULT_MAX_YAW = MAX_YAW

OUTPUT_FORMATS = ("pairs", "aligned")


@dataclass(frozen=True)
class PrepareConfig:
    """Everything that determines the dataset `prepare` writes (saved as its ``run.json``)."""

    region: RegionSpec = field(default_factory=lambda: REGIONS["eyes"])
    val_fraction: float = 0.1
    face_index: int | None = None  # left-to-right index of the face to use; None = the largest
    max_yaw: float = DEFAULT_MAX_YAW  # degrees
    max_misalignment: float = DEFAULT_MAX_MISALIGNMENT  # eye units
    same_frame: bool = False  # photos are pixel-aligned: use the before photo's transform for both
    output_format: str = "pairs"  # "aligned" also writes side-by-side A|B images
    max_faces: int = 4
    sides: tuple[str, str] | None = None  # (before, after) sub-folder names; None = the defaults

    def __post_init__(self) -> None:
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val fraction must be in [0, 1), got {self.val_fraction}")
        if self.face_index is not None and self.face_index < 0:
            raise ValueError(f"face index must be >= 0, got {self.face_index}")
        if self.max_yaw <= 0 or self.max_misalignment <= 0:
            raise ValueError("max yaw and max misalignment must be positive")
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(f"unknown format {self.output_format!r}; choose pairs or aligned")
        if self.face_index is not None and self.face_index >= self.max_faces:
            raise ValueError(f"face index {self.face_index} needs max_faces > {self.face_index}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # the region becomes a nested dict


@dataclass(frozen=True)
class PairJob:
    """One input pair: its key (relative path without suffix) and the two photos, if present."""

    key: str
    before: Path | None
    after: Path | None
    ambiguous: str = ""  # "before/: a.jpg, a.png" when one side has several files of this name


# ---------------------------------------------------------------------------------------------
# 1. Pairing


def side_folders(raw: Path, sides: tuple[str, str] | None = None) -> tuple[Path, Path]:
    """The (before, after) folders inside ``raw``; raises :class:`InputError` if absent.

    ``sides`` names them explicitly (e.g. ``("neutral", "smiling")``); otherwise the first of
    :data:`SIDE_FOLDERS` that exists is used.
    """
    if sides is not None:
        missing = [name for name in sides if not (raw / name).is_dir()]
        if missing:
            raise InputError(f"{raw}: no sub-folder {missing[0]}/")
        if same_file(raw / sides[0], raw / sides[1]):
            raise InputError(f"{raw}: --sides {sides[0]},{sides[1]} names one folder twice; "
                             "before and after must differ")
        return raw / sides[0], raw / sides[1]
    for before, after in SIDE_FOLDERS:
        if (raw / before).is_dir() and (raw / after).is_dir():
            return raw / before, raw / after
    names = ", ".join(f"{b}/ and {a}/" for b, a in SIDE_FOLDERS[:2])
    raise InputError(f"{raw}: expected two sub-folders, {names}")


def _by_key(folder: Path) -> dict[str, list[Path]]:
    """Images under ``folder`` keyed by relative path without suffix (a key may have several)."""
    found: dict[str, list[Path]] = {}
    for path in find_images(folder):
        found.setdefault(path.relative_to(folder).with_suffix("").as_posix(), []).append(path)
    return found


def find_pairs(raw: Path, sides: tuple[str, str] | None = None) -> list[PairJob]:
    """Every key found in either folder, sorted. A key with several files on one side cannot be
    paired: its job names them (``ambiguous``) and is reported, the other keys go on."""
    before_dir, after_dir = side_folders(Path(raw), sides)
    before, after = _by_key(before_dir), _by_key(after_dir)
    jobs = []
    for key in sorted(set(before) | set(after)):
        b, a = before.get(key, []), after.get(key, [])
        clash = next(((d, f) for d, f in ((before_dir, b), (after_dir, a)) if len(f) > 1), None)
        ambiguous = f"{clash[0].name}/: {', '.join(p.name for p in clash[1])}" if clash else ""
        jobs.append(PairJob(key, b[0] if b else None, a[0] if a else None, ambiguous))
    return jobs


# ---------------------------------------------------------------------------------------------
# 2. One pair


def _locate(path: Path, config: PrepareConfig) -> tuple[np.ndarray, Face, int]:
    """Read a photo and pick its face; raises :class:`Skip` with the reason otherwise."""
    try:
        image = read_image(path)
    except ImageError as exc:
        raise Skip(UNREADABLE, str(exc)) from None
    faces = detect_faces(image, max_faces=config.max_faces)
    index = pick_face(faces, path, config.face_index, hint="; choose one with --face-index")
    yaw = faces[index].yaw
    if abs(yaw) > config.max_yaw:
        limit = f"limit --max-yaw {config.max_yaw:g}"
        raise Skip(PROFILE, f"{path}: head turned {yaw:+.0f} degrees ({limit})")
    return image, faces[index], index


def misalignment(points_a: np.ndarray, points_b: np.ndarray, spec: RegionSpec) -> float:
    """RMS distance, in eye units, between the eye and brow landmarks of two aligned crops.

    ``points_a``/``points_b`` are (478, 2) landmarks in crop pixels of the same region ``spec``;
    the template puts one inter-eye distance at ``spec.width / spec.span`` crop pixels.
    """
    idx = list(MISALIGNMENT_POINTS)
    d = np.asarray(points_a, np.float64)[idx] - np.asarray(points_b, np.float64)[idx]  # (N, 2)
    return float(np.sqrt((d**2).sum(1).mean())) / (spec.width / spec.span)


def _matrix(m: np.ndarray) -> list[list[float]]:
    return np.round(m, 6).tolist()


def _points(p: np.ndarray) -> list[list[float]]:
    return np.round(p, 2).tolist()  # 1/100 pixel is far below landmark noise; keeps lines short


@dataclass
class PairResult:
    """A pair's manifest record and, when its status is ok, the (H, W, 3) uint8 A and B crops."""

    record: dict[str, Any]
    crops: tuple[np.ndarray, np.ndarray] | None = None


def _base_record(job: PairJob, config: PrepareConfig) -> dict[str, Any]:
    return {
        "key": job.key,
        "split": split_of(job.key, config.val_fraction),
        "source": {"A": job.before and job.before.as_posix(),
                   "B": job.after and job.after.as_posix()},
    }


def process_pair(job: PairJob, config: PrepareConfig) -> PairResult:
    """Read, detect, align and check one pair (no files written). Never raises for bad input."""
    rec = _base_record(job, config)
    try:
        if job.ambiguous:
            raise Skip(AMBIGUOUS, f"{job.key}: several photos of this name in {job.ambiguous}; "
                                  "keep one")
        if job.before is None or job.after is None:
            present, side = (job.before, "after") if job.after is None else (job.after, "before")
            raise Skip(MISSING_PARTNER, f"{present}: no photo with the same name in {side}/")
        crops = _align_pair(job, config, rec)
    except Skip as skip:
        rec.update(status=skip.status, reason=skip.reason)
        return PairResult(rec)
    rec.update(status=OK, reason="")
    return PairResult(rec, crops)


def _align_pair(job: PairJob, config: PrepareConfig,
                rec: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``rec`` with faces, transforms and residuals; return the crops or raise Skip."""
    spec = config.region
    image_a, face_a, index_a = _locate(job.before, config)
    image_b, face_b, index_b = _locate(job.after, config)
    crop_from_a = fit_crop_from_image(face_a.eye_corners, spec)
    if config.same_frame:
        crop_from_b = crop_from_a
    else:
        crop_from_b = fit_crop_from_image(face_b.eye_corners, spec)
    points_a = transform_points(crop_from_a, face_a.points)  # (478, 2) crop pixels
    points_b = transform_points(crop_from_b, face_b.points)
    error = misalignment(points_a, points_b, spec)
    rec.update(
        face_index={"A": index_a, "B": index_b},
        crop_from_image={"A": _matrix(crop_from_a), "B": _matrix(crop_from_b)},
        alignment_residual={
            "A": round(alignment_residual(face_a.eye_corners, crop_from_a, spec), 5),
            "B": round(alignment_residual(face_b.eye_corners, crop_from_b, spec), 5),
        },
        misalignment=round(error, 5),
        landmarks={"A": _points(points_a), "B": _points(points_b)},
    )
    if config.same_frame and image_a.shape != image_b.shape:
        (ha, wa), (hb, wb) = image_a.shape[:2], image_b.shape[:2]
        raise Skip(MISALIGNED, f"{job.after}: size {wb}x{hb} differs from {job.before} "
                                f"({wa}x{ha}) with --same-frame")
    if error > config.max_misalignment:
        raise Skip(MISALIGNED, f"{job.after}: eyes and brows differ from {job.before} by "
                                f"{error:.3f} eye distances after alignment "
                                f"(limit {config.max_misalignment:g})")
    crop_a = warp_to_crop(image_a, crop_from_a, spec.size)
    return crop_a, warp_to_crop(image_b, crop_from_b, spec.size)


# ---------------------------------------------------------------------------------------------
# 3. Writing and running


def aligned_path(root: Path, split: str, key: str) -> Path:
    """Where ``--format aligned`` puts the side-by-side A|B image of a pair."""
    return root / "aligned" / split / f"{key}.png"


def write_result(root: Path, result: PairResult, config: PrepareConfig) -> None:
    """Write an ok pair's crops atomically (nothing for a skipped pair)."""
    if result.crops is None:
        return
    a, b = result.crops
    split, key = result.record["split"], result.record["key"]
    if config.output_format == "aligned":
        with output_errors(root):
            write_image(aligned_path(root, split, key), np.concatenate([a, b], axis=1))  # (H, 2W, 3)
    write_pair(root, split, key, a, b)


def _work(job: PairJob, config: PrepareConfig, root: Path) -> dict[str, Any]:
    """Worker entry point: process and write one pair, return its manifest record."""
    result = process_pair(job, config)
    write_result(root, result, config)
    return result.record


def run_pairs(jobs: list[PairJob], config: PrepareConfig, root: Path,
              workers: int = 1) -> Iterator[dict[str, Any]]:
    """Process ``jobs`` and yield their records in input order (so the manifest is deterministic).

    With ``workers > 1`` the pairs run in a pool of worker processes, each with its own Face
    Mesh graph (built on its first pair).
    """
    return ordered_map(_work, jobs, workers, config, root, preload=[__name__])


def _check_folders(raw: Path, out: Path, sides: tuple[str, str] | None = None) -> None:
    if not raw.is_dir():
        raise InputError(f"{raw}: no such folder")
    check_output_outside(list(side_folders(raw, sides)), out)


def open_dataset(raw: Path, out: Path, config: PrepareConfig,
                 overwrite: bool = False) -> tuple[DatasetWriter, list[PairJob]]:
    """Check the folders, create or resume ``out``; returns the writer and the pairs still to do.

    Raises :class:`InputError` for an unusable ``raw`` and :class:`~eyeedit.data.pairs.DatasetError`
    when ``out`` cannot be used with these options. Nothing is written before both checks pass.
    """
    raw, out = Path(raw), Path(out)
    _check_folders(raw, out, config.sides)
    jobs = find_pairs(raw, config.sides)
    settings = {"command": "prepare", "source": str(raw.resolve()), **config.to_dict()}
    writer = DatasetWriter(out, settings, overwrite)
    if overwrite and (out / "aligned").exists():
        for f in sorted((out / "aligned").rglob("*"), reverse=True):
            f.rmdir() if f.is_dir() else f.unlink()
    remove_stale_temp_files(out, [*SPLITS, "aligned"])
    return writer, [job for job in jobs if not writer.is_done(job.key)]


def finish_dataset(writer: DatasetWriter, config: PrepareConfig) -> dict[str, Any]:
    """Write ``report.csv`` and ``dataset.json``; returns the dataset info."""
    return writer.finish(
        config.region, channels=3, source="prepare", source_folder=writer.settings["source"],
        same_frame=config.same_frame, output_format=config.output_format,
        max_misalignment=config.max_misalignment,
    )


def prepare(raw: Path, out: Path, config: PrepareConfig, workers: int = 1, overwrite: bool = False,
            on_start: OnStart | None = None, on_item: OnItem | None = None) -> BuildReport:
    """Real before/after photos in ``raw`` to an aligned paired dataset in ``out``; an item is a
    pair. Errors and callbacks: see :func:`eyeedit.data.pairs.build_dataset`."""
    return build_dataset(lambda: open_dataset(raw, out, config, overwrite), config, workers,
                         _run_items, finish_dataset, STATUSES, on_start, on_item)


def _run_items(writer: DatasetWriter, jobs: list[PairJob], config: PrepareConfig,
               workers: int) -> Iterator[list[dict[str, Any]]]:
    for rec in run_pairs(jobs, config, writer.root, workers):
        yield [rec]
