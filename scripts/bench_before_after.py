"""Training images/s of two eyeedit source trees, run in turns: a change's before and after.

    git worktree add --detach /tmp/eyeedit-before 07f9d5a     # the tree to compare against
    python scripts/bench_before_after.py /tmp/eyeedit-before --case shipped --rounds 6

Each round starts one process per tree (before, then after), each builds the case's training
step the way `eyeedit train` would on that tree (`setup_runtime("auto", "auto")`), runs its
warm-up steps (any compilation falls there) and times --steps steps. The rounds alternate, so
a change in the machine's load falls on both; the ratio is the median of per-round ratios.
Only API present in both trees is used (bench.TRAIN_CASES, setup_runtime, build_state,
train_step, augment).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time, torch
from eyeedit.bench import TRAIN_CASES
from eyeedit.data.loader import augment
from eyeedit.model.networks import DiscriminatorConfig, GeneratorConfig
from eyeedit.model.tensors import images_to_tensor
from eyeedit.training.config import TrainConfig
from eyeedit.training.runtime import setup_runtime
from eyeedit.training.state import build_state
from eyeedit.training.train import train_step

case = {c.name: c for c in TRAIN_CASES}[sys.argv[1]]
steps, warmup = int(sys.argv[2]), int(sys.argv[3])
rt = setup_runtime("auto", "auto")
gen = GeneratorConfig(ngf=case.ngf, depth=case.depth, upsample=case.upsample, residual=case.residual)
cfg = TrainConfig(size=case.size, generator=gen, discriminator=DiscriminatorConfig(ndf=case.ndf),
                  batch_size=case.batch)
w, h = case.size
a_u8, b_u8 = torch.randint(0, 256, (2, case.batch, h, w, 3), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
state = build_state(cfg, rt)
def step():
    a, b = augment(images_to_tensor(a_u8), images_to_tensor(b_u8), state.aug_rng, 1.0, True)
    train_step(state, a.contiguous(memory_format=rt.memory_format),
               b.contiguous(memory_format=rt.memory_format), cfg, rt)["G_L1"].item()
t0 = time.perf_counter()
for _ in range(warmup):
    step()
warm = time.perf_counter() - t0
t0 = time.perf_counter()
for _ in range(steps):
    step()
sec = time.perf_counter() - t0
print(json.dumps({"images_per_s": steps * case.batch / sec, "warmup_s": warm, "runtime": rt.describe()
                  if hasattr(rt, "describe") else str(rt)}))
"""


def run_tree(tree: Path, case: str, steps: int, warmup: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", CHILD, case, str(steps), str(warmup)], cwd=tree, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="source tree to compare against (e.g. a git worktree)")
    parser.add_argument("--after", type=Path, default=HERE, help="source tree of the change [this one]")
    parser.add_argument("--case", default="shipped")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per process (compilation too)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    load = [os.getloadavg()[0]]
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for r in range(args.rounds):
        for side, tree in (("before", args.before), ("after", args.after)):
            runs[side].append(run_tree(tree, args.case, args.steps, args.warmup))
        b, a = runs["before"][-1], runs["after"][-1]
        print(f"round {r + 1}: before {b['images_per_s']:.2f} img/s, after {a['images_per_s']:.2f} img/s "
              f"({a['images_per_s'] / b['images_per_s']:.2f}x)", flush=True)
    load.append(os.getloadavg()[0])
    ratios = [a["images_per_s"] / b["images_per_s"] for a, b in zip(runs["after"], runs["before"])]
    med = {side: statistics.median(x["images_per_s"] for x in rs) for side, rs in runs.items()}
    result = {"case": args.case, "rounds": args.rounds, "steps": args.steps, "load_average": load,
              "before": {"tree": str(args.before), "runtime": runs["before"][0]["runtime"],
                         "images_per_s": med["before"]},
              "after": {"tree": str(args.after), "runtime": runs["after"][0]["runtime"], "images_per_s": med["after"],
                        "warmup_s": statistics.median(x["warmup_s"] for x in runs["after"])},
              "ratio": statistics.median(ratios), "ratios": ratios}
    print(f"{args.case}: before {med['before']:.2f} img/s ({result['before']['runtime']}), after "
          f"{med['after']:.2f} img/s ({result['after']['runtime']}): {result['ratio']:.2f}x (median of "
          f"{args.rounds} alternating rounds; load average {load[0]:.1f} -> {load[1]:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
