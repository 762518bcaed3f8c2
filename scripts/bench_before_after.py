"""Training images/s of two eyeedit source trees, step by step in turns: a change's before and after.

    git worktree add --detach /tmp/eyeedit-before 07f9d5a     # the tree to compare against
    python scripts/bench_before_after.py /tmp/eyeedit-before --case shipped --rounds 30
    python scripts/bench_before_after.py /tmp/eyeedit-30d9bc8 --recipe pipelines/no-glasses.toml  # both trees need its options

One process per tree builds the case's training step the way `eyeedit train` would on that
tree (`setup_runtime("auto", "auto")`) and runs its warm-up steps (any compilation falls
there); then the two processes take turns, one step each per round, on command, so a change in
the machine's load falls on both alike. Figures are medians over rounds; the ratio is the
median of per-round ratios. A step is what `eyeedit train` does for a batch: the batch made
from uint8 crops in memory (`make_batch`: gather, augment, make float) and `train_step`. Only API
present in both trees is used (bench.TRAIN_CASES, PairSet, setup_runtime, build_state,
make_batch (earlier `_batch`), train_step).
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
from eyeedit.data.loader import PairSet
from eyeedit.model.networks import DiscriminatorConfig, GeneratorConfig
from eyeedit.training.config import TrainConfig
from eyeedit.training.runtime import setup_runtime
from eyeedit.training.state import build_state
from eyeedit.training import train
make_batch = getattr(train, "make_batch", None) or train._batch  # its name before it was public

warmup = int(sys.argv[2])
# a compile choice only for a tree that has one (the after side, --compile-after)
rt = setup_runtime("auto", "auto", sys.argv[3]) if len(sys.argv) > 3 else setup_runtime("auto", "auto")
if sys.argv[1].startswith("recipe:"):  # a recipe's [train] options, on eye crops with frame-like masks
    import tomllib
    with open(sys.argv[1][len("recipe:"):], "rb") as f:
        opts = {k.replace("-", "_"): v for k, v in tomllib.load(f)["train"].items()}
    gen = GeneratorConfig(**{k: v for k, v in opts.items() if k in GeneratorConfig.__dataclass_fields__})
    cfg = TrainConfig(size=(256, 128), generator=gen, discriminator=DiscriminatorConfig(ndf=opts.get("ndf", 64)),
                      batch_size=opts.get("batch_size", 1), jitter=opts.get("jitter", 1.0))
else:
    case = {c.name: c for c in TRAIN_CASES}[sys.argv[1]]
    gen = GeneratorConfig(ngf=case.ngf, depth=case.depth, upsample=case.upsample, residual=case.residual)
    cfg = TrainConfig(size=case.size, generator=gen, discriminator=DiscriminatorConfig(ndf=case.ndf),
                      batch_size=case.batch)
(w, h), batch_size = cfg.size, cfg.batch_size
n = 4 * batch_size  # a few batches' worth of crops, taken in turn
a_u8, b_u8 = torch.randint(0, 256, (2, n, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
extra = {}
if gen.alpha:  # a band across both eyes with a hole in it: solid parts and a lens-like gap
    mask = torch.zeros(n, h, w, dtype=torch.uint8)
    mask[:, 40:60, 30:220] = 255
    mask[:, 45:55, 60:100] = 0
    extra = {"mask": mask}
pairs = PairSet(a_u8, b_u8, tuple(map(str, range(n))), **extra)
state = build_state(cfg, rt)
steps = 0
def step():
    global steps
    first = steps % 4 * batch_size
    batch = make_batch(pairs, list(range(first, first + batch_size)), state, cfg, rt)
    train.train_step(state, *batch[:2], cfg, rt, *batch[2:])["G_L1"].item()
    steps += 1
t0 = time.perf_counter()
for _ in range(warmup):
    step()
print(json.dumps({"warmup_s": time.perf_counter() - t0, "batch": batch_size,
                  "runtime": rt.describe() if hasattr(rt, "describe") else str(rt)}), flush=True)
for line in sys.stdin:  # one step per "step" line, its seconds back
    if line.strip() != "step":
        break
    t0 = time.perf_counter()
    step()
    print(time.perf_counter() - t0, flush=True)
"""


def start_tree(tree: Path, case: str, warmup: int, compile_: str | None = None) -> tuple[subprocess.Popen, dict]:
    """A process on ``tree`` with the case's step built and warmed up, and what it said."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    extra = [compile_] if compile_ else []
    proc = subprocess.Popen([sys.executable, "-c", CHILD, case, str(warmup), *extra], cwd=tree, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"{tree}: the training process failed to start (exit {proc.wait()})")
    return proc, json.loads(line)


def one_step(proc: subprocess.Popen) -> float:
    proc.stdin.write("step\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="source tree to compare against (e.g. a git worktree)")
    parser.add_argument("--after", type=Path, default=HERE, help="source tree of the change [this one]")
    parser.add_argument("--case", default="shipped", help="a case of eyeedit bench's training cases")
    parser.add_argument("--recipe", type=Path, default=None,
                        help="instead of --case: a recipe's [train] options (e.g. pipelines/no-glasses.toml) "
                             "on 256x128 crops, with frame-like edit masks for a model with alpha")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per process (compilation too)")
    parser.add_argument("--compile-after", choices=["auto", "on", "off"], default=None,
                        help="the after tree's --compile (its warm-up steps take the compile time)")
    parser.add_argument("--compile-before", choices=["auto", "on", "off"], default=None,
                        help="the before tree's --compile, where it has one")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    trees = {"before": args.before, "after": args.after}
    compile_ = {"before": args.compile_before, "after": args.compile_after}
    case = f"recipe:{args.recipe.resolve()}" if args.recipe else args.case
    procs = {side: start_tree(tree, case, args.warmup, compile_[side]) for side, tree in trees.items()}
    load = [os.getloadavg()[0]]
    times: dict[str, list[float]] = {side: [] for side in trees}
    try:
        for _ in range(args.rounds):
            for side, (proc, _) in procs.items():
                times[side].append(one_step(proc))
    finally:
        for proc, _ in procs.values():
            proc.stdin.close()
            proc.wait()
    load.append(os.getloadavg()[0])
    batch = procs["after"][1]["batch"]
    ratios = [b / a for a, b in zip(times["after"], times["before"])]
    result = {"case": case, "rounds": args.rounds, "load_average": load, "ratio": statistics.median(ratios),
              **{side: {"tree": str(trees[side]), "runtime": info["runtime"], "warmup_s": info["warmup_s"],
                        "images_per_s": batch / statistics.median(times[side])}
                 for side, (_, info) in procs.items()}}
    b, a = result["before"], result["after"]
    print(f"{case}: before {b['images_per_s']:.2f} img/s ({b['runtime']}), after {a['images_per_s']:.2f} "
          f"img/s ({a['runtime']}): {result['ratio']:.2f}x (median of {args.rounds} rounds, one step each in "
          f"turn; {os.environ.get('OMP_NUM_THREADS', 'default')} threads; load average {load[0]:.1f} -> {load[1]:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
