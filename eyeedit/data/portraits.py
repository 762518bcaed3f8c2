"""Labelled real portraits: who wears glasses, who is held out, and their aligned crops.

The labelled set is laid out as the project's optional photo folder ``../shared/faces`` is: ``congress/*.jpg`` with
hand labels in ``congress/glasses.csv`` (``file,glasses`` with 1, 0 or ``?``), and the London set
``london/{neutral,smiling}/NNN.jpg``, where nobody wears glasses and the same file name is the
same person. A *person* id keeps a person's photos together in every split: for Congress the
member's id after the congress number (``118_M001226.jpg`` and ``119_M001226.jpg`` are one
member's portraits from two congresses), for London ``london/NNN``.

The held-out list (``pipelines/holdout.txt``) names people by file name, one a line, ``#``
starting a comment; a London name such as ``007.jpg`` stands for both photos of that person,
and a Congress member is listed with every portrait of them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from eyeedit.geometry import fit_crop_from_image, warp_to_crop
from eyeedit.imageio import read_image
from eyeedit.landmarks import detect_faces, largest_face
from eyeedit.regions import RegionSpec

LONDON_SIDES = ("neutral", "smiling")


@dataclass(frozen=True)
class Portrait:
    """One labelled photo: its path, its person id, whether they wear glasses, its collection."""

    path: Path
    person: str
    glasses: bool
    source: str  # "congress" or "london"


def labelled_portraits(root: str | Path) -> list[Portrait]:
    """Every labelled photo under a faces folder (Congress by its CSV, London as no glasses).

    Congress rows labelled ``?`` are left out. Raises FileNotFoundError when neither collection
    is there.
    """
    base = Path(root)
    found = _congress(base / "congress") + _london(base / "london")
    if not found:
        raise FileNotFoundError(f"{base}: no congress/glasses.csv or london/ photos found")
    return found


def _congress(folder: Path) -> list[Portrait]:
    labels = folder / "glasses.csv"
    if not labels.is_file():
        return []
    with open(labels, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [Portrait(folder / r["file"], congress_person(r["file"]), r["glasses"].strip() == "1",
                     "congress") for r in rows if r["glasses"].strip() in ("0", "1")]


def congress_person(name: str) -> str:
    """The member a Congress portrait shows: its file stem without the congress number
    (``119_M001226.jpg`` -> ``M001226``), so two congresses' portraits of one member are one
    person in every split."""
    number, sep, member = Path(name).stem.partition("_")
    return member if sep and number.isdigit() else Path(name).stem


def _london(folder: Path) -> list[Portrait]:
    return [Portrait(p, f"london/{p.stem}", False, "london")
            for side in LONDON_SIDES for p in sorted((folder / side).glob("*.jpg"))]


def read_holdout(path: str | Path) -> frozenset[str]:
    """The file names listed in a held-out list (see :func:`parse_name_list`)."""
    return parse_name_list(Path(path).read_text(encoding="utf-8"))


def parse_name_list(text: str) -> frozenset[str]:
    """The names in a name list, the format of the held-out, donor and exclusion lists: one
    file name a line, blank lines skipped, ``#`` starting a comment."""
    return frozenset(s for s in (line.split("#", 1)[0].strip() for line in text.splitlines()) if s)


def is_held_out(portrait: Portrait, holdout: frozenset[str]) -> bool:
    """True when the portrait's file name is on the held-out list."""
    return portrait.path.name in holdout


@dataclass(frozen=True)
class AlignedCrops:
    """Aligned crops of the portraits whose face was found.

    ``crops`` is (N, H, W, 3) uint8; ``portraits`` the N photos they come from, in order;
    ``missing`` the photos without a face (or unreadable), left out of ``crops``.
    """

    crops: np.ndarray
    portraits: list[Portrait]
    missing: list[Portrait]

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64: 1 = glasses."""
        return np.array([int(p.glasses) for p in self.portraits], np.int64)

    @property
    def persons(self) -> list[str]:
        return [p.person for p in self.portraits]


def align_portraits(portraits: list[Portrait], spec: RegionSpec,
                    size: tuple[int, int] | None = None) -> AlignedCrops:
    """Detect each photo's largest face and warp its ``spec`` crop; area-resize to ``size``.

    Cropping at the region's own size and then shrinking with area averaging keeps thin metal
    rims visible; warping straight to a small size would skip over them.
    """
    crops, kept, missing = [], [], []
    for p in portraits:
        crop = aligned_crop(read_image(p.path), spec)
        if crop is None:
            missing.append(p)
            continue
        crops.append(crop if size is None else cv2.resize(crop, size, interpolation=cv2.INTER_AREA))
        kept.append(p)
    shape = (0, *(size or spec.size)[::-1], 3)
    return AlignedCrops(np.stack(crops) if crops else np.zeros(shape, np.uint8), kept, missing)


def aligned_crop(image: np.ndarray, spec: RegionSpec) -> np.ndarray | None:
    """The ``spec`` crop (H, W, 3) uint8 of the largest face in ``image`` (None without one)."""
    face = largest_face(detect_faces(image))
    if face is None:
        return None
    return warp_to_crop(image, fit_crop_from_image(face.eye_corners, spec), spec.size)
