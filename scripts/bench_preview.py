"""Frames per second of `eyeedit preview` on generated clips, per built-in model and frame size.

    python scripts/bench_preview.py                          # every shipped model, 640x480 and 1280x720
    python scripts/bench_preview.py --effects glasses --sizes 640x480 --frames 300

Each clip is the sample face drifting (eyeedit.data.samples.moving_face_video) at a webcam-like scale;
the preview runs headless and processes every frame (no-sync), so the figure is the sustained
end-to-end rate: Face Mesh tracking, smoothing, alignment, the generator, un-warp and blend,
and the BGR/RGB conversions. Prints a table; --json FILE also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2

from eyeedit.editing.editor import EditOptions

from eyeedit.regions import parse_size
from eyeedit.editing.editor import Editor
from eyeedit.editing.preview import PreviewConfig, run_preview
from eyeedit.data.samples import astronaut, moving_face_video, write_video
from eyeedit.model.store import list_models


def clip(size: tuple[int, int], frames: int, folder: Path) -> Path:
    w, h = size
    face = cv2.resize(astronaut(), (round(512 * h / 480), round(512 * h / 480)))  # face ~ 1/3 of the height
    shots, _ = moving_face_video(face, frames, size=size, motion=0.5)
    return write_video(folder / f"clip_{w}x{h}.avi", shots, fps=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--effects", default=None, help="comma-separated effect names [default: shipped]")
    parser.add_argument("--sizes", default="640x480,1280x720")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    shipped = sorted(e.effect for e in list_models() if e.source == "package")
    effects = args.effects.split(",") if args.effects else shipped
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (parse_size(s) for s in args.sizes.split(",")):
            video = clip(size, args.frames, Path(tmp))
            for effect in effects:
                editor = Editor.load(effect, backend=args.backend, options=EditOptions(max_faces=1))
                stats = run_preview(editor, PreviewConfig(video=video, headless=True, sync=False))
                per_frame = {k: v / stats.frames for k, v in stats.stage_ms.items()}
                rows.append({"effect": effect, "size": f"{size[0]}x{size[1]}", "fps": stats.fps,
                             "frames": stats.frames, **{f"{k}_ms": v for k, v in per_frame.items()}})
                stages = "  ".join(f"{k} {v:5.1f}" for k, v in per_frame.items())
                print(f"{effect:11s} {size[0]}x{size[1]:<5d} {stats.fps:6.1f} FPS   ms/frame: {stages}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
