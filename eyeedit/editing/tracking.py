"""Stable crops for video: One Euro smoothing of the eye corners and face tracks across frames.

The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a low-pass filter whose cutoff
rises with speed: a still face gets heavy smoothing (no jitter), a moving face little (no lag).
Speeds are measured in inter-eye distances per second, so the same settings work for a face
near the camera and one far away. Only the four eye corners are filtered: they barely move
when the eyelids close, so a blink does not move the crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from eyeedit.geometry import fit_crop_from_image
from eyeedit.landmarks import Face
from eyeedit.regions import RegionSpec


@dataclass(frozen=True)
class SmoothingConfig:
    """One Euro filter settings for each face's eye corners (see :class:`OneEuroFilter`)."""

    min_cutoff: float = 0.2  # Hz: smoothing of a still face
    beta: float = 2.0  # how fast the cutoff rises with speed (per eye distance / s)
    d_cutoff: float = 1.0  # Hz: smoothing of the speed estimate itself
    hold_frames: int = 5  # keep a lost face's last crop this many frames, then forget it
    match_distance: float = 1.5  # eye distances: farther than this is a different face


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over an array of values; the speed is scaled by a per-sample unit."""

    def __init__(self, cfg: SmoothingConfig):
        self.cfg = cfg
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t: float | None = None

    def __call__(self, x: np.ndarray, t: float, unit: float = 1.0) -> np.ndarray:
        """Filtered value of ``x`` observed at time ``t`` seconds; ``unit`` normalises speed."""
        x = np.asarray(x, np.float64)
        if self.x is None or self.t is None or t <= self.t:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self.t
        dx = (x - self.x) / dt
        a_d = _alpha(self.cfg.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        # mean speed of the points: less noisy than the fastest one
        speed = float(np.linalg.norm(self.dx.reshape(-1, 2), axis=1).mean()) / max(unit, 1e-6)
        a = _alpha(self.cfg.min_cutoff + self.cfg.beta * speed, dt)
        self.x = a * x + (1 - a) * self.x
        self.t = t
        return self.x.copy()


@dataclass(eq=False)  # a track is itself, whatever its contents (faces hold arrays)
class Track:
    """One face followed across frames."""

    face: Face
    filter: OneEuroFilter
    transform: np.ndarray  # (2, 3) smoothed crop_from_image
    missed: int = 0
    hole: np.ndarray | None = None  # a fill generator's hole in this track's crop, if any
    hole_age: int = 0  # frames since that hole was found


@dataclass
class FaceTracker:
    """Matches faces to tracks by nearest centre and smooths each track's crop transform."""

    spec: RegionSpec
    cfg: SmoothingConfig = field(default_factory=SmoothingConfig)
    smooth: bool = True
    tracks: list[Track] = field(default_factory=list)

    def update(self, faces: list[Face], t: float) -> list[tuple[Face, np.ndarray]]:
        """(face, crop_from_image) for every face to edit in the frame at time ``t`` seconds.

        Faces missing for up to ``hold_frames`` frames keep their last crop; then they are
        dropped and their filter forgotten.
        """
        unmatched = list(range(len(self.tracks)))
        kept: list[Track] = []
        for face in faces:
            i = self._nearest(face, unmatched)
            if i is None:
                track = Track(face, OneEuroFilter(self.cfg), np.zeros((2, 3)))
            else:
                track = self.tracks[i]
                unmatched.remove(i)
            track.face, track.missed = face, 0
            corners = track.filter(face.eye_corners, t, face.eye_distance) if self.smooth else face.eye_corners
            # Least squares, not the robust fit stills use: on four points the robust fit jumps
            # between corner subsets as landmarks jitter (about a pixel each time), while the
            # corners themselves barely move in a blink.
            track.transform = fit_crop_from_image(corners, self.spec, robust=False)
            kept.append(track)
        for i in unmatched:
            lost = self.tracks[i]
            lost.missed += 1
            if lost.missed <= self.cfg.hold_frames:
                kept.append(lost)
        self.tracks = sorted(kept, key=lambda tr: float(tr.face.center[0]))
        return [(tr.face, tr.transform) for tr in self.tracks]

    def _nearest(self, face: Face, candidates: list[int]) -> int | None:
        """Index of the unmatched track nearest to ``face``, if within the match distance."""
        best, best_d = None, self.cfg.match_distance * face.eye_distance
        for i in candidates:
            d = float(np.linalg.norm(self.tracks[i].face.center - face.center))
            if d < best_d:
                best, best_d = i, d
        return best
