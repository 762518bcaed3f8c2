"""Where a training step's time goes: torch.profiler's per-op table for one configuration.

    python scripts/profile_train.py                           # unet_256, batch 1, the chosen step
    python scripts/profile_train.py --side plain              # eager fp32, plain Adam
    python scripts/profile_train.py --case shipped --shapes   # one row per op and input shape
    python scripts/profile_train.py --size 64x32 --depth 5 --ngf 8 --batch 2 --steps 1   # tiny

Prints the ops by self CPU time (the op's own work, not its callees), then the share of the
steps spent in convolutions (forward and backward), batch norm, the optimizer step and the rest.
Warm-up steps run first; the profiled steps follow.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eyeedit.bench import TRAIN_CASES, training_step  # noqa: E402
from eyeedit.regions import parse_size  # noqa: E402
from eyeedit.training.runtime import plain_runtime, setup_runtime  # noqa: E402

# Ops grouped for the summary line; anything else counts as "other".
GROUPS = {
    "conv forward": ("aten::mkldnn_convolution", "aten::_convolution", "aten::slow_conv", "aten::mm",
                     "aten::bmm", "aten::im2col", "aten::col2im", "aten::_slow_conv2d_forward"),
    "conv backward": ("aten::convolution_backward", "aten::_slow_conv2d_backward"),
    "batch norm": ("aten::native_batch_norm", "aten::native_batch_norm_backward", "aten::_batch_norm"),
    "optimizer": ("aten::_fused_adam_", "aten::_foreach_", "aten::sqrt", "aten::addcdiv_", "aten::addcmul_",
                  "aten::lerp_", "aten::mul_", "aten::div_"),
}


def _group(name: str) -> str:
    return next((g for g, prefixes in GROUPS.items() if name.startswith(prefixes)), "other")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="unet_256", choices=[c.name for c in TRAIN_CASES])
    parser.add_argument("--side", default="chosen", choices=["chosen", "plain"])
    parser.add_argument("--compile", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--size", default=None, metavar="WxH", help="override the case's crop size")
    parser.add_argument("--depth", type=int, default=None)
    parser.add_argument("--ngf", type=int, default=None, help="override ngf and ndf")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (after 2 warm-up steps)")
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--shapes", action="store_true", help="one row per op and input shape")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    case = next(c for c in TRAIN_CASES if c.name == args.case)
    overrides = {k: v for k, v in (("size", parse_size(args.size) if args.size else None), ("depth", args.depth),
                                   ("ngf", args.ngf), ("ndf", args.ngf), ("batch", args.batch)) if v}
    case = replace(case, **overrides)
    rt = plain_runtime() if args.side == "plain" else setup_runtime("cpu", "auto", args.compile)
    step = training_step(case, rt)
    for _ in range(2):
        step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=args.shapes) as prof:
        for _ in range(args.steps):
            step()
    averages = prof.key_averages(group_by_input_shape=args.shapes)
    print(f"{case.name}: batch {case.batch}, {case.size[0]}x{case.size[1]}, depth {case.depth}, ngf {case.ngf}; "
          f"{rt.describe()}; {args.steps} steps")
    print(averages.table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=40,
                         max_shapes_column_width=80))
    rows = [{"name": e.key, "shapes": str(e.input_shapes) if args.shapes else "", "calls": e.count,
             "self_ms": e.self_cpu_time_total / 1000 / args.steps} for e in averages]
    total = sum(r["self_ms"] for r in rows)
    groups: dict[str, float] = {}
    for r in rows:
        groups[_group(r["name"])] = groups.get(_group(r["name"]), 0.0) + r["self_ms"]
    print(f"per step: {total:.0f} ms of op time; " + ", ".join(
        f"{g} {100 * ms / max(total, 1e-9):.0f}%" for g, ms in sorted(groups.items(), key=lambda kv: -kv[1])))
    result = {"case": case.name, "runtime": rt.describe(), "steps": args.steps, "ms_per_step": total,
              "groups_ms": groups, "rows": sorted(rows, key=lambda r: -r["self_ms"])}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
