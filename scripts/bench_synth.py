"""Benchmark `eyeedit synth`: faces per second on one core for each effect.

Usage: python scripts/bench_synth.py [--faces N] [--folder ../shared/faces/london/neutral]

Runs in this one process (one core) over N London photos (800x800) and reports, per effect:
* render: drawing the effect on the full-resolution photo alone (landmarks given);
* end-to-end: read the photo, detect the face, render, crop A and B, write both PNGs
  (what one `synth` worker does per face).
The target is >= 10 faces/s per core for each effect.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from eyeedit.data.effects import EFFECTS
from eyeedit.data.synth import Photo, SynthConfig, _work, default_region, variant_rng
from eyeedit.imageio import find_images, read_image
from eyeedit.landmarks import detect_faces, largest_face

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "faces" / "london" / "neutral"


def bench_render(effect: str, photos: list[tuple[np.ndarray, object]], repeats: int) -> float:
    """Faces per second of sample + render alone."""
    spec = EFFECTS[effect]
    config = SynthConfig(effect=effect)
    start = time.perf_counter()
    for r in range(repeats):
        for i, (image, face) in enumerate(photos):
            spec.render(image, face, spec.sample(variant_rng(r, str(i), 0), face, config.pins))
    return repeats * len(photos) / (time.perf_counter() - start)


def bench_end_to_end(effect: str, paths: list[Path]) -> float:
    """Faces per second of one synth worker: read, detect, render, crop, write."""
    config = SynthConfig(effect=effect, region=default_region(effect))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        for p in paths:
            records = _work(Photo(p.stem, p.stem, p), config, Path(out))
            assert records[0]["status"] == "ok", records[0]
        return len(paths) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    args = parser.parse_args()
    if not args.folder.is_dir():
        raise SystemExit(f"{args.folder}: no such folder (the shared London faces are needed)")
    paths = find_images(args.folder)[: args.faces]
    photos = []
    for p in paths:
        image = read_image(p)
        photos.append((image, largest_face(detect_faces(image, max_faces=1))))
    h, w = photos[0][0].shape[:2]
    print(f"{len(paths)} faces {w}x{h} from {args.folder}, 1 process, load {os.getloadavg()[0]:.2f}")
    print(f"{'effect':10} {'render faces/s':>15} {'end-to-end faces/s':>19}")
    for effect in EFFECTS:
        render = bench_render(effect, photos, args.repeats)
        e2e = bench_end_to_end(effect, paths)
        print(f"{effect:10} {render:15.1f} {e2e:19.1f}")


if __name__ == "__main__":
    main()
