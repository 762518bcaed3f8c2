"""Live preview: camera or video in, edited frames out. The only module that opens a camera or
a window.

Capture runs in its own thread and keeps only the newest frame, so when processing falls
behind, frames are dropped rather than queued and the latency stays at about one frame.
A video replayed with ``sync=False`` is read frame by frame instead (nothing dropped), which
is what recording and tests want.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from eyeedit.editing.editor import Editor
from eyeedit.editing.tracking import FaceTracker, SmoothingConfig
from eyeedit.imageio import same_file, write_failure, write_image
from eyeedit.landmarks import FaceMeshDetector


class SourceError(Exception):
    """A camera or video could not be opened (one-line message naming it)."""


@dataclass(frozen=True)
class PreviewConfig:
    """Where frames come from (``camera`` index or ``video`` file), where they go (a window
    unless ``headless``, and ``output``), and how the preview runs."""

    camera: int = 0
    video: Path | None = None
    output: Path | None = None
    headless: bool = False
    sync: bool = True  # replay a video at its own frame rate (dropping frames if behind)
    view: str = "side-by-side"  # or "single"
    max_frames: int | None = None
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    smooth: bool = True
    # A fill generator (no-glasses) finds each face's frame again every this many frames and
    # fills the same hole in between: the crop follows the face and the glasses with it, and
    # one pass instead of two keeps the preview above 30 FPS.
    find_every: int = 5


def check_output(cfg: PreviewConfig) -> None:
    """Refuse a recording that would replace the video it is made from (also through a link or
    another spelling of the path): the input would be gone once the recording is renamed."""
    if cfg.output is not None and cfg.video is not None and same_file(cfg.output, cfg.video):
        raise SourceError(f"{cfg.output}: recording would overwrite the input video {cfg.video}")


def open_capture(cfg: PreviewConfig) -> cv2.VideoCapture | _FirstFrameAgain:
    """Open the camera or video file, or raise SourceError with a helpful one-line message."""
    if cfg.video is not None:
        path = Path(cfg.video)
        if path.is_dir():
            raise SourceError(f"{path}: is a directory, not a video file")
        if not path.is_file():
            raise SourceError(f"{path}: no such video file")
        cap = cv2.VideoCapture(str(path))
        ok, first = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            cap.release()
            raise SourceError(f"{path}: cannot read video (unsupported or corrupt file)")
        # Keep the frame the check read instead of seeking back: a raw stream (MJPEG) cannot
        # seek and would lose it, and a one-frame file would then have none.
        return _FirstFrameAgain(cap, first)
    cap = cv2.VideoCapture(cfg.camera)
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"camera {cfg.camera} could not be opened; replay a file with --video FILE")
    return cap


class _FirstFrameAgain:
    """A capture whose first ``read()`` returns a frame that was already read from it."""

    def __init__(self, cap: cv2.VideoCapture, first: np.ndarray):
        self.cap, self.first = cap, first

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.first is not None:
            frame, self.first = self.first, None
            return True, frame
        return self.cap.read()

    def get(self, prop: int) -> float:
        return self.cap.get(prop)

    def release(self) -> None:
        self.cap.release()


class LatestFrame:
    """Reads a capture in a background thread, keeping only the newest frame."""

    def __init__(self, cap: cv2.VideoCapture, fps: float | None):
        self.cap, self.period = cap, (1.0 / fps if fps else 0.0)
        self._frame: np.ndarray | None = None
        self._index = -1
        self._done = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start, n = time.perf_counter(), 0
        while True:
            ok, frame = self.cap.read()
            with self._cond:
                if not ok or self._done:
                    self._done = True
                    self._cond.notify_all()
                    return
                self._frame, self._index = frame, self._index + 1
                self._cond.notify_all()
            n += 1
            if self.period:  # a file played at its own rate; a camera paces itself
                time.sleep(max(0.0, start + n * self.period - time.perf_counter()))

    def frames(self) -> Iterator[np.ndarray]:
        seen = -1
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._index > seen or self._done)
                if self._index <= seen:
                    return
                seen, frame = self._index, self._frame
            yield frame

    def stop(self) -> None:
        with self._cond:
            self._done = True
        self._thread.join(timeout=1.0)


def every_frame(cap: cv2.VideoCapture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = cap.read()
        if not ok:
            return
        yield frame


@dataclass
class PreviewStats:
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class Previewer:
    """Processes a stream of BGR frames: track faces, edit, annotate, record, show."""

    def __init__(self, editor: Editor, cfg: PreviewConfig):
        self.editor, self.cfg = editor, cfg
        opts = editor.options
        self.detector = FaceMeshDetector(max_faces=opts.max_faces, video=True, min_eye_distance=opts.min_eye_distance)
        self.tracker = FaceTracker(editor.region, cfg.smoothing, smooth=cfg.smooth)
        if getattr(editor.translate, "fills", False):
            # Its passes alone are loaded (made, the first time) on first use: now, not in the
            # middle of the video.
            w, h = editor.region.size
            editor.translate.find_hole(np.zeros((1, h, w, 3), np.uint8))
            editor.translate.with_hole(np.zeros((1, h, w, 3), np.uint8), np.zeros((1, h, w), np.float32))
        self.enabled = True
        self.view = cfg.view
        self.stats = PreviewStats()

    def process(self, frame_bgr: np.ndarray, t: float) -> np.ndarray:
        """One BGR frame in, the edited BGR frame out (unchanged if no face or effect off)."""
        rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
        t0 = time.perf_counter()
        faces = self.detector.detect(rgb)
        tracked = self.tracker.update(faces, t)
        ms = {"detect": (time.perf_counter() - t0) * 1000}
        if tracked and self.enabled:
            tracks = self.tracker.tracks  # in the order of ``tracked``
            holes = [tr.hole if tr.hole_age < self.cfg.find_every else None for tr in tracks]
            res = self.editor.run(rgb, [f for f, _ in tracked], [m for _, m in tracked], holes)
            for e in res.faces:
                tr = tracks[e.index]
                tr.hole, tr.hole_age = e.hole, tr.hole_age + 1 if e.reused_hole else 1
            ms.update({k: v for k, v in res.timings_ms.items() if k != "detect"})
            out = cv2.cvtColor(res.image, cv2.COLOR_RGB2BGR)
        else:
            out = frame_bgr
        self.stats.faces += len(tracked)
        for k, v in ms.items():
            self.stats.stage_ms[k] = self.stats.stage_ms.get(k, 0.0) + v
        return out

    def compose(self, before: np.ndarray, after: np.ndarray, fps: float, ms: dict[str, float]) -> np.ndarray:
        """The window's picture: side by side or single, with FPS and per-stage times."""
        view = np.concatenate([before, after], axis=1) if self.view == "side-by-side" else after.copy()
        text = f"{fps:5.1f} FPS  " + "  ".join(f"{k} {v:.1f}ms" for k, v in ms.items())
        text += "" if self.enabled else "  [effect off]"
        cv2.putText(view, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(view, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        return view

    def handle_key(self, key: int, frame: np.ndarray, snapshot_dir: Path) -> bool:
        """Apply a key press; returns False to quit."""
        if key in (ord("q"), 27):
            return False
        if key == ord(" "):
            self.enabled = not self.enabled
        elif key == ord("v"):
            self.view = "single" if self.view == "side-by-side" else "side-by-side"
        elif key in (ord("["), ord("]")):
            step = 0.1 if key == ord("]") else -0.1
            strength = float(np.clip(self.editor.options.strength + step, 0, 1))
            self.editor.options = replace(self.editor.options, strength=round(strength, 2))
        elif key == ord("s"):
            name = snapshot_dir / f"eyeedit-{time.strftime('%Y%m%d-%H%M%S')}-{self.stats.frames}.png"
            write_image(name, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        return True


def run_preview(editor: Editor, cfg: PreviewConfig,
                on_frame: Callable[[Previewer], None] | None = None) -> PreviewStats:
    """Run the preview until the source ends, ``max_frames`` is reached or the user quits.

    ``on_frame`` is called after each frame with the previewer (its tracker holds the current
    crops), e.g. to drive a progress bar or to measure stability.
    """
    check_output(cfg)
    cap = open_capture(cfg)
    fps_in = cap.get(cv2.CAP_PROP_FPS) or 30.0
    reader = LatestFrame(cap, fps_in if cfg.video is not None else None) if (cfg.sync or cfg.video is None) else None
    frames = reader.frames() if reader else every_frame(cap)
    pv = Previewer(editor, cfg)
    recorder = Recorder(cfg.output, fps_in) if cfg.output is not None else None
    finished = False
    start = last = time.perf_counter()
    fps = 0.0
    try:
        for i, frame in enumerate(frames):
            t = i / fps_in if not cfg.sync and cfg.video is not None else time.perf_counter() - start
            t0 = time.perf_counter()
            edited = pv.process(frame, t)
            ms = {"total": (time.perf_counter() - t0) * 1000}
            if recorder is not None:
                recorder.write(edited)
            now = time.perf_counter()
            fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if fps else 1 / max(now - last, 1e-6)
            last = now
            pv.stats.frames += 1
            if on_frame:
                on_frame(pv)
            if not cfg.headless:
                cv2.imshow("eyeedit preview", pv.compose(frame, edited, fps, ms))
                if not pv.handle_key(cv2.waitKey(1) & 0xFF, edited, Path.cwd()):
                    break
            if cfg.max_frames and pv.stats.frames >= cfg.max_frames:
                break
        finished = True
    finally:
        pv.stats.seconds = time.perf_counter() - start
        if reader:
            reader.stop()
        cap.release()
        if recorder is not None:
            recorder.close(keep=finished)
        if not cfg.headless:
            cv2.destroyAllWindows()
        pv.detector.close()
    return pv.stats


class Recorder:
    """Writes frames to a temporary video beside ``path``; renamed into place on close."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = Path(path), fps
        self.tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        self.writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        if self.writer is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SourceError(f"{self.path}: {write_failure(self.path, exc)}") from None
            codec = "mp4v" if self.path.suffix.lower() in (".mp4", ".m4v", ".mov") else "MJPG"
            h, w = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*codec), self.fps, (w, h))
            if not self.writer.isOpened():
                raise SourceError(f"{self.path}: cannot write video here")
        self.writer.write(frame)

    def close(self, keep: bool) -> None:
        if self.writer is not None:
            self.writer.release()
        try:
            if keep and self.writer is not None:
                os.replace(self.tmp, self.path)
        except OSError as exc:
            raise SourceError(f"{self.path}: {write_failure(self.path, exc)}") from None
        finally:
            with contextlib.suppress(OSError):  # an unkept or unrenamed recording
                self.tmp.unlink()
