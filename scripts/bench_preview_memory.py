"""Resident memory of `eyeedit preview` over a long generated video: it must stay flat.

Writes a synthetic clip of the astronaut's face drifting (a 100-frame loop repeated, so the
clip is long without holding it in memory), builds a tiny random model file, and replays the
clip through the preview loop (headless, every frame, no real-time sync: what
`eyeedit preview --video CLIP --headless --no-sync` runs). The resident set size (VmRSS from
/proc/self/status) is sampled every ``--every`` frames; the report gives RSS after warm-up,
at the end, the peak, and the growth rate fitted over the post-warm-up samples.

    python scripts/bench_preview_memory.py                 # 5,000 frames at 640x480
    python scripts/bench_preview_memory.py --frames 1000   # quicker look

Linux only (reads /proc). Exit status 1 when RSS grows by more than ``--max-growth-mb``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

LOOP = 100  # frames in one cycle of the synthetic motion (it starts and ends at rest)


def rss_mb() -> float:
    """This process's resident set size in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024  # kB -> MiB
    raise RuntimeError("no VmRSS in /proc/self/status (not Linux?)")


def write_long_video(path: Path, frames: int, size: tuple[int, int], fps: float = 30.0) -> Path:
    """An MJPG .avi of ``frames`` frames: one ``LOOP``-frame cycle written over and over."""
    from eyeedit.data.samples import astronaut, moving_face_video

    cycle, _ = moving_face_video(astronaut(), LOOP, size=size, seed=0)
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range(frames):
        writer.write(cv2.cvtColor(cycle[i % LOOP], cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def tiny_model(path: Path) -> Path:
    """A random ngf=8 generator saved as a real model file (its output is noise; cost is real)."""
    import torch

    from eyeedit.model.networks import GeneratorConfig, build_generator
    from eyeedit.model.weights import save_generator
    from eyeedit.regions import region_spec

    torch.manual_seed(0)
    cfg, spec = GeneratorConfig(ngf=8, depth=5), region_spec("eyes")
    meta = {"effect": "bench", "generator": cfg.to_dict(), "region": spec.to_dict(), "size": list(spec.size)}
    return save_generator(path, build_generator(cfg).eval(), meta)


def measure(video: Path, model: Path, every: int, warmup: int,
            backend: str) -> tuple[list[tuple[int, float]], float]:
    """Replay ``video`` through the preview; returns (frames done, RSS MiB) samples taken while
    it runs, and the RSS once it has returned (capture, detector and threads released)."""
    from eyeedit.editing.editor import EditOptions, Editor
    from eyeedit.editing.preview import PreviewConfig, run_preview

    editor = Editor.load(model, backend=backend, options=EditOptions(max_faces=1))
    samples = [(0, rss_mb())]
    start = time.perf_counter()
    cap = cv2.VideoCapture(str(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()

    def on_frame(pv) -> None:  # pv: a Previewer
        n = pv.stats.frames
        if n % every == 0 or n == warmup or n == total:
            samples.append((n, rss_mb()))
            print(f"{n:6d} frames  RSS {samples[-1][1]:7.1f} MiB  {n / (time.perf_counter() - start):5.1f} FPS",
                  file=sys.stderr, flush=True)

    stats = run_preview(editor, PreviewConfig(video=video, headless=True, sync=False), on_frame=on_frame)
    print(f"{stats.frames} frames in {stats.seconds:.0f} s ({stats.fps:.1f} FPS), "
          f"{stats.faces} faces edited", file=sys.stderr)
    return samples, rss_mb()


def report(samples: list[tuple[int, float]], after_close: float, warmup: int) -> float:
    """Print the figures; returns the growth (MiB) from the end of warm-up to the end."""
    after = [(n, r) for n, r in samples if n >= warmup]
    n_end, r_end = samples[-1]
    r_warm = after[0][1]
    peak = max(r for n, r in after)
    slope = np.polyfit([n for n, _ in after], [r for _, r in after], 1)[0] * 1000 if len(after) > 2 else 0.0
    print(f"RSS at start             {samples[0][1]:8.1f} MiB")
    print(f"RSS after {warmup:>5} frames   {r_warm:8.1f} MiB (end of warm-up)")
    print(f"RSS after {n_end:>5} frames   {r_end:8.1f} MiB")
    print(f"peak after warm-up       {peak:8.1f} MiB")
    print(f"growth after warm-up     {r_end - r_warm:+8.1f} MiB (fitted {slope:+.2f} MiB per 1,000 frames)")
    print(f"RSS once preview returned {after_close:7.1f} MiB")
    return r_end - r_warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=5000, help="frames in the generated video")
    parser.add_argument("--size", default="640x480", help="frame size WxH")
    parser.add_argument("--warmup", type=int, default=300, help="frames before the baseline sample")
    parser.add_argument("--every", type=int, default=250, help="frames between RSS samples")
    parser.add_argument("--backend", choices=["auto", "torch"], default="auto", help="generator backend")
    parser.add_argument("--max-growth-mb", type=float, default=5.0, help="fail above this growth")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="eyeedit-mem-") as tmp:
        root = Path(tmp)
        os.environ["XDG_CACHE_HOME"] = str(root / "cache")  # the ONNX export cache stays in tmp
        t0 = time.perf_counter()
        video = write_long_video(root / "clip.avi", args.frames, (w, h))
        print(f"wrote {args.frames} frames of {w}x{h} in {time.perf_counter() - t0:.0f} s "
              f"({video.stat().st_size / 2**20:.0f} MiB)", file=sys.stderr)
        samples, after_close = measure(video, tiny_model(root / "bench.safetensors"), args.every,
                                       args.warmup, args.backend)
    growth = report(samples, after_close, args.warmup)
    return 0 if growth <= args.max_growth_mb else 1


if __name__ == "__main__":
    sys.exit(main())
