"""Time to quality: what a fixed budget of training time buys, for `eyeedit bench --quality`.

The shipped glasses recipe's model (ngf 16, ndf 16, depth 7, resize upsampling, residual,
batch 8, 256x128) is trained on a fixed synthetic set under two runtimes, the plain eager fp32
step and the chosen one, taking turns step by step; each side stops when its own steps have
used the budget (compilation included: a user waits for it too). The score is the validation
PSNR inside the edit mask over doing nothing (identity), as `eyeedit eval` reports it.

The faces are the bundled astronaut, varied in code (turn, scale, shift, light, colour), so
the benchmark needs no photos; ``faces`` may point at a folder of real ones instead.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from eyeedit.data.loader import PairData, PairSet, load_pairs
from eyeedit.data.samples import astronaut, rotate
from eyeedit.data.synth import SynthConfig, synth
from eyeedit.imageio import write_image
from eyeedit.model.networks import DiscriminatorConfig, GeneratorConfig
from eyeedit.model.tensors import images_to_tensor, tensor_to_images
from eyeedit.training.config import TrainConfig
from eyeedit.training.evaluate import edit_masks, image_metrics
from eyeedit.training.runtime import Runtime
from eyeedit.training.speed import reuse_freed_memory
from eyeedit.training.state import GanState, build_state
from eyeedit.training.train import make_batch, train_step

# pipelines/glasses.toml: the data pins and the [train] table.
GLASSES_SYNTH = {"effect": "glasses", "variation": False, "style": "rectangular", "material": "plastic",
                 "color": "black", "tint": "clear", "seed": 1}
GLASSES_TRAIN = {"ngf": 16, "ndf": 16, "depth": 7, "upsample": "resize", "residual": True, "batch_size": 8,
                 "seed": 1}


def synthetic_faces(folder: Path, count: int = 40, seed: int = 0) -> list[Path]:
    """``count`` variations of the astronaut written to ``folder`` as PNG: turned up to 12
    degrees, scaled 0.8-1.25x, shifted, lit brighter or darker, tinted. Deterministic."""
    rng = np.random.default_rng(seed)
    base = astronaut()
    h, w = base.shape[:2]
    paths = []
    for i in range(count):
        img = rotate(base, float(rng.uniform(-12, 12)), (230.0, 130.0))
        scale = float(rng.uniform(0.8, 1.25))
        m = np.array([[scale, 0, rng.uniform(-30, 30) + (1 - scale) * 230],
                      [0, scale, rng.uniform(-20, 20) + (1 - scale) * 130]], dtype=np.float32)
        img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)
        gain = rng.uniform(0.75, 1.2) * rng.uniform(0.9, 1.1, size=3)  # light, then a colour cast
        img = np.clip(img.astype(np.float32) * gain + rng.uniform(-15, 15), 0, 255).astype(np.uint8)
        if i % 2:
            img = np.ascontiguousarray(img[:, ::-1])
        paths.append(write_image(folder / f"face{i:03d}.png", img))
    return paths


def glasses_pairs(out: Path, faces: Path | None = None, count: int = 40) -> PairData:
    """The glasses recipe's pairs drawn on ``faces`` (or on :func:`synthetic_faces`), in ``out``."""
    if faces is None:
        faces = out / "faces"
        synthetic_faces(faces, count)
    # A fifth of the people held out: with 40 generated faces, about 8 validation pairs.
    synth(faces, out / "pairs", SynthConfig(val_fraction=0.2, **GLASSES_SYNTH))
    return load_pairs(out / "pairs")


def recipe_config(data: PairData) -> TrainConfig:
    t = GLASSES_TRAIN
    gen = GeneratorConfig(ngf=t["ngf"], depth=t["depth"], upsample=t["upsample"], residual=t["residual"])
    return TrainConfig(size=data.size, generator=gen, discriminator=DiscriminatorConfig(ndf=t["ndf"]),
                       batch_size=t["batch_size"], seed=t["seed"])


@dataclass
class _Side:
    rt: Runtime
    state: GanState
    order: torch.Generator
    seconds: float = 0.0
    steps: int = 0


def _step(side: _Side, train: PairSet, cfg: TrainConfig) -> None:
    reuse_freed_memory(side.rt.reuse_memory)  # a process-wide setting: each side sets its own
    t0 = time.perf_counter()
    idx = torch.randint(0, len(train), (cfg.batch_size,), generator=side.order)
    a, b, _ = make_batch(train, idx, side.state, cfg, side.rt)
    losses = train_step(side.state, a, b, cfg, side.rt)
    losses["G_L1"].item()  # wait for the device, so the clock holds the whole step
    side.seconds += time.perf_counter() - t0
    side.steps += 1


@torch.no_grad()
def masked_psnr_gain(side: _Side, val: PairSet) -> dict[str, float]:
    """Validation PSNR inside the edit mask, of the model and of the identity, and the gain."""
    g = side.state.g
    g.eval()
    with side.rt.autocast():
        pred = tensor_to_images(g(images_to_tensor(val.a).to(side.rt.device, memory_format=side.rt.memory_format)))
    g.train()
    a, b = val.a.numpy(), val.b.numpy()
    masks = edit_masks(a, b)
    model, identity = image_metrics(pred, b, masks), image_metrics(a, b, masks)
    return {"psnr_mask": model["psnr_mask"], "identity_psnr_mask": identity["psnr_mask"],
            "gain_db": model["psnr_mask"] - identity["psnr_mask"], "l1": model["l1"]}


def time_to_quality(sides: dict[str, Runtime], minutes: float, faces: Path | None = None,
                    count: int = 40) -> dict[str, Any]:
    """Train the glasses recipe's model under each runtime for ``minutes`` of its own step time
    (the sides take turns, one step each), then score each on the validation pairs of glasses
    drawn on ``faces`` (or on ``count`` generated faces)."""
    with tempfile.TemporaryDirectory(prefix="eyeedit-quality-") as tmp:
        data = glasses_pairs(Path(tmp), faces, count)
    if len(data.val) == 0:
        raise ValueError("the quality set has no validation pairs (too few faces?)")
    cfg = recipe_config(data)
    runs = {name: _Side(rt, build_state(cfg, rt), torch.Generator().manual_seed(cfg.seed))
            for name, rt in sides.items()}
    budget = minutes * 60
    while any(s.seconds < budget for s in runs.values()):
        for side in runs.values():
            if side.seconds < budget:
                _step(side, data.train, cfg)
    return {"minutes": minutes, "train_pairs": len(data.train), "val_pairs": len(data.val),
            "faces": str(faces) if faces else "generated from the astronaut",
            "sides": {name: {"runtime": s.rt.describe(), "steps": s.steps, "seconds": s.seconds,
                             "images": s.steps * cfg.batch_size, **masked_psnr_gain(s, data.val)}
                      for name, s in runs.items()}}
