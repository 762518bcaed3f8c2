"""How many faces the detector finds in crowded group pictures, by face size, and at what cost.

    python scripts/detect_recall.py --faces DIR                 # 12 pictures, 1920x1280
    python scripts/detect_recall.py --faces DIR --pictures 4 --json out.json

Each picture packs real portraits (every image under DIR, e.g. a folder of passport-style
photos; names listed in --exclude are left out) at four tile widths, 340, 240, 170 and 120 px,
in a random order, like a class photo. A face counts as found when a reliable mesh (one that
passed the plausibility check) has its eye midpoint inside the tile. Prints, per tile width,
the eye distance in the picture, the faces placed and the share found, then the median
detection time per picture and the detector calls it made.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from eyeedit.data.samples import group_photo
from eyeedit.detection import scan_scale, scan_windows
from eyeedit.imageio import read_image
from eyeedit.landmarks import FaceMeshDetector

WIDTHS = (340, 240, 170, 120)


def pictures(paths: list[Path], count: int, size: tuple[int, int], seed: int) -> list[tuple[np.ndarray, list, list]]:
    """``count`` pictures: (image, tile boxes, tile widths)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        widths = [int(w) for w in rng.choice(WIDTHS, size=60)]
        chosen = rng.choice(len(paths), size=len(widths), replace=False)
        tiles = [read_image(paths[i]) for i in chosen]
        image, boxes = group_photo(tiles, widths, size)
        out.append((image, boxes, widths[: len(boxes)]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, required=True, help="folder of portraits (searched recursively)")
    ap.add_argument("--exclude", type=Path, help="file of image names to leave out, one per line")
    ap.add_argument("--pictures", type=int, default=12)
    ap.add_argument("--size", default="1920x1280")
    ap.add_argument("--min-eye-distance", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    skip = set(args.exclude.read_text().split()) if args.exclude else set()
    paths = sorted(p for p in args.faces.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
                   and p.name not in skip)
    w, h = (int(v) for v in args.size.split("x"))
    detector = FaceMeshDetector(min_eye_distance=args.min_eye_distance)
    placed = dict.fromkeys(WIDTHS, 0)
    found = dict.fromkeys(WIDTHS, 0)
    eyes: dict[int, list[float]] = {wd: [] for wd in WIDTHS}
    times = []
    for image, boxes, widths in pictures(paths, args.pictures, (w, h), args.seed):
        t0 = time.perf_counter()
        faces = [f.face for f in detector.find(image) if f.face is not None]
        times.append((time.perf_counter() - t0) * 1000)
        mids = np.array([f.eye_centers.mean(axis=0) for f in faces]).reshape(-1, 2)
        for (x0, y0, x1, y1), wd in zip(boxes, widths):
            placed[wd] += 1
            inside = (mids[:, 0] >= x0) & (mids[:, 0] < x1) & (mids[:, 1] >= y0) & (mids[:, 1] < y1)
            if inside.any():
                found[wd] += 1
                eyes[wd].append(faces[int(np.argmax(inside))].eye_distance)
    detector.close()
    s = scan_scale(w, h)
    calls = 1 + len(scan_windows(round(w * s), round(h * s), args.min_eye_distance))
    rows = [{"tile_width": wd, "eye_distance_px": round(statistics.median(eyes[wd]), 1) if eyes[wd] else None,
             "placed": placed[wd], "found": found[wd], "recall": found[wd] / max(placed[wd], 1)} for wd in WIDTHS]
    print(f"{'tile':>5} {'eyes px':>8} {'placed':>7} {'found':>6} {'recall':>7}")
    for r in rows:
        print(f"{r['tile_width']:>5} {r['eye_distance_px'] or '-':>8} {r['placed']:>7} {r['found']:>6} {r['recall']:>7.1%}")
    total = sum(placed.values())
    print(f"all: {sum(found.values())}/{total}; detection {statistics.median(times):.0f} ms a picture "
          f"(median of {len(times)}), {calls} detector calls")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "median_ms": statistics.median(times), "calls": calls}, indent=2))


if __name__ == "__main__":
    main()
