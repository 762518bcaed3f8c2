"""What finding faces costs in pieces: one thread against two, and reading a JPEG with OpenCV
against Pillow.

    python scripts/bench_detection.py              # about a minute

Each pair is timed taking turns call by call (medians, milliseconds), so the ratio holds on a
busy machine. Frames are the benchmark's (`eyeedit.bench.bench_frame`) and its 29-face group
picture.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from eyeedit.bench import GROUP_SIZE, GROUP_WIDTHS, bench_frame, machine, measure_alternating
from eyeedit.data.samples import astronaut_head, group_photo
from eyeedit.imageio import read_image, write_image
from eyeedit.landmarks import FaceMeshDetector


def turns(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms of each case, the cases taking turns call by call after one warm-up each."""
    return {t.name: t.median_ms for t in measure_alternating(cases, repeats, warmup=1)}


def show(title: str, figures: dict[str, float]) -> None:
    print(title + ": " + ", ".join(f"{k} {v:.1f} ms" for k, v in figures.items()))


def threads() -> None:
    crowd, _ = group_photo([astronaut_head()], list(GROUP_WIDTHS), GROUP_SIZE)
    for name, image, repeats in (("640x480", bench_frame((640, 480)), 20),
                                 ("1920x1080", bench_frame((1920, 1080)), 6),
                                 ("1920x1280 group of 29", crowd, 4)):
        with FaceMeshDetector(threads=1) as one, FaceMeshDetector(threads=2) as two:
            show(f"every face in {name}", turns({"1 thread": lambda: one.find(image),
                                                 "2 threads": lambda: two.find(image)}, repeats))


def jpeg_reads() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_image(Path(tmp) / "frame.jpg", bench_frame((1920, 1080)))

        def pillow() -> np.ndarray:
            with Image.open(path) as img:
                return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))

        show("reading a 1920x1080 JPEG", turns({"read_image": lambda: read_image(path),
                                                "Pillow (decode, orient, RGB)": pillow}, 20))


def main() -> None:
    m = machine()
    print(f"{m['cpu']}, {m['cores']} cores, {m['date']}")
    threads()
    jpeg_reads()


if __name__ == "__main__":
    main()
