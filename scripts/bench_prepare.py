"""Benchmark `eyeedit prepare` on the London set: pairs/s end to end, and where the time goes.

Usage: python scripts/bench_prepare.py [--workers 2] [--faces ../shared/faces/london] [--profile]

Builds a raw/ folder of links (before -> neutral, after -> smiling) in a temporary folder, runs
the library's prepare() with a fresh output folder, and prints pairs/s including the worker
start-up (each worker builds its own Face Mesh graph). ``--profile`` also times each stage in
this process, one photo at a time. Target: >= 20 pairs/s of 800x800 photos on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from eyeedit.data.prepare import PrepareConfig, prepare
from eyeedit.geometry import fit_crop_from_image, warp_to_crop
from eyeedit.imageio import find_images, read_image, write_image
from eyeedit.landmarks import detect_faces

DEFAULT_FACES = Path(__file__).resolve().parents[2] / "shared" / "faces" / "london"


def make_raw(faces: Path, folder: Path) -> Path:
    raw = folder / "raw"
    raw.mkdir()
    os.symlink(faces / "neutral", raw / "before")
    os.symlink(faces / "smiling", raw / "after")
    return raw


def end_to_end(raw: Path, out: Path, workers: int) -> float:
    """Wall-clock pairs/s, worker start-up included (other programs on the machine slow it)."""
    n = len(find_images(raw / "before"))
    start = time.perf_counter()
    info = prepare(raw, out, PrepareConfig(), workers=workers)
    seconds = time.perf_counter() - start
    ok = info["statuses"].get("ok", 0)
    print(f"{n} pairs ({ok} ok) in {seconds:.2f} s with {workers} workers: "
          f"{n / seconds:.1f} pairs/s")
    return n / seconds


def profile(raw: Path, out: Path) -> None:
    """Milliseconds per photo for each stage, in this process (detector already built)."""
    config = PrepareConfig()
    paths = find_images(raw / "before")[:30] + find_images(raw / "after")[:30]
    detect_faces(read_image(paths[0]), config.max_faces)  # build the graph outside the timing
    times = {"read": [], "face mesh": [], "align+warp": [], "png write": []}
    for i, path in enumerate(paths):
        t0 = time.perf_counter()
        image = read_image(path)
        t1 = time.perf_counter()
        face = detect_faces(image, config.max_faces)[0]
        t2 = time.perf_counter()
        crop_from_image = fit_crop_from_image(face.eye_corners, config.region)
        crop = warp_to_crop(image, crop_from_image, config.region.size)
        t3 = time.perf_counter()
        write_image(out / f"{i}.png", crop)
        t4 = time.perf_counter()
        for name, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[name].append(dt * 1000)
    total = sum(np.median(v) for v in times.values())
    for name, values in times.items():
        print(f"  {name:10s} {np.median(values):6.2f} ms/photo (median of {len(values)})")
    print(f"  total      {total:6.2f} ms/photo = {1000 / (2 * total):.1f} pairs/s per core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES)
    parser.add_argument("--profile", action="store_true", help="also time each stage")
    args = parser.parse_args()
    if not (args.faces / "neutral").is_dir():
        raise SystemExit(f"{args.faces}: London set not found (expected neutral/ and smiling/)")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        raw = make_raw(args.faces.resolve(), Path(tmp))
        end_to_end(raw, Path(tmp) / "pairs", args.workers)
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        if args.profile:
            (Path(tmp) / "profile").mkdir()
            profile(raw, Path(tmp) / "profile")


if __name__ == "__main__":
    main()
