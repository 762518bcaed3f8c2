#!/usr/bin/env bash
# Training on CUDA GPUs: mixed precision (bf16; fp16 with a gradient scaler), channels_last,
# --compile, and data-parallel runs through torchrun (nccl), each printing images/s.
#
#   scripts/gpu_check.sh                  # STEPS=300 per configuration
#   STEPS=100 PYTHON=.venv/bin/python scripts/gpu_check.sh
#
# 1. step speed: the shipped recipe's configuration (ngf 16, batch 8, 256x128) and unet_256
#    (batch 1), side by side in one process (`eyeedit.bench.bench_training`, one step each per
#    round): fp32, bf16, fp16 + GradScaler, bf16 + channels_last, bf16 + channels_last + compile.
# 2. the whole loop: `eyeedit train` on glasses pairs drawn on variations of the astronaut, with
#    --precision bf16 and fp16 and --compile on (checkpoints, validation, the model file).
# 3. torchrun: 1 process, and 2 processes with nccl when there are 2 GPUs (else skipped, said so).
# Without a GPU only the CPU-side parts run: the data, the step driver and a 2-process torchrun
# run on the CPU (gloo), each for a few steps, to check the script's own paths.
set -euo pipefail

PY=${PYTHON:-python}
STEPS=${STEPS:-300}
WORK=$(mktemp -d -t eyeedit-gpu-check-XXXX)
trap 'rm -rf "$WORK"' EXIT
RECIPE=(--ngf 16 --ndf 16 --depth 7 --upsample resize --residual --batch-size 8 --seed 1)

if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    DEVICE=cuda
    NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
    "$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name(), '| bf16:', torch.cuda.is_bf16_supported(), '| torch', torch.__version__)"
else
    DEVICE=cpu
    NGPU=0
    STEPS=3
    echo "no CUDA GPU: running the CPU-side parts only (a few steps each, fp32, gloo)"
fi

echo "== data: glasses pairs on generated faces"
"$PY" - "$WORK" <<'EOF'
import sys
from pathlib import Path
from eyeedit.bench_quality import glasses_pairs
data = glasses_pairs(Path(sys.argv[1]), count=100)
print(f"{len(data.train)} train / {len(data.val)} val pairs in {sys.argv[1]}/pairs")
EOF

echo "== 1. step speed, side by side ($STEPS rounds)"
"$PY" - "$DEVICE" "$STEPS" <<'EOF'
import dataclasses, sys
from eyeedit.bench import TRAIN_CASES, bench_training
from eyeedit.training.runtime import setup_runtime
device, rounds = sys.argv[1], int(sys.argv[2])
if device == "cuda":
    bf16 = setup_runtime("cuda", "bf16", "off")
    sides = {"fp32": setup_runtime("cuda", "fp32", "off"), "bf16": dataclasses.replace(bf16, channels_last=False),
             "fp16+scaler": setup_runtime("cuda", "fp16", "off"), "bf16+channels_last": bf16,
             "bf16+channels_last+compile": setup_runtime("cuda", "bf16", "on")}
else:
    sides = {"fp32": setup_runtime("cpu", "fp32", "off")}
for case in (c for c in TRAIN_CASES if c.name in ("shipped", "unet_256")):
    r = bench_training(case, sides, rounds=rounds)
    for name, s in r["sides"].items():
        print(f"{case.name:9s} {name:28s} {s['images_per_s']:8.1f} img/s  {s['ratio']:.2f}x fp32  "
              f"first step {s['first_step_s']:.1f} s  ({s['runtime']})", flush=True)
EOF

images_per_s() {  # the median images/s logged in a run folder's metrics.jsonl
    "$PY" -c "import json, statistics, sys; r = [json.loads(l) for l in open(sys.argv[1])]; \
v = [x['images_per_s'] for x in r if x.get('kind') == 'train']; v = v[1:] or v; \
print(f'{statistics.median(v):.1f}' if v else 'n/a (no log records)')" "$1/metrics.jsonl"
}

EPOCHS=$(( (STEPS + 9) / 10 ))  # ~90 train pairs / batch 8: about 10 steps an epoch
train() {  # name, then options for eyeedit train
    local name=$1; shift
    "$PY" -m eyeedit train "$WORK/pairs" --out "$WORK/$name" --overwrite "${RECIPE[@]}" \
        --epochs "$EPOCHS" --decay-epochs 0 --device "$DEVICE" --log-every 5 "$@" >"$WORK/$name.log" 2>&1 \
        || { tail -20 "$WORK/$name.log"; echo "FAILED: $name"; exit 1; }
    echo "$name: $(images_per_s "$WORK/$name") img/s"
}

echo "== 2. eyeedit train, the whole loop ($EPOCHS epochs)"
if [ "$DEVICE" = cuda ]; then
    train bf16-compile --precision bf16 --compile on
    train fp16-scaler --precision fp16 --compile off
else
    train cpu-fp32 --precision fp32 --compile off
fi

echo "== 3. torchrun"
torchrun_train() {  # name, processes, then options
    local name=$1 n=$2; shift 2
    "$PY" -m torch.distributed.run --standalone --nproc-per-node "$n" -m eyeedit train "$WORK/pairs" \
        --out "$WORK/$name" --overwrite "${RECIPE[@]}" --epochs "$EPOCHS" --decay-epochs 0 --device "$DEVICE" \
        --log-every 5 "$@" >"$WORK/$name.log" 2>&1 || { tail -20 "$WORK/$name.log"; echo "FAILED: $name"; exit 1; }
    echo "$name: $(images_per_s "$WORK/$name") img/s (all processes)"
}
if [ "$DEVICE" = cuda ]; then
    torchrun_train ddp1-bf16 1 --precision bf16
    if [ "$NGPU" -ge 2 ]; then
        torchrun_train ddp2-bf16-nccl 2 --precision bf16
    else
        echo "skipped: 2-process DDP with nccl needs 2 GPUs, this machine has $NGPU"
    fi
else
    torchrun_train ddp2-cpu-gloo 2 --precision fp32 --compile off
fi
echo "done"
