"""The paired dataset on disk, shared by `prepare` and `synth` and read by `train`.

Layout::

    pairs/
      dataset.json          region spec, size, channels, counts, source, eyeedit version
      manifest.jsonl        one JSON line per input item (written as the run goes)
      report.csv            status counts per input (written at the end)
      run.json              the options of the run that made the folder (for resuming)
      train/A/<name>.png    input crops (lossless)
      train/B/<name>.png    target crops, pixel-aligned with A
      train/mask/<name>.png where the effect touched the pair, 0-255 grey (synth only; optional)
      frames.npz            the real frames `synth --real-frames` pastes (synth only; optional)
      val/A, val/B          the held-out split

Resuming: every crop is written atomically before its manifest line is appended, so after a
kill the manifest lists only finished items; a restarted run skips those and redoes the rest.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eyeedit import __version__
from eyeedit.imageio import (
    ImageError,
    atomic_write,
    remove_temp_files,
    write_failure,
    write_image,
    write_text,
)
from eyeedit.landmarks import Face
from eyeedit.regions import RegionSpec

DATASET_FORMAT = "eyeedit-pairs/1"
SPLITS = ("train", "val")
SIDES = ("A", "B", "mask")  # the folders of a split; "mask" only in datasets that know the edit

# Statuses every dataset-making command shares; each command adds its own.
OK = "ok"
UNREADABLE = "unreadable"
NO_FACE = "no-face"
MULTIPLE_FACES = "multiple-faces"

# Two faces are "of similar size" (ambiguous without --face-index) when the smaller one's
# landmark box has at least this fraction of the larger one's area (~0.7x its width).
AMBIGUOUS_AREA_RATIO = 0.5


class DatasetError(Exception):
    """The output folder cannot be used as asked (one-line message naming the folder)."""


class OutputError(DatasetError):
    """The output folder stopped taking writes mid-run (disk full, read-only, a file in the
    way); what was finished is kept, and a later run resumes from it."""


class InputError(Exception):
    """The input folder cannot be used (one-line message naming it)."""


class Skip(Exception):
    """One input is skipped: ``status`` for the report, ``reason`` a line naming the file."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def pick_face(faces: list[Face], path: Path, face_index: int | None = None, hint: str = "") -> int:
    """Index of the face to use: ``face_index`` if given, else the clearly largest face.

    Raises :class:`Skip` for no face, or for several faces of similar size (``hint`` tells the
    user how to choose).
    """
    if not faces:
        raise Skip(NO_FACE, f"{path}: no face found")
    if face_index is not None:
        if face_index >= len(faces):
            raise Skip(NO_FACE, f"{path}: no face number {face_index} (found {len(faces)})")
        return face_index
    by_area = sorted(range(len(faces)), key=lambda i: faces[i].area, reverse=True)
    if len(faces) > 1 and faces[by_area[1]].area >= AMBIGUOUS_AREA_RATIO * faces[by_area[0]].area:
        raise Skip(MULTIPLE_FACES, f"{path}: {len(faces)} faces of similar size{hint}")
    return by_area[0]


def check_output_outside(inputs: list[Path], out: Path) -> None:
    """Refuse an output folder equal to or inside an input folder (it would read its own output)."""
    for folder in inputs:
        if folder.is_dir() and (out.resolve() == folder.resolve() or folder.resolve() in out.resolve().parents):
            raise InputError(f"{out}: the output folder must not be inside the input folder {folder}")


def remove_stale_temp_files(root: Path, folders: Iterable[str] = SPLITS) -> None:
    """Delete ``.*.tmp`` files a killed run left in the output folders (atomic writes in flight):
    crops in ``folders``, and dataset.json, report.csv or the manifest in ``root`` itself."""
    remove_temp_files(*(root / f for f in folders))
    remove_temp_files(root, recursive=False)


def split_of(key: str, val_fraction: float) -> str:
    """Deterministic train/val split from a hash of ``key`` (e.g. a person's file stem)."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val fraction must be in [0, 1), got {val_fraction}")
    h = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2**64
    return "val" if h < val_fraction else "train"


def pair_paths(root: Path, split: str, name: str) -> tuple[Path, Path]:
    """Where the A and B crops of pair ``name`` (may contain '/') live."""
    return root / split / "A" / f"{name}.png", root / split / "B" / f"{name}.png"


def mask_path(root: Path, split: str, name: str) -> Path:
    """Where the edit mask of pair ``name`` lives (datasets made by synth)."""
    return root / split / "mask" / f"{name}.png"


@contextlib.contextmanager
def output_errors(path: Path) -> Iterator[None]:
    """Turn a failed write under the output folder (disk full, read-only, a file in the way)
    into a :class:`DatasetError`: it ends the run with one line, since every later item
    would fail the same way. What was finished stays and a later run resumes from it."""
    try:
        yield
    except ImageError as exc:
        raise OutputError(str(exc)) from None
    except OSError as exc:
        where = exc.filename or path
        raise OutputError(f"{where}: {write_failure(where, exc)}") from None


def write_pair(root: Path, split: str, name: str, a: np.ndarray, b: np.ndarray,
               mask: np.ndarray | None = None) -> tuple[Path, Path]:
    """Write one pair atomically (the (H, W) uint8 ``mask`` if any, then B, then A: a pair is
    complete once A exists).

    Raises :class:`DatasetError` when the output cannot be written.
    """
    path_a, path_b = pair_paths(root, split, name)
    with output_errors(root):
        if mask is not None:
            write_image(mask_path(root, split, name), mask)
        write_image(path_b, b)
        write_image(path_a, a)
    return path_a, path_b


def read_manifest(root: Path) -> list[dict[str, Any]]:
    """Manifest records, ignoring a torn last line left by a killed run."""
    path = Path(root) / "manifest.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def load_info(root: str | os.PathLike) -> dict[str, Any]:
    """``dataset.json`` of a finished dataset folder."""
    path = Path(root) / "dataset.json"
    if not path.exists():
        raise DatasetError(f"{root}: not an eyeedit dataset (no dataset.json; run prepare or synth)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable dataset description ({exc})") from None
    if info.get("format") != DATASET_FORMAT:
        raise DatasetError(f"{path}: unknown dataset format {info.get('format')!r}")
    return info


@dataclass
class DatasetWriter:
    """Creates or resumes a dataset folder and records each item's outcome.

    ``settings`` are the options that determine the output; resuming with different settings
    is refused unless ``overwrite`` is set, in which case the folder's previous pairs are removed.
    """

    root: Path
    settings: dict[str, Any]
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        # Compare settings as they are stored (tuples become lists in JSON).
        self.settings = json.loads(json.dumps(self.settings, sort_keys=True))
        with output_errors(self.root):
            self._open()

    def _open(self) -> None:
        run_file = self.root / "run.json"
        previous = _read_json(run_file) if run_file.exists() else None
        if previous is not None and previous != self.settings and not self.overwrite:
            raise DatasetError(f"{self.root}: made with different options ({_differences(previous, self.settings)}); "
                               "pass --overwrite to rebuild it")
        if self.overwrite:
            self._clear()
        elif previous is None and self.root.exists() and any(self.root.iterdir()):
            raise DatasetError(f"{self.root}: folder is not empty and is not an eyeedit dataset")
        self.root.mkdir(parents=True, exist_ok=True)
        write_text(run_file, json.dumps(self.settings, indent=2, sort_keys=True))
        self.records: dict[str, dict[str, Any]] = {r["key"]: r for r in read_manifest(self.root)}
        # Rewrite the manifest without a torn last line before appending to it.
        self._rewrite_manifest()

    def _clear(self) -> None:
        for split in SPLITS:
            for side in SIDES:
                folder = self.root / split / side
                for f in sorted(folder.rglob("*"), reverse=True) if folder.exists() else []:
                    f.rmdir() if f.is_dir() else f.unlink()
        for name in ("manifest.jsonl", "report.csv", "dataset.json", "run.json"):
            (self.root / name).unlink(missing_ok=True)

    def _rewrite_manifest(self) -> None:
        lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in self.records.values())
        write_text(self.root / "manifest.jsonl", lines)

    def is_done(self, key: str) -> bool:
        """Whether ``key`` was recorded by an earlier (possibly interrupted) run."""
        return key in self.records

    def record(self, rec: dict[str, Any]) -> None:
        """Append one item's record (must hold ``key`` and ``status``).

        The line is written in one call after the item's crops are renamed into place, so a
        killed run leaves either a whole line for a finished item or a torn last line, which
        :func:`read_manifest` drops.
        """
        if "key" not in rec or "status" not in rec:
            raise ValueError("a manifest record needs 'key' and 'status'")
        self.records[rec["key"]] = rec
        with output_errors(self.root), open(self.root / "manifest.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")

    def counts(self) -> Counter:
        return Counter(r["status"] for r in self.records.values())

    def finish(self, region: RegionSpec, channels: int = 3, **extra: Any) -> dict[str, Any]:
        """Write ``report.csv`` and ``dataset.json`` from all records; returns the dataset info."""
        with output_errors(self.root):
            return self._finish(region, channels, **extra)

    def _finish(self, region: RegionSpec, channels: int, **extra: Any) -> dict[str, Any]:
        self._rewrite_manifest()
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["key", "status", "split", "reason"])
        for rec in sorted(self.records.values(), key=lambda r: r["key"]):
            writer.writerow([rec["key"], rec["status"], rec.get("split", ""), rec.get("reason", "")])
        write_text(self.root / "report.csv", buf.getvalue())
        ok = [r for r in self.records.values() if r["status"] == OK]
        info = {
            "format": DATASET_FORMAT,
            "region": region.to_dict(),
            "size": [region.width, region.height],
            "channels": channels,
            "counts": {s: sum(1 for r in ok if r.get("split") == s) for s in SPLITS},
            "statuses": dict(sorted(self.counts().items())),
            "eyeedit_version": __version__,
            **extra,
        }
        with atomic_write(self.root / "dataset.json", "w") as fh:
            json.dump(info, fh, indent=2, sort_keys=True)
        return info


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DatasetError(f"{path}: unreadable (not JSON); pass --overwrite to rebuild the folder") from None


def status_rows(counts: Counter, order: Iterable[str]) -> list[tuple[str, int]]:
    """(status, count) rows in a fixed order, then any other statuses alphabetically."""
    order = list(order)
    rows = [(s, counts.get(s, 0)) for s in order]
    rows += sorted((s, n) for s, n in counts.items() if s not in order)
    return rows


@dataclass(frozen=True)
class BuildReport:
    """What a finished `prepare` or `synth` run made."""

    root: Path
    info: dict[str, Any]  # the content of dataset.json
    statuses: list[tuple[str, int]]  # records per status, in the command's order


OnStart = Callable[[int, int], None]  # (records done by an earlier run, items to do now)
OnItem = Callable[[list[dict[str, Any]]], None]  # the records one input item produced
# (writer, items still to do, config, workers) -> the records of each item, as items finish
RunItems = Callable[[DatasetWriter, list[Any], Any, int], Iterator[list[dict[str, Any]]]]


def build_dataset(open_folder: Callable[[], tuple[DatasetWriter, list[Any]]], config: Any, workers: int,
                  run: RunItems, finish: Callable[[DatasetWriter, Any], dict[str, Any]],
                  statuses: Iterable[str], on_start: OnStart | None = None,
                  on_item: OnItem | None = None) -> BuildReport:
    """The body `prepare` and `synth` share: open (or resume) the folder, record every item's
    results, then finish.

    ``on_start(done_earlier, to_do)`` is called once before the first item, ``on_item(records)``
    after each input item (a pair or a photo) with the records it produced. Raises
    InputError / DatasetError for folders that cannot be used (nothing written yet) and
    OutputError when the folder stops taking writes mid-run (what was finished stays).
    """
    try:
        writer, todo = open_folder()
    except OutputError as exc:  # nothing was made yet: the folder itself cannot be used
        raise DatasetError(str(exc)) from None
    if on_start is not None:
        on_start(len(writer.records), len(todo))
    for records in run(writer, todo, config, workers):
        for rec in records:
            writer.record(rec)
        if on_item is not None:
            on_item(records)
    info = finish(writer, config)
    return BuildReport(writer.root, info, status_rows(writer.counts(), statuses))


def _differences(before: Any, now: dict[str, Any], shown: int = 3) -> str:
    """The settings that differ, as ``name: old -> new`` (the first few)."""
    before = before if isinstance(before, dict) else {}
    keys = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    parts = [f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in keys[:shown]]
    return ", ".join(parts) + (f" and {len(keys) - shown} more" if len(keys) > shown else "")
