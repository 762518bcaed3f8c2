"""`make demo`: run what exists of the pipeline on the bundled sample face and show it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import REGIONS
from .geometry import fit_crop_from_image, warp_to_crop
from .imageio import write_image
from .landmarks import detect_faces
from .samples import astronaut
from .viz import draw_face, fit_height, grid


@dataclass(frozen=True)
class DemoResult:
    files: list[Path]


def run_demo(out_dir: str | Path) -> DemoResult:
    """Detect and align the astronaut; write each region's crop, an overlay and a grid."""
    out = Path(out_dir)
    image = astronaut()
    faces = detect_faces(image, max_faces=1)
    if not faces:
        raise RuntimeError("Face Mesh found no face in the sample image")
    face = faces[0]
    files, crops = [], []
    for name, spec in REGIONS.items():
        crop_from_image = fit_crop_from_image(face.eye_corners, spec)
        crop = warp_to_crop(image, crop_from_image, spec.size)
        files.append(write_image(out / f"astronaut_{name}.png", crop))
        crops.append(fit_height(crop, 128))
        if name == "eyes":
            overlay = draw_face(image, face, crop_from_image, spec.size)
            files.append(write_image(out / "astronaut_landmarks.png", overlay))
    files.append(write_image(out / "astronaut_regions.png", grid([crops])))
    return DemoResult(files)
