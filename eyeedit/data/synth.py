"""Plain face photos -> synthesized before/after pairs (`eyeedit synth`).

The steps, in order:

1. :func:`find_inputs` lists the photos; a photo's key is its path relative to the input folder
   without the suffix, and its *person* is the file stem (``neutral/007`` and ``smiling/007`` are
   one person), which decides the train/val split, so no person is in both splits.
2. :func:`synth_photo` reads a photo, picks its face, and for each of ``variants`` draws the
   effect's parameters from a generator seeded by hash(seed, key, variant), renders the effect on
   the full-resolution photo, and crops the original and the edited photo with the *same*
   transform: pixels the effect did not touch are identical in A and B. The effect's touched
   mask goes through the same transform and is written beside the pair (``mask/``).
3. :func:`run_photos` does step 2 in worker processes (one Face Mesh graph each); workers write
   the crops atomically and the main process appends the manifest lines.
4. :class:`~eyeedit.data.pairs.DatasetWriter` handles resuming and writes ``dataset.json``.

With ``real_frames`` (removal datasets), each face also gets pairs with a real frame pasted on:
frames a removal model found on photos of glasses wearers (the donors, found by the caller with
:func:`eyeedit.editing.frames.find_frames` and saved in the dataset as ``frames.npz`` for the
workers), see :mod:`eyeedit.data.real_frames`.

A photo that cannot take the effect gets one record under its own key with a skip status
(:data:`STATUSES`); an ok photo gets one record per variant, keyed ``<key>__v<k>``.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eyeedit.data.effects import Pins, get_effect, glasses, params_dict
from eyeedit.data.effects.base import TypicalDraws
from eyeedit.data.pairs import (
    MULTIPLE_FACES,
    NO_FACE,
    OK,
    UNREADABLE,
    BuildReport,
    DatasetWriter,
    InputError,
    OnItem,
    OnStart,
    Skip,
    build_dataset,
    check_output_outside,
    mask_path,
    pick_face,
    remove_stale_temp_files,
    split_of,
    write_pair,
)
from eyeedit.data.portraits import parse_name_list
from eyeedit.data.real_frames import RealFrames, paste_frame
from eyeedit.data.workers import ordered_map
from eyeedit.geometry import fit_crop_from_image, warp_to_crop
from eyeedit.imageio import IMAGE_SUFFIXES, ImageError, find_images, read_image
from eyeedit.landmarks import Face, detect_faces
from eyeedit.regions import REGIONS, RegionSpec

EYES_CLOSED = "eyes-closed"
FACE_TOO_SMALL = "face-too-small"
STATUSES = (OK, UNREADABLE, NO_FACE, MULTIPLE_FACES, EYES_CLOSED, FACE_TOO_SMALL)

# Below ~32 px between the eyes the 256-px crop is a 3x+ upscale of a blur: not worth training on.
DEFAULT_MIN_EYE_DISTANCE = 32.0


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines the dataset `synth` writes (saved as its ``run.json``)."""

    effect: str
    region: RegionSpec = field(default_factory=lambda: REGIONS["eyes"])
    reverse: bool = False  # A = edited, B = original (e.g. a glasses-removal dataset)
    seed: int = 0
    variants: int = 1
    # Pairs per face with nothing drawn (A = B, an empty mask), after the variants: a removal
    # model sees faces without glasses too, and learns to find nothing on them.
    plain_pairs: int = 0
    variation: bool = True  # False: unpinned parameters at their typical values (TypicalDraws)
    val_fraction: float = 0.1
    style: str | None = None  # glasses shape pinned by --style
    color: str | None = None  # iris colour (eye-color) or rim colour (glasses) pinned by --color
    material: str | None = None  # glasses frame material pinned by --material
    tint: str | None = None  # glasses lens tint pinned by --tint
    liner: str | None = None  # makeup eyeliner colour pinned by --liner
    min_eye_distance: float = DEFAULT_MIN_EYE_DISTANCE  # pixels
    max_faces: int = 4
    exclude: tuple[str, ...] = ()  # file names to leave out (e.g. people already wearing glasses)
    # Pairs per face with a real frame pasted on (after the variants and plain pairs): frames a
    # removal model's first pass found on the photos named in frame_donors (never used as plain
    # faces), see eyeedit.data.real_frames.
    real_frames: int = 0
    frame_donors: tuple[str, ...] = ()
    frame_model: str = "no-glasses"

    def __post_init__(self) -> None:
        get_effect(self.effect)  # ValueError naming the choices
        if self.variants < 1:
            raise ValueError(f"variants must be >= 1, got {self.variants}")
        if self.plain_pairs < 0:
            raise ValueError(f"plain pairs must be >= 0, got {self.plain_pairs}")
        if not self.variation and self.variants > 1:
            raise ValueError("--no-variation renders one look per face: --variants must be 1")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val fraction must be in [0, 1), got {self.val_fraction}")
        for pin in ("style", "material", "tint"):
            if getattr(self, pin) is not None and self.effect != "glasses":
                raise ValueError(f"--{pin} only applies to --effect glasses")
        if self.color is not None and self.effect not in ("glasses", "eye-color", "makeup"):
            raise ValueError("--color only applies to --effect glasses, eye-color or makeup")
        if self.liner is not None and self.effect != "makeup":
            raise ValueError("--liner only applies to --effect makeup")
        if self.real_frames < 0:
            raise ValueError(f"real frames must be >= 0, got {self.real_frames}")
        if self.real_frames and not (self.effect == "glasses" and self.reverse and self.frame_donors):
            raise ValueError("--real-frames makes removal pairs: it needs --effect glasses, --reverse "
                             "and --frame-donors")

    @property
    def pins(self) -> Pins:
        return Pins(style=self.style, color=self.color, material=self.material, tint=self.tint,
                    liner=self.liner)

    @property
    def pairs_per_face(self) -> int:
        return self.variants + self.plain_pairs + self.real_frames

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # the region becomes a nested dict


def default_region(effect: str, size: tuple[int, int] | None = None) -> RegionSpec:
    """The crop region an effect's pairs use (``glasses`` for glasses, ``eyes`` otherwise)."""
    spec = REGIONS[get_effect(effect).region]
    return spec.with_size(*size) if size else spec


@dataclass(frozen=True)
class Photo:
    """One input photo: its key (relative path without suffix), person (file stem) and path."""

    key: str
    person: str
    path: Path


# ---------------------------------------------------------------------------------------------
# 1. Inputs and randomness


def read_exclusions(spec: str) -> tuple[str, ...]:
    """File names listed by ``FILE`` or ``FILE:COLUMN=VALUE[,VALUE...]``, sorted.

    ``FILE`` is a text file with one name per line (``#`` starts a comment), or a CSV file with
    a header whose first column holds file names; with ``COLUMN=VALUES`` only the rows whose
    COLUMN is one of VALUES count (e.g. ``congress/glasses.csv:glasses=1,?`` lists the people
    wearing glasses).
    """
    path_text, _, condition = spec.partition(":")
    path = Path(path_text)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the exclusion list ({exc.__class__.__name__})") from None
    if not condition:  # a plain name list (pipelines/holdout.txt)
        return tuple(sorted(parse_name_list(text)))
    column, _, values = condition.partition("=")
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or column not in rows[0]:
        raise InputError(f"{path}: no column {column!r} (columns: {', '.join(rows[0]) if rows else 'none'})")
    first = next(iter(rows[0]))
    wanted = set(values.split(","))
    return tuple(sorted({r[first].strip() for r in rows if r[column].strip() in wanted}))


def read_exclusion_lists(specs: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The union of several exclusion lists (each as :func:`read_exclusions` reads it), sorted."""
    return tuple(sorted({name for spec in specs for name in read_exclusions(spec)}))


def find_inputs(source: Path, exclude: tuple[str, ...] = ()) -> list[Photo]:
    """The photos in a folder (recursive) or a single image file, sorted by key.

    Files whose name is in ``exclude`` are left out.
    """
    source = Path(source)
    if source.is_file():
        return [Photo(source.stem, source.stem, source)]
    if not source.is_dir():
        raise InputError(f"{source}: no such file or folder")
    skip = set(exclude)
    photos = [Photo(p.relative_to(source).with_suffix("").as_posix(), p.stem, p)
              for p in find_images(source) if p.name not in skip]
    keys = [p.key for p in photos]
    if len(set(keys)) != len(keys):
        dup = sorted(k for k in keys if keys.count(k) > 1)[0]
        raise InputError(f"{source}: several images named {dup}.*; rename them")
    if not photos:
        raise InputError(f"{source}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return photos


def find_donors(source: Path, names: tuple[str, ...]) -> list[Path]:
    """The photos in ``source`` (a folder, searched recursively) named in ``names``, sorted."""
    wanted = set(names)
    return [p for p in find_images(Path(source)) if p.name in wanted] if Path(source).is_dir() else []


def variant_key(key: str, variant: int) -> str:
    return f"{key}__v{variant}"


def variant_rng(seed: int, key: str, variant: int) -> np.random.Generator:
    """A generator that depends only on (seed, key, variant): stable across runs and workers."""
    digest = hashlib.sha256(f"{seed}\0{key}\0{variant}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


# ---------------------------------------------------------------------------------------------
# 2. One photo


def check_face(face: Face, config: SynthConfig, path: Path) -> None:
    """Raise :class:`Skip` when the effect cannot be rendered on ``face``."""
    if face.eye_distance < config.min_eye_distance:
        raise Skip(FACE_TOO_SMALL, f"{path}: eyes {face.eye_distance:.0f} px apart "
                                    f"(minimum {config.min_eye_distance:g})")
    status = get_effect(config.effect).unusable(face)
    if status == EYES_CLOSED:
        raise Skip(status, f"{path}: eyes closed (openness {face.eye_openness().min():.2f})")
    if status is not None:
        raise Skip(status, f"{path}: irises too small to recolour ({face.iris_radii.min():.1f} px)")


@dataclass
class Pair:
    """One rendered variant: its manifest record, the (H, W, 3) uint8 A and B crops and the
    (H, W) uint8 mask of where the effect touched them (0-255)."""

    record: dict[str, Any]
    a: np.ndarray
    b: np.ndarray
    mask: np.ndarray | None = None


def crop_mask_of(rendered: Any, crop_from_image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 0-255 mask of the touched photo pixels, in the crop of ``crop_from_image``.

    Uses the renderer's soft ``coverage`` (float in [0, 1]) when it has one, else its bool
    ``mask``. Resampled exactly like the images, and rounded up, so every crop pixel that a
    touched photo pixel reaches is nonzero: the mask covers every pixel where A and B differ.
    """
    coverage = getattr(rendered, "coverage", None)
    field = np.asarray(rendered.mask if coverage is None else coverage, np.float32)
    warped = warp_to_crop(field, crop_from_image, size)
    return np.clip(np.ceil(warped * 255 - 1e-3), 0, 255).astype(np.uint8)


def render_pairs(image: np.ndarray, face: Face, photo: Photo, config: SynthConfig,
                 frames: RealFrames | None = None) -> list[Pair]:
    """Render every variant of the effect on ``face`` and crop A and B with one transform; then
    the plain pairs, then ``config.real_frames`` pairs with one of ``frames`` pasted on."""
    effect, spec = get_effect(config.effect), config.region
    crop_from_image = fit_crop_from_image(face.eye_corners, spec)
    original = warp_to_crop(image, crop_from_image, spec.size)
    pairs = []
    for v in range(config.variants):
        rng = variant_rng(config.seed, photo.key, v) if config.variation else TypicalDraws()
        params = effect.sample(rng, face, config.pins)
        rendered = effect.render(image, face, params)
        edited = warp_to_crop(rendered.image, crop_from_image, spec.size)
        a, b = (edited, original) if config.reverse else (original, edited)
        rec = _record(photo, v, config, params, crop_from_image, face, int(rendered.mask.sum()))
        pairs.append(Pair(rec, a, b, crop_mask_of(rendered, crop_from_image, spec.size)))
    plain_end = config.variants + config.plain_pairs
    for v in range(config.variants, plain_end):
        rec = _record(photo, v, config, None, crop_from_image, face, 0)
        pairs.append(Pair(rec, original, original, np.zeros(original.shape[:2], np.uint8)))
    if config.real_frames and (frames is None or not len(frames)):
        raise ValueError("real-frame pairs need the frames found on the donors")
    for v in range(plain_end, config.pairs_per_face):
        rng = variant_rng(config.seed, photo.key, v)
        donor, flip = int(rng.integers(len(frames))), bool(rng.random() < 0.5)
        a, mask = paste_frame(original, frames.crops[donor], frames.weights[donor], flip)
        rec = _record(photo, v, config, None, crop_from_image, face, int((mask > 0).sum()))
        rec["params"] = {"real_frame": frames.names[donor], "flip": flip}
        pairs.append(Pair(rec, a, original, mask))
    return pairs


def _record(photo: Photo, variant: int, config: SynthConfig, params: Any | None, crop_from_image: np.ndarray,
            face: Face, touched_pixels: int) -> dict[str, Any]:
    """One pair's manifest record; ``params`` None for a plain pair (nothing drawn)."""
    key, split = variant_key(photo.key, variant), split_of(photo.person, config.val_fraction)
    return {
        "key": key, "status": OK, "reason": "",
        "split": split, "source": photo.path.as_posix(),
        "person": photo.person, "variant": variant, "effect": config.effect,
        "a": "edited" if config.reverse else "original",
        "params": {"plain": True} if params is None else params_dict(params),
        "crop_from_image": np.round(crop_from_image, 6).tolist(),
        "eye_distance": round(face.eye_distance, 2), "roll": round(face.roll, 2),
        "yaw": round(face.yaw, 2),
        "touched_pixels": touched_pixels,
        "mask": mask_path(Path(), split, key).as_posix(),  # relative to the dataset
    }


def synth_photo(photo: Photo, config: SynthConfig,
                frames: RealFrames | None = None) -> tuple[list[Pair], dict[str, Any] | None]:
    """(pairs, None) for a usable photo, ([], skip record) otherwise. Never raises for bad input."""
    try:
        try:
            image = read_image(photo.path)
        except ImageError as exc:
            raise Skip(UNREADABLE, str(exc)) from None
        # no need to look for faces smaller than check_face accepts (a coarser scan is faster)
        faces = detect_faces(image, max_faces=config.max_faces, min_eye_distance=config.min_eye_distance)
        face = faces[pick_face(faces, photo.path)]
        check_face(face, config, photo.path)
    except Skip as skip:
        return [], {"key": photo.key, "status": skip.status, "reason": skip.reason,
                    "split": split_of(photo.person, config.val_fraction),
                    "source": photo.path.as_posix(), "person": photo.person}
    return render_pairs(image, face, photo, config, frames), None


# ---------------------------------------------------------------------------------------------
# 3. Writing and running


# The real frames a dataset pastes, saved in it by the main process for the workers to read.
FRAMES_FILE = "frames.npz"


@functools.lru_cache(maxsize=2)
def _frames_in(path: str, mtime_ns: int) -> RealFrames:
    return RealFrames.load(path)


def _work(photo: Photo, config: SynthConfig, root: Path) -> list[dict[str, Any]]:
    """Worker entry point: render and write one photo's pairs; return its manifest records."""
    frames = None
    if config.real_frames:
        path = root / FRAMES_FILE
        frames = _frames_in(str(path), path.stat().st_mtime_ns)
    pairs, skipped = synth_photo(photo, config, frames)
    for pair in pairs:
        write_pair(root, pair.record["split"], pair.record["key"], pair.a, pair.b, pair.mask)
    return [p.record for p in pairs] if skipped is None else [skipped]


def run_photos(photos: list[Photo], config: SynthConfig, root: Path,
               workers: int = 1) -> Iterator[list[dict[str, Any]]]:
    """Process ``photos`` and yield each one's records in input order (a deterministic manifest).

    With ``workers > 1`` the photos run in a pool of worker processes, each with its own Face
    Mesh graph.
    """
    return ordered_map(_work, photos, workers, config, root, preload=[__name__])


def _is_done(writer: DatasetWriter, photo: Photo, config: SynthConfig) -> bool:
    if writer.is_done(photo.key):  # skipped earlier
        return True
    return all(writer.is_done(variant_key(photo.key, v)) for v in range(config.pairs_per_face))


def open_dataset(source: Path, out: Path, config: SynthConfig,
                 overwrite: bool = False) -> tuple[DatasetWriter, list[Photo]]:
    """Check the input, create or resume ``out``; returns the writer and the photos still to do.

    Raises :class:`InputError` for an unusable ``source`` and :class:`~eyeedit.data.pairs.DatasetError`
    when ``out`` cannot be used with these options. Nothing is written before both checks pass.
    """
    source, out = Path(source), Path(out)
    check_output_outside([source], out)
    photos = find_inputs(source, config.exclude + config.frame_donors)  # donors wear glasses
    settings = {"command": "synth", "source": str(source.resolve()), **config.to_dict()}
    writer = DatasetWriter(out, settings, overwrite)
    remove_stale_temp_files(out)  # crops a killed run left half-written
    return writer, [p for p in photos if not _is_done(writer, p, config)]


def finish_dataset(writer: DatasetWriter, config: SynthConfig) -> dict[str, Any]:
    """Write ``report.csv`` and ``dataset.json`` (with the effect and its options); returns the info."""
    return writer.finish(
        config.region, channels=3, source="synth", source_folder=writer.settings["source"],
        effect=config.effect, reverse=config.reverse, seed=config.seed, variants=config.variants,
        plain_pairs=config.plain_pairs, variation=config.variation, real_frames=config.real_frames,
        frame_model=_frame_model(writer.root) if config.real_frames else None,
        style=config.style, color=config.color, material=config.material, tint=config.tint, liner=config.liner,
    )


def drawn_color(info: dict[str, Any]) -> str | None:
    """``#rrggbb`` that every frame on a dataset's B side is drawn in (from its ``dataset.json``),
    or None: only glasses added (not reversed) with a pinned colour of a one-colour material."""
    if info.get("source") != "synth" or info.get("effect") != "glasses" or info.get("reverse"):
        return None
    return glasses.frame_color(info.get("color"), info.get("material"))


def drawn_shadow(info: dict[str, Any]) -> dict[str, float] | None:
    """The shadow a dataset's drawn frames cast (``glasses.typical_shadow``: the middle of
    synth's ranges, exactly what they cast without variation), for the datasets of
    :func:`drawn_color`; else None."""
    return glasses.typical_shadow() if drawn_color(info) else None


def _frame_model(root: Path) -> str:
    """sha256 of the model file that found a dataset's real frames."""
    with np.load(root / FRAMES_FILE, allow_pickle=False) as f:
        return str(f["model"])


def synth(source: Path, out: Path, config: SynthConfig, workers: int = 1, overwrite: bool = False,
          on_start: OnStart | None = None, on_item: OnItem | None = None,
          frames: RealFrames | None = None) -> BuildReport:
    """Pairs in ``out`` made by drawing ``config.effect`` on each plain face photo in ``source``
    (an item is a photo); with ``config.real_frames``, also pairs with one of ``frames`` (found
    on the donors by :func:`eyeedit.editing.frames.find_frames`) pasted on. Errors and
    callbacks: see :func:`eyeedit.data.pairs.build_dataset`."""
    if config.real_frames and (frames is None or not len(frames)):
        raise ValueError("--real-frames: no frames were found on the donors")

    def run(writer: DatasetWriter, photos: list[Photo], c: SynthConfig, n: int) -> Iterator[list[dict[str, Any]]]:
        if c.real_frames:
            frames.save(writer.root / FRAMES_FILE)  # type: ignore[union-attr]
        return run_photos(photos, c, writer.root, n)

    return build_dataset(lambda: open_dataset(source, out, config, overwrite), config, workers, run,
                         finish_dataset, STATUSES, on_start, on_item)
