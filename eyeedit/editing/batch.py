"""`eyeedit apply` as a library: expand inputs, name outputs, run the editor, write results.

One photo's failure never stops the batch: each input ends with a status and a one-line reason.
Every output is listed in a hidden ``.eyeedit-outputs.jsonl`` in its folder (file, source,
effect), so that running `apply` on a folder again never takes eyeedit's own outputs as
inputs, and an output that exists is kept unless asked to be redone.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eyeedit.editing.editor import Editor, EditResult
from eyeedit.imageio import (
    ImageError,
    copy_file,
    find_images,
    image_format,
    is_image_path,
    read_photo,
    same_file,
    write_failure,
    write_image,
)

EDITED, UNEDITED, NO_FACE, UNREADABLE, FAILED = "edited", "unedited", "no-face", "unreadable", "failed"
NO_EDITABLE_FACE = "no-editable-face"
EXISTS = "exists"
OUTPUTS_MANIFEST = ".eyeedit-outputs.jsonl"


@dataclass(frozen=True)
class Job:
    """One input photo and where its result goes."""

    source: Path
    target: Path


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: str  # edited | unedited (kept) | exists (kept) | no-face | no-editable-face | unreadable | failed
    faces: int = 0  # faces edited
    reason: str = ""
    found: int = 0  # faces found, edited or not
    skipped: tuple[str, ...] = ()  # one line per face found but not edited ("face 3: ...")

    @property
    def ok(self) -> bool:
        return self.status in (EDITED, UNEDITED, EXISTS)


def plan_jobs(inputs: list[Path], out: Path | None, effect: str) -> list[Job]:
    """Map input files and folders to output paths.

    * ``out`` with an image suffix and a single input file: exactly that file.
    * ``out`` otherwise: a folder; folder inputs keep their relative paths under it.
    * no ``out``: beside each input, as ``<stem>_<effect><suffix>``.
    Raises ValueError for a combination that cannot work (one-line message).
    """
    single_file = len(inputs) == 1 and not inputs[0].is_dir()
    if out is not None and is_image_path(out) and not out.is_dir():
        if not single_file:
            raise ValueError(f"{out}: an output file needs exactly one input file (use a folder)")
        return [Job(inputs[0], out)]
    jobs = []
    for item in inputs:
        for source, rel in _expand(item):
            if out is None:
                target = source.with_name(edited_name(source.name, effect))
            else:
                target = out / rel
            jobs.append(Job(source, target))
    return jobs


def edited_name(name: str, effect: str) -> str:
    """``<stem>_<effect><suffix>``: how `apply` names an edit written beside its photo (the web
    app names its downloads the same way)."""
    p = Path(name)
    return f"{p.stem}_{effect}{p.suffix}"


def _expand(item: Path) -> Iterator[tuple[Path, Path]]:
    """(file, path relative to the output folder) for a file or a folder (recursive); a folder's
    files that eyeedit wrote earlier are not inputs (a file named explicitly always is)."""
    if item.is_dir():
        outputs: dict[Path, set[str]] = {}
        for f in find_images(item):
            if f.name not in outputs.setdefault(f.parent, own_outputs(f.parent)):
                yield f, f.relative_to(item)
    else:
        yield item, Path(item.name)


def own_outputs(folder: Path) -> set[str]:
    """Names of the files `apply` wrote into ``folder`` (from its outputs manifest)."""
    return set(_manifest(folder))


def _manifest(folder: Path) -> dict[str, str]:
    """The outputs manifest of ``folder``: file name -> the effect that last wrote it. Read
    again only when the file changed: a re-run over thousands of kept outputs asks once each."""
    path = folder / OUTPUTS_MANIFEST
    try:
        stat = path.stat()
    except OSError:
        return {}
    return dict(_read_manifest(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=16)
def _read_manifest(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    """The manifest's (file, effect) records; ``mtime_ns`` and ``size`` key the cache."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ()
    made: dict[str, str] = {}
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError, TypeError, KeyError, AttributeError):
            record = json.loads(line)
            made[record["file"]] = str(record.get("effect", ""))
    return tuple(made.items())


def _record_output(job: Job, effect: str) -> None:
    """Append the output to its folder's manifest (one line, written in one call)."""
    line = json.dumps({"file": job.target.name, "source": str(job.source), "effect": effect})
    with open(job.target.parent / OUTPUTS_MANIFEST, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def check_not_overwriting_inputs(jobs: list[Job]) -> None:
    """Refuse a plan that would write over any of its own inputs, or write two inputs to one
    output (the second would silently replace the first)."""
    sources = [j.source for j in jobs]
    for job in jobs:
        if any(same_file(job.target, s) for s in sources):
            raise ValueError(f"{job.target}: output would overwrite an input photo")
    claimed: dict[str, Job] = {}
    for job in jobs:
        key = os.path.normcase(os.path.abspath(job.target))
        first = claimed.setdefault(key, job)
        if first is not job:
            raise ValueError(f"{job.target}: both {first.source} and {job.source} would be written "
                             "here; give them separate output folders")


def unique_jobs(jobs: list[Job]) -> list[Job]:
    """Drop repeats of the same input file with the same output (``apply a.jpg a.jpg``)."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for job in jobs:
        key = (os.path.realpath(job.source), os.path.normcase(os.path.abspath(job.target)))
        if key not in seen:
            seen.add(key)
            kept.append(job)
    return kept


def side_by_side(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H, 2W, 3): before | after."""
    return np.concatenate([before, after], axis=1)


def save_crops(result: EditResult, target: Path) -> None:
    """Write each face's input crop, output crop and mask next to ``target`` for debugging."""
    folder = target.with_name(f"{target.stem}_crops")
    for fe in result.faces:  # named by the face's place among those found, as in the report
        i = fe.index
        write_image(folder / f"face{i}_in.png", fe.crop_in)
        if fe.crop_out is not None:
            write_image(folder / f"face{i}_out.png", fe.crop_out)
        if fe.mask is not None:
            write_image(folder / f"face{i}_mask.png", np.rint(fe.mask * 255).astype(np.uint8))


def apply_one(editor: Editor, job: Job, *, keep_unedited: bool = False, sbs: bool = False,
              crops: bool = False, overwrite: bool = False) -> Outcome:
    """Edit one photo and write it; never raises for a bad input, returns its outcome.

    The output keeps the photo's EXIF (orientation 1) and ICC profile, and a JPEG keeps its
    quantisation tables; an output identical to its input (no face edited, or strength 0) is a
    copy of the input's bytes. An existing output is kept unless ``overwrite``.
    """
    if job.target.exists() and not overwrite:
        # Kept; said plainly when another effect made it (a second effect into one -o folder).
        before = _manifest(job.target.parent).get(job.target.name)
        made = f", made by {before}" if before and before != editor.name else ""
        return Outcome(job, EXISTS, reason=f"exists{made}; --overwrite redoes it")
    try:
        image, info = read_photo(job.source)
    except ImageError as exc:
        return Outcome(job, UNREADABLE, reason=exc.reason)
    result = editor.run(image)
    n, found = len(result.faces), result.found
    skipped = tuple(s.describe() for s in result.skipped)
    if n == 0 and not keep_unedited:
        if found == 0:
            return Outcome(job, NO_FACE, reason="no face found")
        why = "; ".join(f"face {s.index}: {s.reason}" for s in result.skipped)
        if not why and editor.options.face_index is not None:  # the face asked for is not there
            why = f"face index {editor.options.face_index} asked for, faces are numbered 0-{found - 1}"
        reason = f"{found} face{'s' if found > 1 else ''} found, none editable ({why})"
        return Outcome(job, NO_EDITABLE_FACE, reason=reason, found=found, skipped=skipped)
    unchanged = (n == 0 or editor.options.strength == 0) and not sbs
    try:
        if unchanged and _same_format(job.source, job.target):
            copy_file(job.source, job.target)
        else:
            write_image(job.target, side_by_side(image, result.image) if sbs else result.image, like=info)
        _record_output(job, editor.name)
        if crops and n:
            save_crops(result, job.target)
    except ImageError as exc:  # names the file it could not write, and why
        return Outcome(job, FAILED, n, reason=str(exc), found=found, skipped=skipped)
    except OSError as exc:
        reason = f"{job.target.parent}: {write_failure(job.target.parent, exc)}"
        return Outcome(job, FAILED, n, reason=reason, found=found, skipped=skipped)
    return Outcome(job, EDITED if n else UNEDITED, n, found=found, skipped=skipped)


def _same_format(a: Path, b: Path) -> bool:
    return image_format(a) == image_format(b)
