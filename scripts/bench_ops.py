"""Single operations behind two training speed-ups and one editing step, each timed against
what it replaced.

    python scripts/bench_ops.py

- batch norm backward on a dense gradient against the strided channel slice a skip
  concatenation hands back (bf16, channels_last, 8x16x64x128): what `dense_skip_grads` avoids;
- `max_filter` against `F.max_pool2d` (5x5, stride 1) on one-channel 8x1x128x256 masks;
- a removal model's lens outline search (`hole_with_rings`) on one 256x128 crop with the
  photo's thin lines against without them (first-pass alpha and crop drawn at random).

Medians of repeated runs in milliseconds, on this machine's default threads.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from eyeedit.editing.lenses import hole_with_rings
from eyeedit.model.networks import max_filter


def median_ms(fn: Callable[[], object], repeats: int = 50) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def batch_norm_figures() -> tuple[float, float]:
    cl = torch.channels_last
    x = torch.randn(8, 16, 64, 128).bfloat16().contiguous(memory_format=cl).requires_grad_(True)
    bn = torch.nn.BatchNorm2d(16)
    joined = torch.randn(8, 32, 64, 128).bfloat16().contiguous(memory_format=cl)
    dense, strided = joined[:, :16].contiguous(memory_format=cl), joined[:, :16]
    return (median_ms(lambda: bn(x).backward(dense), 20), median_ms(lambda: bn(x).backward(strided), 20))


def max_filter_figures() -> tuple[float, float]:
    m = (torch.rand(8, 1, 128, 256, generator=torch.Generator().manual_seed(0)) > 0.9).float()
    return median_ms(lambda: max_filter(m, 5)), median_ms(lambda: F.max_pool2d(m, 5, stride=1, padding=2))


def lens_outline_figures() -> tuple[float, float]:
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (128, 256, 3), dtype=np.uint8)
    found = rng.uniform(0, 0.3, (128, 256)).astype(np.float32)
    hole = np.zeros((128, 256), np.float32)
    hole[20:34] = 1  # a frame's top bar: over the share at which outlines are looked for
    eyes = np.array([[84.0, 64.0], [172.0, 64.0]])
    return (median_ms(lambda: hole_with_rings(found, hole, eyes, crop=crop)),
            median_ms(lambda: hole_with_rings(found, hole, eyes)))


def main() -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = [("batch norm forward + backward: dense / strided gradient", batch_norm_figures()),
            ("5x5 on 8x1x128x256: max_filter / max_pool2d", max_filter_figures()),
            ("lens outlines on a 256x128 crop: with / without the photo's lines", lens_outline_figures())]
    for name, (new, old) in rows:
        print(f"{name}: {new:.2f} / {old:.2f} ms")


if __name__ == "__main__":
    main()
