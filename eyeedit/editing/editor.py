"""Inference: the one composition used by `apply`, `preview` and the Python API.

    1. detect faces             (detector + Face Mesh, or faces/transforms handed in by the
                                 caller); faces that cannot be edited well are set aside with
                                 a reason: unreliable landmarks, too small, turned too far
    2. align each face          (similarity to the model's own region template, warp the crop)
    3. translate all crops      (one batch through the generator backend)
    4. un-warp each result      (only the crop's bounding box of the photo is touched)
    5. blend                    (mask from the effect's region, times the model's own alpha
                                 for a model that predicts one; optional colour matching)

Example::

    from eyeedit import Editor
    edited = Editor.load("glasses").edit(image_rgb)   # (H, W, 3) uint8 RGB in and out
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from eyeedit.detection import MAX_YAW, MIN_EYE_DISTANCE
from eyeedit.editing.backends import load_translator, translate_with_alpha
from eyeedit.editing.blending import (
    BLEND_MODES,
    DEFAULT_MASK,
    MASK_KINDS,
    alpha_mask,
    change_weight,
    composite,
    crop_mask,
    eye_mask,
    frame_shadow,
    grow_mask,
    match_colors,
    pin_chroma,
    tone_fill,
)
from eyeedit.editing.lenses import RING_KEEP_OUT, hole_with_rings
from eyeedit.geometry import (
    eye_openings,
    fit_crop_from_image,
    transform_points,
    unwarp_from_crop,
    warp_to_crop,
)
from eyeedit.landmarks import Face, FaceMeshDetector, FoundFace
from eyeedit.model.store import ModelFile, resolve
from eyeedit.regions import RegionSpec


@dataclass(frozen=True)
class EditOptions:
    """How the editor blends a translated crop back into a photo."""

    blend: str = "feather"  # feather | laplacian | poisson
    strength: float = 1.0  # 0 = no change, 1 = the generator's output inside the mask
    color_match: bool = False  # Reinhard colour transfer from the unedited ring
    max_faces: int | None = None  # edit at most this many faces (the largest); None = all
    face_index: int | None = None  # edit only this face (left to right), else every face
    min_eye_distance: float = MIN_EYE_DISTANCE  # pixels: smaller faces are skipped as too small
    max_yaw: float = MAX_YAW  # degrees of head turn (Face.yaw) beyond which a face is skipped
    mask: str | None = None  # eyes | eyes-brows | crop; None = the model's or the region's default
    adaptive: bool = True  # keep the photo's own pixels wherever the generator changed nothing
    frame_shadow: bool = True  # a model that adds a frame: the frame casts its shadow on the skin

    def __post_init__(self) -> None:
        if not 0 <= self.strength <= 1:
            raise ValueError(f"strength must be between 0 and 1, got {self.strength}")
        if self.blend not in BLEND_MODES:  # here, not face by face halfway through a photo
            raise ValueError(f"unknown blend mode {self.blend!r}; choose one of {', '.join(BLEND_MODES)}")
        if self.mask is not None and self.mask not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {self.mask!r}; choose one of {', '.join(MASK_KINDS)}")
        if self.max_faces is not None and self.max_faces < 1:
            raise ValueError(f"max faces must be >= 1, got {self.max_faces}")
        if self.min_eye_distance <= 0 or self.max_yaw <= 0:
            raise ValueError("min eye distance and max yaw must be positive")
        if self.face_index is not None and self.face_index < 0:
            raise ValueError(f"face index must be >= 0, got {self.face_index}")


# (N, H, W, 3) uint8 RGB crops in, the same shape out.
Translator = Callable[[np.ndarray], np.ndarray]


@dataclass
class FaceEdit:
    """One face's intermediate results (crop space), for debugging and `--save-crops`."""

    face: Face
    crop_from_image: np.ndarray  # (2, 3)
    crop_in: np.ndarray  # (h, w, 3) uint8
    crop_out: np.ndarray | None = None  # (h, w, 3) uint8, after colour matching
    mask: np.ndarray | None = None  # (h, w) float32 in [0, 1]
    index: int = 0  # the face's place among the faces found, left to right (as face_index)
    alpha: np.ndarray | None = None  # (h, w) where a model that predicts it says it edits
    hole: np.ndarray | None = None  # (h, w) in {0, 1}: what a fill generator erased and painted
    reused_hole: bool = False  # the hole was handed in (an earlier frame's), not found again


@dataclass(frozen=True)
class SkippedFace:
    """A face found but not edited: its place left to right (as ``face_index``), a one-line
    reason, and its box ``(x0, y0, x1, y1)`` in photo pixels."""

    index: int
    reason: str
    box: tuple[float, float, float, float]

    def describe(self) -> str:
        return f"face {self.index}: {self.reason}, skipped"


@dataclass
class EditResult:
    """What :meth:`Editor.run` returns: the edited photo, each edited face's crops and masks,
    per-stage timings, and the faces found but left unedited, with their reasons."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, the edited photo
    faces: list[FaceEdit] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    skipped: list[SkippedFace] = field(default_factory=list)
    found: int = 0  # faces found in the photo, edited or not


@dataclass(frozen=True, eq=False)
class _Candidate:
    """A face found (or handed in), before the editor decides whether to edit it."""

    index: int
    face: Face | None
    problem: str  # "" when the face can be edited
    box: tuple[float, float, float, float]
    transform: np.ndarray | None = None  # the caller's crop_from_image, if any

    @classmethod
    def from_found(cls, index: int, found: FoundFace) -> _Candidate:
        problem = "no landmarks found" if found.mesh is None else (
            f"landmarks not reliable ({found.problem})" if found.problem else "")
        box = tuple(float(v) for v in found.detection.box)
        return cls(index, found.face, problem, box)  # type: ignore[arg-type]


class _Clock:
    """Accumulates wall time per stage in milliseconds."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self._t) * 1000
        self._t = now


class Editor:
    """Edits every face in a photo with one effect model."""

    def __init__(self, translate: Translator, region: RegionSpec, options: EditOptions = EditOptions(),
                 mask_kind: str | None = None, detector: FaceMeshDetector | None = None,
                 name: str = "effect", frame_color: str | None = None,
                 frame_shadow: dict[str, float] | None = None):
        self.translate = translate
        self.region = region
        self.options = options
        self._model_mask = mask_kind  # the model's own, for with_options
        self.mask_kind = options.mask or mask_kind or DEFAULT_MASK[region.name]
        self.name = name
        # ``#rrggbb`` of the one colour a model with alpha was trained to paint (its data pinned
        # it): what it paints gets that hue, keeping its own shading.
        self.frame_color = frame_color
        # The shadow its data's frames cast (``strength``, ``angle``, ``offset``, ``softness``;
        # see :func:`frame_shadow`): the editor casts it from the frame the model draws, since
        # the model itself learned only a faint halo of it.
        self.frame_shadow = frame_shadow
        self._detector = detector

    @classmethod
    def load(cls, model: str | os.PathLike | ModelFile, *, backend: str = "auto", device: str = "cpu",
             options: EditOptions = EditOptions(), spin: bool = True) -> Editor:
        """An editor for an effect name (looked up in the model stores), a model file path, or a
        :class:`ModelFile` already resolved. Raises ModelError with a one-line message.
        ``spin=False`` keeps ONNX Runtime's idle threads from spinning (cores shared with others)."""
        model_file = model if isinstance(model, ModelFile) else resolve(model)
        translate = load_translator(model_file, backend=backend, device=device, spin=spin)
        data = model_file.metadata.get("data")
        data = data if isinstance(data, dict) else {}
        return cls(translate, model_file.region, options, mask_kind=model_file.metadata.get("mask"),
                   name=model_file.effect, frame_color=data.get("frame_color"),
                   frame_shadow=data.get("frame_shadow"))

    def with_options(self, options: EditOptions) -> Editor:
        """A new editor for the same model (its generator shared, not loaded again) with other
        options; everything the model file told :meth:`load` is kept (mask, frame colour and
        shadow). The detector is not shared: each editor may run in its own thread."""
        return Editor(self.translate, self.region, options, mask_kind=self._model_mask, name=self.name,
                      frame_color=self.frame_color, frame_shadow=self.frame_shadow)

    @property
    def detector(self) -> FaceMeshDetector:
        if self._detector is None:
            self._detector = FaceMeshDetector(video=False, min_eye_distance=self.options.min_eye_distance)
        return self._detector

    def edit(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB photo -> the edited photo (unchanged if no face is found)."""
        return self.run(image).image

    def run(self, image: np.ndarray, faces: list[Face] | None = None,
            transforms: list[np.ndarray] | None = None,
            holes: list[np.ndarray | None] | None = None) -> EditResult:
        """The whole composition with per-stage timings. ``faces`` skips detection; ``transforms``
        (one crop_from_image per face, e.g. smoothed by the video preview) skips the fit.
        ``holes`` (one per face, or None) are a fill generator's holes from an earlier frame in
        those same crops: when every face edited has one, the generator only fills them (one
        pass instead of two); each ``FaceEdit.hole`` says what was used.
        Faces found but not edited are listed in ``EditResult.skipped`` with the reason."""
        clock = _Clock()
        # 1. detect, and set aside the faces that cannot be edited well
        candidates = self._candidates(image, faces, transforms)
        chosen, skipped = self._triage(candidates)
        clock.lap("detect")
        if not chosen:
            return EditResult(image.copy(), [], clock.ms, skipped, len(candidates))
        # 2. align
        edits = self._align(image, chosen)
        clock.lap("align")
        # 3. translate, all faces in one batch
        outputs, alphas = self._translate(edits, holes)
        clock.lap("generator")
        # 4 + 5. un-warp and blend, face by face
        result = image.copy()
        for i, (e, out) in enumerate(zip(edits, outputs)):
            self.blend_face(result, e, out, None if alphas is None else alphas[i])
        clock.lap("blend")
        return EditResult(result, edits, clock.ms, skipped, len(candidates))

    def _translate(self, edits: list[FaceEdit], holes: list[np.ndarray | None] | None,
                   ) -> tuple[np.ndarray, np.ndarray | None]:
        crops = np.stack([e.crop_in for e in edits])
        if not getattr(self.translate, "fills", False):
            return translate_with_alpha(self.translate, crops)
        given = [holes[e.index] if holes is not None and e.index < len(holes) else None for e in edits]
        reuse = all(h is not None for h in given)
        outputs, alphas, found = self.translate.with_hole(crops, np.stack(given) if reuse else self._holes(edits, crops))
        for i, (e, hole) in enumerate(zip(edits, found)):
            e.hole, e.reused_hole = hole, reuse
            outputs[i] = tone_fill(outputs[i], e.crop_in, hole)
        return outputs, alphas

    def _holes(self, edits: list[FaceEdit], crops: np.ndarray) -> np.ndarray:
        """A fill generator's holes for ``crops``: its first pass's, with the lens outlines it
        half-sees around each face's eyes (:func:`hole_with_rings`). The outlines leave out the
        face's eye openings and the template's, which the generator itself never erases."""
        found, holes = self.translate.find_hole(crops)
        size = (crops.shape[2], crops.shape[1])
        template = eye_openings(self.region) > 0.5
        for i, e in enumerate(edits):
            points = transform_points(e.crop_from_image, e.face.points)
            keep_out = (grow_mask(eye_mask(points, size), RING_KEEP_OUT) > 0.5) | template
            eyes = transform_points(e.crop_from_image, e.face.iris_centers)
            holes[i] = hole_with_rings(found[i], holes[i], eyes, keep_out, crops[i])
        return holes

    def _candidates(self, image: np.ndarray, faces: list[Face] | None,
                    transforms: list[np.ndarray] | None) -> list[_Candidate]:
        if faces is None:
            return [_Candidate.from_found(i, f) for i, f in enumerate(self.detector.find(image))]
        if transforms is not None and len(transforms) != len(faces):
            raise ValueError(f"{len(faces)} faces but {len(transforms)} transforms")
        return [_Candidate(i, f, "", f.bbox, transforms[i] if transforms is not None else None)
                for i, f in enumerate(faces)]

    def _triage(self, candidates: list[_Candidate]) -> tuple[list[_Candidate], list[SkippedFace]]:
        """(faces to edit, faces skipped with reasons): ``face_index`` picks one face; unreliable,
        too small or turned faces are skipped; beyond ``max_faces`` the smallest are skipped."""
        opts = self.options
        if opts.face_index is not None:
            candidates = [c for c in candidates if c.index == opts.face_index]
        chosen, skipped = [], []
        for c in candidates:
            reason = c.problem or self._unsuitable(c.face)  # type: ignore[arg-type]
            if reason:
                skipped.append(SkippedFace(c.index, reason, c.box))
            else:
                chosen.append(c)
        if opts.max_faces is not None and len(chosen) > opts.max_faces:
            by_size = sorted(chosen, key=lambda c: -c.face.eye_distance)  # type: ignore[union-attr]
            for c in by_size[opts.max_faces :]:
                skipped.append(SkippedFace(c.index, f"beyond the {opts.max_faces} largest faces", c.box))
            chosen = sorted(by_size[: opts.max_faces], key=lambda c: c.index)
        return chosen, sorted(skipped, key=lambda s: s.index)

    def _unsuitable(self, face: Face) -> str:
        """Why the model cannot edit this face well, or ""."""
        opts = self.options
        if face.eye_distance < opts.min_eye_distance:
            return f"face too small (eyes {face.eye_distance:.1f} px apart, needs {opts.min_eye_distance:g})"
        if abs(face.yaw) > opts.max_yaw:
            return f"head turned {face.yaw:+.0f} degrees (limit {opts.max_yaw:g})"
        return ""

    def _align(self, image: np.ndarray, chosen: list[_Candidate]) -> list[FaceEdit]:
        spec = self.region
        edits = []
        for c in chosen:
            face = c.face
            assert face is not None  # chosen faces have landmarks
            m = c.transform if c.transform is not None else fit_crop_from_image(face.eye_corners, spec)
            edits.append(FaceEdit(face, m, warp_to_crop(image, m, spec.size), index=c.index))
        return edits

    def blend_face(self, result: np.ndarray, e: FaceEdit, generated: np.ndarray,
                   alpha: np.ndarray | None = None) -> None:
        """Blend one translated crop into ``result`` in place (only its bounding box).

        ``alpha`` is the (h, w) mask of a model that predicts where it edits: the blend mask is
        multiplied by it, so photo pixels where alpha is about 0 stay exactly as they were.
        """
        pts = transform_points(e.crop_from_image, e.face.points) if self.mask_kind != "crop" else None
        mask = crop_mask(pts, self.region, self.mask_kind)
        e.alpha = alpha
        if alpha is not None:
            mask = mask * alpha_mask(alpha, self.region)
            if self.frame_color:
                generated = pin_chroma(generated, e.crop_in, alpha, self.frame_color)
        e.crop_out = match_colors(generated, e.crop_in, mask) if self.options.color_match else generated
        if self.options.adaptive:
            mask = mask * change_weight(e.crop_out, e.crop_in, self.region)
        e.mask = mask * self.options.strength
        patch, coverage, (x0, y0, x1, y1) = unwarp_from_crop(e.crop_out, e.crop_from_image, result.shape)
        if patch.size == 0:
            return
        alpha, _, _ = unwarp_from_crop(e.mask, e.crop_from_image, result.shape)
        alpha = np.clip(alpha * coverage, 0, 1)
        box = result[y0:y1, x0:x1]
        result[y0:y1, x0:x1] = composite(box, patch, alpha, self.options.blend)
        if e.alpha is not None and self.frame_shadow and self.options.frame_shadow:
            self._cast_shadow(result, e)

    def _cast_shadow(self, result: np.ndarray, e: FaceEdit) -> None:
        """Darken ``result`` in place under the frame ``e`` drew, in the photo's own pixels
        (the crop is a resampled copy: pasting it would soften the skin the shadow falls on)."""
        assert e.alpha is not None and self.frame_shadow is not None
        eyes = transform_points(e.crop_from_image, e.face.eye_centers)
        dark = frame_shadow(e.alpha, eyes, self.frame_shadow) * self.options.strength
        shade, coverage, (x0, y0, x1, y1) = unwarp_from_crop(dark, e.crop_from_image, result.shape)
        if shade.size == 0:
            return
        keep = 1 - np.clip(shade * coverage, 0, 1)[..., None]
        result[y0:y1, x0:x1] = np.clip(np.rint(result[y0:y1, x0:x1] * keep), 0, 255).astype(np.uint8)
