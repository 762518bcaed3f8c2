"""The run folder: its layout, whether a new or resumed run may use it, and metrics.jsonl.

A run folder ``runs/NAME/`` holds ``config.json``, ``metrics.jsonl``, ``checkpoints/``,
``samples/epoch_NNN.png`` (input | output | target on fixed validation pairs), ``curves.png``
and the final ``model.safetensors``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eyeedit.imageio import ImageError, write_failure, write_text
from eyeedit.training import checkpoints as ckpt
from eyeedit.training.config import TrainConfig


class RunError(Exception):
    """The run folder or its checkpoint cannot be used as asked (one-line message)."""


@dataclass(frozen=True)
class RunPaths:
    """Where each output of a training run lives under its folder ``root``."""

    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def model(self) -> Path:
        return self.root / "model.safetensors"

    @property
    def curves(self) -> Path:
        return self.root / "curves.png"

    def sample(self, epoch: int) -> Path:
        return self.root / "samples" / f"epoch_{epoch:03d}.png"


def check_run_folder(paths: RunPaths, cfg: TrainConfig, resume: bool, overwrite: bool,
                     data_fingerprint: str = "") -> Path | None:
    """Check the run folder against the request; returns the checkpoint to resume from."""
    _check_folders(paths)
    latest = ckpt.latest(paths.checkpoints)
    if resume:
        if latest is None:
            # Killed before its first checkpoint: nothing to continue, so start afresh rather
            # than make the user choose between --resume and --overwrite.
            with write_errors(paths, kept=False):
                clear_run(paths)
            return None
        saved = _with_defaults(ckpt.read_config(latest))
        diff = sorted(k for k, v in cfg.to_dict().items() if saved.get(k) != _jsonish(v))
        if diff:
            raise RunError(f"{latest}: run was started with different {', '.join(diff)}; "
                           f"resume with the same options")
        saved_data = ckpt.read_data_fingerprint(latest)
        if saved_data and data_fingerprint and saved_data != data_fingerprint:
            raise RunError(f"{latest}: run was trained on a different dataset; resume it with the "
                           f"same pairs, or pass --overwrite to start again")
        return latest
    started = latest is not None or paths.metrics.exists() or paths.model.exists()
    if started and not overwrite:
        raise RunError(f"{paths.root}: already holds a run; pass --resume to continue it "
                       f"or --overwrite to start again")
    return None


def _check_folders(paths: RunPaths) -> None:
    """Refuse a run folder that is a file, lies under a file, or holds a file where one of its
    own folders goes, before anything is written."""
    for folder in (paths.root, paths.checkpoints, paths.root / "samples"):
        blocker = next((q for q in (folder, *folder.parents) if q.exists() and not q.is_dir()), None)
        if blocker is not None:
            raise RunError(f"{folder}: cannot write: {blocker} is a file, not a folder")


@contextlib.contextmanager
def write_errors(paths: RunPaths, kept: bool) -> Iterator[None]:
    """Turn a failed write under the run folder (read-only, disk full) into one RunError line;
    ``kept`` says checkpoints may already be on disk for --resume."""
    try:
        yield
    except (OSError, ImageError) as exc:
        where = getattr(exc, "filename", None) or getattr(exc, "path", None) or paths.root
        reason = write_failure(where, exc) if isinstance(exc, OSError) else exc.reason
        note = "; the checkpoints written so far are kept: --resume continues" if kept else ""
        raise RunError(f"{where}: {reason}{note}") from None


def _jsonish(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config with the defaults of options added since it was written (a run
    started before ``alpha`` existed resumes as a run without alpha)."""
    try:
        return _jsonish(TrainConfig.from_dict(saved).to_dict())
    except (TypeError, ValueError, KeyError):
        return saved  # compared as it is: the difference is reported by name


def clear_run(paths: RunPaths) -> None:
    """Remove a run's outputs (checkpoints, samples, metrics, model, curves) to start again;
    anything else in its folder is left alone."""
    for sub in ("checkpoints", "samples"):
        shutil.rmtree(paths.root / sub, ignore_errors=True)
    for f in (paths.metrics, paths.model, paths.curves):
        f.unlink(missing_ok=True)


class MetricsLog:
    """metrics.jsonl, appended by rank 0; on resume, records after the checkpoint are dropped.

    With ``tensorboard_dir`` every record's numbers (and the sample grids) also go to
    TensorBoard, which needs the optional ``tensorboard`` package (`pip install
    'eyeedit[tensorboard]'`).
    """

    def __init__(self, path: Path, keep_until_step: int | None, tensorboard_dir: Path | None = None):
        self.path = path
        if keep_until_step is not None and path.exists():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if _parse(line) and _parse(line)["step"] <= keep_until_step]
            write_text(path, "".join(line + "\n" for line in kept))
        self.board = _summary_writer(tensorboard_dir) if tensorboard_dir is not None else None

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        if self.board is not None:
            for key, value in record.items():
                if key not in ("kind", "step", "epoch") and isinstance(value, (int, float)):
                    self.board.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """An (H, W, 3) uint8 image for TensorBoard (metrics.jsonl holds numbers only)."""
        if self.board is not None:
            self.board.add_image(tag, image, step, dataformats="HWC")

    def close(self) -> None:
        if self.board is not None:
            self.board.close()

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [r for r in map(_parse, self.path.read_text(encoding="utf-8").splitlines()) if r]


def _parse(line: str) -> dict[str, Any] | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None  # a torn last line from a killed run


def _summary_writer(folder: Path) -> Any:
    """A TensorBoard writer; RunError when the optional package is missing."""
    try:
        # Imported here on purpose: tensorboard is an optional extra that most runs do not use.
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RunError("--tensorboard needs the tensorboard package: pip install 'eyeedit[tensorboard]'") from None
    return SummaryWriter(log_dir=str(folder))
