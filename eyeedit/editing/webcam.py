"""One web visitor's camera: JPEG frames in, edited JPEG frames out, through the same tracker
and One Euro smoothing as `eyeedit preview`.

Each visitor gets a :class:`WebcamSession` of their own (an editor, Face Mesh in tracking mode
and the face tracks), so one visitor's faces never steer another's crops. The generator
weights are shared: :class:`EffectModels` loads each effect once per process.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from eyeedit.editing.blending import BLEND_MODES
from eyeedit.editing.editor import EditOptions, Editor
from eyeedit.editing.preview import PreviewConfig, Previewer
from eyeedit.model.store import ModelError, find_model, list_models

log = logging.getLogger(__name__)

# A webcam frame larger than this is refused: the page asks for 640x480.
MAX_FRAME_PIXELS = 1920 * 1080
MAX_FRAME_BYTES = 4 * 1024 * 1024


class FrameError(Exception):
    """A webcam frame or settings message that cannot be used (one-line message)."""


@dataclass(frozen=True)
class Settings:
    """What a visitor picked in the page: the effect and how it is blended in."""

    effect: str
    strength: float = 1.0
    blend: str = "feather"
    color_match: bool = False

    @classmethod
    def from_dict(cls, data: Any, effects: list[str]) -> Settings:
        """Validate settings sent by a browser (untrusted); raises FrameError."""
        if not isinstance(data, dict):
            raise FrameError("settings must be a JSON object")
        effect = data.get("effect")
        if effect not in effects:
            raise FrameError(f"unknown effect {effect!r} (available: {', '.join(effects)})")
        try:
            strength = float(data.get("strength", 1.0))
        except (TypeError, ValueError):
            raise FrameError("strength must be a number") from None
        if not math.isfinite(strength):  # JSON as Python reads it allows NaN and Infinity
            raise FrameError("strength must be a finite number")
        blend = data.get("blend", "feather")
        if blend not in BLEND_MODES:  # the page offers every mode, for photos and frames alike
            raise FrameError(f"unknown blend {blend!r}")
        return cls(effect, min(max(strength, 0.0), 1.0), blend, bool(data.get("color_match", False)))

    def options(self, video: bool = False) -> EditOptions:
        """The editor's options for a photo, or for a video frame (``video``)."""
        # Poisson blending solves a linear system per face: right for stills, too slow for video.
        blend = "feather" if video and self.blend == "poisson" else self.blend
        return EditOptions(blend=blend, strength=self.strength, color_match=self.color_match)


class EffectModels:
    """The installed effect models, each loaded on first use and shared by every visitor."""

    def __init__(self, backend: str = "auto", device: str = "cpu"):
        self.backend, self.device = backend, device
        self._loaded: dict[str, Editor] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Effect names in lookup order; a name shadowed by an earlier store appears once."""
        return list(dict.fromkeys(entry.effect for entry in list_models()))

    def editor(self, effect: str, options: EditOptions) -> Editor:
        """A new editor for ``effect`` with ``options``, sharing the loaded generator."""
        with self._lock:
            base = self._loaded.get(effect)
            if base is None:
                base = self._loaded[effect] = self._load(effect)
        return base.with_options(options)

    def _load(self, effect: str) -> Editor:
        model = find_model(effect)
        # The server shares its cores with Face Mesh, other visitors and often the browser
        # itself: ONNX Runtime's spinning threads took a whole core from them (a webcam session
        # edited 10 FPS with spinning, 21-28 without, on 2 busy cores).
        return Editor.load(model, backend=self.backend, device=self.device, spin=False)


def usable_effects(models: EffectModels, wanted: str | None = None) -> tuple[list[str], str]:
    """(the effects that load, the one selected at first), loading each once.

    A broken model file is left out with a logged warning, so that it does not take the others
    down with it, unless it is the ``wanted`` one. Raises ModelError when none is usable or
    ``wanted`` is unknown or broken.
    """
    if wanted is not None:
        find_model(wanted)  # raises for an unknown name, listing what is available
    effects = []
    for name in models.names():
        try:
            models.editor(name, EditOptions())
        except ModelError as exc:
            if name == wanted:
                raise
            log.warning("left out: %s", exc)
            continue
        effects.append(name)
    if not effects:
        raise ModelError("no usable effect model installed; train one with `eyeedit train`")
    return effects, wanted or ("glasses" if "glasses" in effects else effects[0])


class WebcamSession:
    """Edits one visitor's stream of camera frames (not thread-safe: one frame at a time)."""

    def __init__(self, models: EffectModels, settings: Settings):
        self.models = models
        self.settings = settings
        self.previewer = Previewer(models.editor(settings.effect, settings.options(video=True)), PreviewConfig())
        self._start = time.perf_counter()

    def configure(self, settings: Settings) -> None:
        """Apply new settings; a new effect starts new tracks (its crop region may differ)."""
        if settings.effect != self.settings.effect:
            self.close()
            self.previewer = Previewer(self.models.editor(settings.effect, settings.options(video=True)),
                                       PreviewConfig())
        else:  # the same generator and tracks; a new editor, so the mask follows the options too
            self.previewer.editor = self.previewer.editor.with_options(settings.options(video=True))
        self.settings = settings

    def process(self, jpeg: bytes) -> tuple[bytes, dict[str, Any]]:
        """One JPEG camera frame -> (the edited frame as JPEG, per-frame stats)."""
        t0 = time.perf_counter()
        frame = decode_frame(jpeg)  # (H, W, 3) uint8 BGR
        faces_before = self.previewer.stats.faces
        edited = self.previewer.process(frame, t0 - self._start)
        ok, out = cv2.imencode(".jpg", edited, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise FrameError("could not encode the edited frame")
        stats = {"ms": round((time.perf_counter() - t0) * 1000, 1),
                 "faces": self.previewer.stats.faces - faces_before,
                 "width": frame.shape[1], "height": frame.shape[0], "blend": self.previewer.editor.options.blend}
        self.previewer.stats.frames += 1
        return out.tobytes(), stats

    def close(self) -> None:
        self.previewer.detector.close()


def decode_frame(data: bytes) -> np.ndarray:
    """A browser's JPEG (or PNG) frame as (H, W, 3) uint8 BGR; raises FrameError."""
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"frame too large ({len(data):,} bytes)")
    try:  # the header alone gives the size: refuse a huge frame before decoding it
        with Image.open(BytesIO(data)) as img:
            w, h = img.size
    except Image.DecompressionBombError:
        raise FrameError("frame too large") from None
    except (UnidentifiedImageError, OSError):
        raise FrameError("frame is not a JPEG or PNG image") from None
    if w * h > MAX_FRAME_PIXELS:
        raise FrameError(f"frame too large ({w}x{h})")
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise FrameError("frame is not a JPEG or PNG image")
    return frame
