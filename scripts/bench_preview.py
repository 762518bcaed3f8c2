"""Frames per second of `eyeedit preview` on generated clips, per built-in model, frame size and
number of faces.

    python scripts/bench_preview.py                          # every shipped model, 640x480 and 1280x720
    python scripts/bench_preview.py --effects glasses --sizes 640x480 --faces 1,3 --frames 300

Each clip is the sample face drifting (eyeedit.data.samples.moving_face_video) at a webcam-like
scale, or with --faces N, N sample heads side by side drifting together; the preview runs
headless and processes every frame (no-sync), so the figure is the sustained end-to-end rate:
face detection (every 10 frames) and landmark tracking, smoothing, alignment, the generator,
un-warp and blend, and the BGR/RGB conversions. Prints a table; --json FILE also writes the
figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from eyeedit.data.samples import astronaut, astronaut_head, moving_face_video, write_video
from eyeedit.editing.editor import EditOptions, Editor
from eyeedit.editing.preview import PreviewConfig, run_preview
from eyeedit.model.store import list_models
from eyeedit.regions import parse_size


def clip(size: tuple[int, int], frames: int, folder: Path, faces: int = 1) -> Path:
    w, h = size
    if faces == 1:
        scene = cv2.resize(astronaut(), (round(512 * h / 480), round(512 * h / 480)))  # face ~ 1/3 of the height
    else:  # heads side by side across the middle of the frame
        side = min(h // 2, w // faces - 20)
        head = cv2.resize(astronaut_head(), (side, side), interpolation=cv2.INTER_AREA)
        scene = np.full((h, w, 3), 170, np.uint8)
        for i in range(faces):
            x = round((i + 0.5) * w / faces - side / 2)
            scene[(h - side) // 2 : (h + side) // 2, x : x + side] = head
    shots, _ = moving_face_video(scene, frames, size=size, motion=0.5)
    return write_video(folder / f"clip_{w}x{h}_{faces}.avi", shots, fps=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--effects", default=None, help="comma-separated effect names [default: shipped]")
    parser.add_argument("--sizes", default="640x480,1280x720")
    parser.add_argument("--faces", default="1", help="comma-separated face counts per clip [default: 1]")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    shipped = sorted(e.effect for e in list_models() if e.source == "package")
    effects = args.effects.split(",") if args.effects else shipped
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (parse_size(s) for s in args.sizes.split(",")):
            for faces in (int(n) for n in args.faces.split(",")):
                video = clip(size, args.frames, Path(tmp), faces)
                for effect in effects:
                    rows.append(_run(effect, args.backend, video, size, faces))

    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def _run(effect: str, backend: str, video: Path, size: tuple[int, int], faces: int) -> dict:
    editor = Editor.load(effect, backend=backend, options=EditOptions(max_faces=faces))
    stats = run_preview(editor, PreviewConfig(video=video, headless=True, sync=False))
    per_frame = {k: v / stats.frames for k, v in stats.stage_ms.items()}
    stages = "  ".join(f"{k} {v:5.1f}" for k, v in per_frame.items())
    seen = stats.faces / max(stats.frames, 1)
    print(f"{effect:11s} {size[0]}x{size[1]:<5d} {faces} face(s) ({seen:.2f} edited/frame) {stats.fps:6.1f} FPS"
          f"   ms/frame: {stages}", flush=True)
    return {"effect": effect, "size": f"{size[0]}x{size[1]}", "faces": faces, "faces_per_frame": seen,
            "fps": stats.fps, "frames": stats.frames, **{f"{k}_ms": v for k, v in per_frame.items()}}


if __name__ == "__main__":
    main()
