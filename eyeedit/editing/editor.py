"""Inference: the one composition used by `apply`, `preview` and the Python API.

    1. detect faces             (Face Mesh, or faces/transforms handed in by the caller)
    2. align each face          (similarity to the model's own region template, warp the crop)
    3. translate all crops      (one batch through the generator backend)
    4. un-warp each result      (only the crop's bounding box of the photo is touched)
    5. blend                    (mask from the effect's region, optional colour matching)

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

from eyeedit.editing.backends import load_translator
from eyeedit.editing.blending import DEFAULT_MASK, change_weight, composite, crop_mask, match_colors
from eyeedit.geometry import fit_crop_from_image, transform_points, unwarp_from_crop, warp_to_crop
from eyeedit.landmarks import Face, FaceMeshDetector
from eyeedit.model.store import ModelFile, resolve
from eyeedit.regions import RegionSpec


@dataclass(frozen=True)
class EditOptions:
    """How the editor blends a translated crop back into a photo."""

    blend: str = "feather"  # feather | laplacian | poisson
    strength: float = 1.0  # 0 = no change, 1 = the generator's output inside the mask
    color_match: bool = False  # Reinhard colour transfer from the unedited ring
    max_faces: int = 4
    face_index: int | None = None  # edit only this face (left to right), else every face
    mask: str | None = None  # eyes | eyes-brows | crop; None = the model's or the region's default
    adaptive: bool = True  # keep the photo's own pixels wherever the generator changed nothing

    def __post_init__(self) -> None:
        if not 0 <= self.strength <= 1:
            raise ValueError(f"strength must be between 0 and 1, got {self.strength}")
        if self.max_faces < 1:
            raise ValueError(f"max faces must be >= 1, got {self.max_faces}")
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


@dataclass
class EditResult:
    image: np.ndarray  # (H, W, 3) uint8 RGB, the edited photo
    faces: list[FaceEdit] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


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
                 name: str = "effect"):
        self.translate = translate
        self.region = region
        self.options = options
        self.mask_kind = options.mask or mask_kind or DEFAULT_MASK[region.name]
        self.name = name
        self._detector = detector

    @classmethod
    def load(cls, model: str | os.PathLike | ModelFile, *, backend: str = "auto", device: str = "cpu",
             options: EditOptions = EditOptions()) -> Editor:
        """An editor for an effect name (looked up in the model stores), a model file path, or a
        :class:`ModelFile` already resolved. Raises ModelError with a one-line message."""
        model_file = model if isinstance(model, ModelFile) else resolve(model)
        translate = load_translator(model_file, backend=backend, device=device)
        return cls(translate, model_file.region, options, mask_kind=model_file.metadata.get("mask"),
                   name=model_file.effect)

    @property
    def detector(self) -> FaceMeshDetector:
        if self._detector is None:
            self._detector = FaceMeshDetector(max_faces=self.options.max_faces, video=False)
        return self._detector

    def edit(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB photo -> the edited photo (unchanged if no face is found)."""
        return self.run(image).image

    def run(self, image: np.ndarray, faces: list[Face] | None = None,
            transforms: list[np.ndarray] | None = None) -> EditResult:
        """The whole composition with per-stage timings. ``faces`` skips detection; ``transforms``
        (one crop_from_image per face, e.g. smoothed by the video preview) skips the fit."""
        clock = _Clock()
        # 1. detect
        if faces is None:
            faces = self.detector.detect(image)
        faces = self._select(faces)
        clock.lap("detect")
        if not faces:
            return EditResult(image.copy(), [], clock.ms)
        # 2. align
        edits = self._align(image, faces, transforms)
        clock.lap("align")
        # 3. translate, all faces in one batch
        outputs = self.translate(np.stack([e.crop_in for e in edits]))  # (N, h, w, 3)
        clock.lap("generator")
        # 4 + 5. un-warp and blend, face by face
        result = image.copy()
        for e, out in zip(edits, outputs):
            self.blend_face(result, e, out)
        clock.lap("blend")
        return EditResult(result, edits, clock.ms)

    def _select(self, faces: list[Face]) -> list[Face]:
        idx = self.options.face_index
        if idx is not None:
            return [faces[idx]] if idx < len(faces) else []
        return faces[: self.options.max_faces]

    def _align(self, image: np.ndarray, faces: list[Face],
               transforms: list[np.ndarray] | None) -> list[FaceEdit]:
        spec = self.region
        edits = []
        for i, face in enumerate(faces):
            m = transforms[i] if transforms is not None else fit_crop_from_image(face.eye_corners, spec)
            edits.append(FaceEdit(face, m, warp_to_crop(image, m, spec.size)))
        return edits

    def blend_face(self, result: np.ndarray, e: FaceEdit, generated: np.ndarray) -> None:
        """Blend one translated crop into ``result`` in place (only its bounding box)."""
        pts = transform_points(e.crop_from_image, e.face.points) if self.mask_kind != "crop" else None
        mask = crop_mask(pts, self.region, self.mask_kind)
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
