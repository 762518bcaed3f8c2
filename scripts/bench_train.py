"""Mixed-precision quality check for `eyeedit train`, and training speed per precision.

    python scripts/bench_train.py                       # quality: fp32 vs the reduced precision
    python scripts/bench_train.py --quick               # a few steps, to check the script runs
    python scripts/bench_train.py --speed --cases unet_256,shipped --precisions fp32,bf16
    python scripts/bench_train.py --ablation --cases unet_256 [--with-compile]   # each speed-up
    python scripts/bench_train.py --ablation --precision bf16 --cases unet_256    # ... in bf16

Quality: the same small model trained on the same pairs with the same seeds and number of steps
in fp32 and in the reduced precision (bf16 where the CPU or GPU has it natively, fp16 on GPUs
without bf16); the reduced precision's validation L1, the mean over 6 seeds, must be at most 2%
above fp32's (lower is better: ending lower costs nothing). Where no reduced precision is native
(an AVX2-only CPU), the check runs fp32 against fp32 and says so: that proves the script, not
the precision.

Speed (--speed): each precision's chosen step beside the plain eager fp32 step, in turns
(`eyeedit.bench.bench_training`), as images/s, ratio and GFLOP/s. `eyeedit bench` reports the
same with the machine's conv ceilings.

Ablation (--ablation): the plain step, then the speed-ups of the chosen fp32 CPU step added one
at a time, and channels_last (and torch.compile) on top, all side by side in one run; with
--precision bf16, bf16 autocast and channels_last activations first, then the same speed-ups.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eyeedit.bench import TRAIN_CASES, TrainCase, bench_training  # noqa: E402
from eyeedit.data.loader import PairSet  # noqa: E402
from eyeedit.model.networks import DiscriminatorConfig, GeneratorConfig  # noqa: E402
from eyeedit.training.config import TrainConfig  # noqa: E402
from eyeedit.training.runtime import cpu_supports_bf16, plain_runtime, setup_runtime  # noqa: E402
from eyeedit.training.state import build_state  # noqa: E402
from eyeedit.training.train import make_batch, train_step, validate  # noqa: E402

TOLERANCE = 0.02  # validation L1 of the reduced precision at most 2% above fp32's


def native_reduced_precision(device: str) -> str | None:
    """The reduced precision this device runs natively: bf16, fp16 (GPUs without bf16), or None."""
    if device == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_supports_bf16() else None


def _quality_pairs(n: int, w: int, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops of the astronaut and a fixed edit of them (darker, warmer band across the middle)."""
    from eyeedit.data.samples import astronaut

    img = astronaut()
    rng = np.random.default_rng(0)
    a = np.stack([img[y : y + h, x : x + w] for y, x in zip(rng.integers(0, 512 - h, n),
                                                            rng.integers(0, 512 - w, n))])
    b = a.astype(np.float32)
    band = slice(h // 3, 2 * h // 3)
    b[:, band] = b[:, band] * np.array([0.9, 0.6, 0.5]) + np.array([40, 10, 0])
    return torch.from_numpy(a), torch.from_numpy(np.clip(b, 0, 255).round().astype(np.uint8))


def quality_check(precision: str, steps: int, device: str = "cpu", seeds: int = 3) -> dict:
    """Mean validation L1 after ``steps`` steps in fp32 and in ``precision``, over ``seeds``
    seeds (the same data, seeds and steps on both sides).

    One seed is not enough: a GAN's weights drift apart from any difference in rounding, and
    where the two runs end up after 150 steps differs by a few percent either way (bf16 1.8%
    above fp32 with one seed, 8% below it at 300 steps). Over several seeds, what is left is
    the precision's own effect; ``seed_spread`` gives fp32's spread across seeds beside it.
    """
    size, batch = (64, 32), 4
    a, b = _quality_pairs(64, *size)
    names = tuple(str(i) for i in range(64))
    train_set, val_set = (PairSet(a[s], b[s], names[s]) for s in (slice(0, 48), slice(48, 64)))
    result: dict = {"steps": steps, "size": list(size), "ngf": 16, "precisions": ["fp32", precision],
                    "seeds": list(range(3, 3 + seeds))}
    for key, prec in (("reference", "fp32"), ("candidate", precision)):
        rt = setup_runtime(device, prec, "off")
        runs, start = [], time.perf_counter()
        for seed in result["seeds"]:
            cfg = TrainConfig(size=size, generator=GeneratorConfig(ngf=16, depth=5),
                              discriminator=DiscriminatorConfig(ndf=16), batch_size=batch, seed=seed)
            state = build_state(cfg, rt)
            order = torch.Generator().manual_seed(seed + 2)
            for _ in range(steps):
                idx = torch.randint(0, len(train_set), (batch,), generator=order)
                x, y, _ = make_batch(train_set, idx, state, cfg, rt)
                train_step(state, x, y, cfg, rt)
            runs.append(validate(state.g, val_set, rt)["l1"])
        result[key] = {"precision": prec, "l1": float(np.mean(runs)), "l1_per_seed": runs,
                       "seconds": time.perf_counter() - start}
    base, other = result["reference"]["l1"], result["candidate"]["l1"]
    per_seed = result["reference"]["l1_per_seed"]
    result["seed_spread"] = (max(per_seed) - min(per_seed)) / base
    # signed: a reduced precision that ends lower (better) than fp32 costs nothing
    result["l1_relative_difference"] = (other - base) / base
    result["within_tolerance"] = result["l1_relative_difference"] <= TOLERANCE
    return result


def ablation(args: argparse.Namespace) -> dict:
    sides = ablation_sides(args.with_compile, args.precision or "fp32")
    out = []
    for case in (c for c in TRAIN_CASES if c.name in args.cases.split(",")):
        r = bench_training(case, sides, rounds=2 if args.quick else args.rounds)
        out.append(r)
        print(f"{case.name}: {r['rounds']} rounds side by side, load average {r['load_average'][0]:.1f} -> "
              f"{r['load_average'][1]:.1f}, {torch.get_num_threads()} threads")
        for name, sd in r["sides"].items():
            print(f"  {name:24s} {sd['images_per_s']:7.2f} img/s  {sd['ratio']:.2f}x plain  "
                  f"first step {sd['first_step_s']:.1f} s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return {"ablation": out}


def speed(cases: list[TrainCase], precisions: list[str], rounds: int) -> list[dict]:
    out = []
    for case in cases:
        sides = {"plain": plain_runtime(), **{p: setup_runtime("auto", p, "off") for p in precisions}}
        r = bench_training(case, sides, rounds=rounds)
        out.append(r)
        for name, s in r["sides"].items():
            print(f"{case.name:9s} {name:6s} {s['images_per_s']:7.2f} img/s  {s['ratio']:.2f}x plain  "
                  f"{s['gflop_per_s']:6.1f} GFLOP/s  ({s['runtime']})", flush=True)
    return out


def ablation_sides(with_compile: bool, precision: str = "fp32") -> dict:
    """The plain step, each speed-up of the chosen CPU step added in turn, and the candidates
    that were measured slower. ``precision="bf16"`` (for CPUs with native bf16): bf16 autocast
    and channels_last activations come first, and channels_last is not offered again on top."""
    plain = plain_runtime()
    steps = {"plain": plain}
    cur = plain
    if precision == "bf16":
        steps["bf16 autocast"] = cur = replace(plain, precision="bf16")
        steps["+ channels_last activations"] = cur = replace(cur, channels_last=True)
    else:
        steps["foreach Adam"] = replace(plain, optimizer="foreach")
    steps["+ fused Adam"] = cur = replace(cur, optimizer="fused")
    steps["+ small convs as GEMM"] = cur = replace(cur, small_convs=True)
    steps["+ resize levels folded"] = cur = replace(cur, fold_resize=True)
    steps["+ dense skip gradients"] = cur = replace(cur, dense_grads=True)
    steps["+ freed memory reused"] = cur = replace(cur, reuse_memory=True)
    if precision != "bf16":
        steps["+ channels_last"] = replace(cur, channels_last=True)
    if with_compile:
        steps["+ torch.compile"] = replace(cur, compile=True)
    return steps


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps, to check the script runs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default=None,
                        help="reduced precision to check [the native one; fp32 where there is none]")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=6, help="seeds the quality check averages over")
    parser.add_argument("--speed", action="store_true", help="also time the training step per precision")
    parser.add_argument("--precisions", default="fp32")
    parser.add_argument("--cases", default="unet_256,shipped")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--ablation", action="store_true", help="time each speed-up added in turn, then stop")
    parser.add_argument("--with-compile", action="store_true", help="with --ablation: also torch.compile")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.ablation:
        return ablation(args)

    native = native_reduced_precision(args.device)
    precision = args.precision or native or "fp32"
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}; native reduced precision: {native or 'none'}")
    if precision == "fp32":
        print("no reduced precision is native here: checking fp32 against fp32 (proves the script only)")
    steps = 4 if args.quick else args.steps
    q = quality_check(precision, steps, args.device, 1 if args.quick else args.seeds)
    print(f"quality ({steps} steps, 64x32, ngf 16, mean of {len(q['seeds'])} seeds): val L1 fp32 "
          f"{q['reference']['l1']:.4f} ({q['reference']['seconds']:.0f} s), {precision} {q['candidate']['l1']:.4f} "
          f"({q['candidate']['seconds']:.0f} s): {100 * q['l1_relative_difference']:+.2f}% "
          f"({'within' if q['within_tolerance'] else 'OVER'} the +{100 * TOLERANCE:g}% allowed); fp32 alone spans "
          f"{100 * q['seed_spread']:.1f}% across the seeds")
    result = {"quality": q, "speed": None}
    if args.speed:
        cases = [c for c in TRAIN_CASES if c.name in args.cases.split(",")]
        result["speed"] = speed(cases, args.precisions.split(","), 2 if args.quick else args.rounds)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
