"""Shared fixtures: the bundled astronaut, its detected face, and the shared real-face folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "faces"


def shared_faces(sub: str = "") -> Path:
    """Path into ../shared/faces, skipping the test with a reason when it is absent."""
    path = SHARED_FACES / sub
    if not path.exists():
        pytest.skip(f"real face photos not available ({path} is absent)")
    return path


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from eyeedit.data.samples import astronaut as load

    return load()


@pytest.fixture(scope="session")
def astronaut_face(astronaut):
    from eyeedit.landmarks import detect_faces

    faces = detect_faces(astronaut, max_faces=1)
    assert len(faces) == 1
    return faces[0]


@pytest.fixture(scope="session")
def big_face(astronaut):
    """The astronaut's head, upscaled 2x (eyes ~84 px apart, irises ~7 px in radius): (image, Face)."""
    import cv2

    from eyeedit.landmarks import detect_faces

    head = astronaut[20:240, 110:340]
    image = cv2.resize(head, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    faces = detect_faces(image, max_faces=1)
    assert len(faces) == 1
    return image, faces[0]
