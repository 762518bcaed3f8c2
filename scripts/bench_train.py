"""Training speed and mixed-precision quality benchmark for `eyeedit train`.

    python scripts/bench_train.py                 # speed (fp32 and auto precision) + quality check
    python scripts/bench_train.py --quick         # a few steps of each, to check it runs
    python scripts/bench_train.py --precisions fp32,bf16 --skip-quality

Speed: images/s of full pix2pix training steps (jitter + flip augmentation, D update, G update)
on random crops, for the reference configurations of the pix2pix paper's code and for eyeedit's
default eye configuration:

    unet_256   8-level U-Net ngf 64, 70x70 PatchGAN ndf 64, batch 1, 256x256
    unet_128   7-level U-Net ngf 64, 70x70 PatchGAN ndf 64, batch 8, 128x128
    eyes       7-level U-Net ngf 64, 70x70 PatchGAN ndf 64, batch 1, 256x128 (eyeedit default)
    shipped    7-level U-Net ngf 16, PatchGAN ndf 16, batch 8, 256x128 (the built-in models)

The table prints the GFLOP per image and the achieved GFLOP/s, which show how close a run is to
the hardware's limit; compare configurations and precisions only within one run on one machine.

Quality: the same small model trained on the same pairs with the same seed and number of steps
in fp32 and in the reduced precision; their validation L1 should agree within 5%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from eyeedit.bench import TRAIN_CASES, TrainCase, bench_training
from eyeedit.data.loader import augment
from eyeedit.model.networks import DiscriminatorConfig, GeneratorConfig
from eyeedit.model.tensors import images_to_tensor
from eyeedit.training.config import TrainConfig
from eyeedit.training.runtime import setup_runtime
from eyeedit.training.state import build_state
from eyeedit.training.train import train_step, validate


def _config(case: TrainCase, seed: int = 0, ngf: int = 64) -> TrainConfig:
    return TrainConfig(size=case.size, generator=GeneratorConfig(ngf=ngf, depth=case.depth),
                       discriminator=DiscriminatorConfig(ndf=ngf), batch_size=case.batch, seed=seed)


def _flops_per_image(case: TrainCase) -> float:
    """Floating-point operations of one training step, per image (counted, not timed)."""
    from torch.utils.flop_counter import FlopCounterMode

    rt = setup_runtime("auto", "fp32")
    cfg = _config(case, ngf=case.ngf)
    w, h = case.size
    a = torch.rand(case.batch, 3, h, w) * 2 - 1
    state = build_state(cfg, rt)
    with FlopCounterMode(display=False) as counter:
        train_step(state, a, a.clone(), cfg, rt)
    return counter.get_total_flops() / case.batch


def measure_speed(case: TrainCase, precision: str, steps: int, min_seconds: float) -> dict:
    """Images/s (eyeedit.bench.bench_training) plus GFLOP per image and GFLOP/s."""
    result = bench_training(case, precision, steps, min_seconds)
    flops = _flops_per_image(case)
    return {**result, "gflop_per_image": flops / 1e9, "gflop_per_s": result["images_per_s"] * flops / 1e9}


def _quality_pairs(n: int, w: int, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of the astronaut and a fixed edit of them (darker, warmer band across the middle)."""
    from skimage.data import astronaut

    img = astronaut()
    rng = np.random.default_rng(0)
    a = np.stack([img[y : y + h, x : x + w] for y, x in zip(rng.integers(0, 512 - h, n),
                                                            rng.integers(0, 512 - w, n))])
    b = a.astype(np.float32)
    band = slice(h // 3, 2 * h // 3)
    b[:, band] = b[:, band] * np.array([0.9, 0.6, 0.5]) + np.array([40, 10, 0])
    return torch.from_numpy(a), torch.from_numpy(np.clip(b, 0, 255).round().astype(np.uint8))


def quality_check(precision: str, steps: int) -> dict:
    """Validation L1 after ``steps`` steps in fp32 and in ``precision`` (same data, seed, steps)."""
    from eyeedit.data.loader import PairSet

    case = TrainCase("quality", (64, 32), 5, 4)
    a, b = _quality_pairs(64, *case.size)
    train_set, val_set = (PairSet(a[s], b[s], tuple(str(i) for i in range(64))[s]) for s in
                          (slice(0, 48), slice(48, 64)))
    result = {"steps": steps, "size": list(case.size), "ngf": 16}
    for prec in ("fp32", precision):
        rt = setup_runtime("auto", prec)
        cfg = _config(case, seed=3, ngf=16)
        state = build_state(cfg, rt)
        order = torch.Generator().manual_seed(5)
        start = time.perf_counter()
        for _ in range(steps):
            idx = torch.randint(0, len(train_set), (case.batch,), generator=order)
            x, y = (images_to_tensor(t[idx]).to(rt.device) for t in (train_set.a, train_set.b))
            x, y = augment(x, y, state.aug_rng, cfg.jitter, True)
            train_step(state, x, y, cfg, rt)
        result[prec] = {**validate(state.g, val_set, rt), "seconds": time.perf_counter() - start}
    base, other = result["fp32"]["l1"], result[precision]["l1"]
    result["l1_relative_difference"] = abs(other - base) / base
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps, to check the script runs")
    parser.add_argument("--precisions", default="fp32,auto",
                        help="comma-separated precisions to time (auto = what `eyeedit train` picks)")
    parser.add_argument("--cases", default=",".join(c.name for c in TRAIN_CASES))
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--quality-precision", default="bf16")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()

    auto = setup_runtime("auto", "auto").precision
    precisions = list(dict.fromkeys(auto if p == "auto" else p for p in args.precisions.split(",")))
    steps, min_seconds = (2, 0.0) if args.quick else (10, 20.0)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; auto precision: {auto}")
    results = []
    for case in (c for c in TRAIN_CASES if c.name in args.cases.split(",")):
        for prec in precisions:
            r = measure_speed(case, prec, steps, min_seconds)
            results.append(r)
            print(f"{r['case']:9s} {r['precision']:5s} {r['images_per_s']:7.2f} img/s  "
                  f"{r['gflop_per_image']:6.1f} GFLOP/img  {r['gflop_per_s']:6.1f} GFLOP/s", flush=True)
    quality = None
    if not args.skip_quality:
        quality = quality_check(args.quality_precision, 4 if args.quick else 150)
        q = args.quality_precision
        print(f"quality ({quality['steps']} steps, 64x32, ngf 16): val L1 fp32 {quality['fp32']['l1']:.4f} "
              f"({quality['fp32']['seconds']:.0f} s), {q} {quality[q]['l1']:.4f} "
              f"({quality[q]['seconds']:.0f} s): {100 * quality['l1_relative_difference']:.1f}% apart")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"speed": results, "quality": quality}, fh, indent=2)


if __name__ == "__main__":
    main()
