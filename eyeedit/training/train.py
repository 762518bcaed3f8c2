"""pix2pix training: one GAN step, validation, and the loop over epochs.

Read top to bottom: ``train_step`` (one update of D then G, returning its losses), ``validate``,
and ``train``, which sets up, runs the epochs (steps, validation, samples, checkpoints) and
writes the model file. What to train is a :class:`TrainConfig`; where and how it runs (device,
precision, DDP) is a ``Runtime`` decided once by ``setup_runtime`` at the entry point. Multi-
process runs start through torchrun; only rank 0 writes anything. The library never draws:
progress goes to an ``on_progress`` callback, notes to :mod:`warnings`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from eyeedit.data.loader import PairData, PairSet, augment_all, flip_crops, load_pairs
from eyeedit.data.pairs import DatasetError
from eyeedit.imageio import remove_temp_files, write_image, write_text
from eyeedit.model.losses import (
    alpha_loss,
    dice_loss,
    discriminator_fake_loss,
    discriminator_real_loss,
    generator_adversarial_loss,
    mask_iou,
    psnr,
    ssim,
)
from eyeedit.model.networks import frame_hole, solid_parts
from eyeedit.model.tensors import images_to_tensor, tensor_to_images
from eyeedit.model.weights import save_generator
from eyeedit.training import checkpoints as ckpt
from eyeedit.training.config import TrainConfig
from eyeedit.training.plots import image_grid, plot_curves
from eyeedit.training.run_folder import (
    MetricsLog,
    RunError,
    RunPaths,
    check_run_folder,
    clear_run,
    write_errors,
)
from eyeedit.training.runtime import Runtime, hardware_name
from eyeedit.training.speed import compiled, eager, reuse_freed_memory
from eyeedit.training.state import GanState, build_state, unwrap, wrap_ddp

# ----------------------------------------------------------------------------- the step

def _no_sync(model: nn.Module) -> contextlib.AbstractContextManager:
    return model.no_sync() if isinstance(model, DistributedDataParallel) else contextlib.nullcontext()


def _set_requires_grad(model: nn.Module, flag: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(flag)


def train_step(state: GanState, a: torch.Tensor, b: torch.Tensor, cfg: TrainConfig,
               rt: Runtime, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """One pix2pix update of D then G on a batch; returns the detached losses.

    ``a``, ``b``: float (B, C, H, W) in [-1, 1] on ``rt.device``; ``mask``: float (B, 1, H, W)
    in [0, 1], the edit masks, which supervise the alpha of a generator that has one (loss
    ``G_alpha``, weighted by ``cfg.alpha_weight``).
    """
    scaler, kind = state.scaler, cfg.gan_loss
    d_plain = unwrap(state.d)
    d_fake_loss, d_real_loss, g_loss = (compiled(f, rt.compile) for f in
                                        (discriminator_fake_loss, discriminator_real_loss, _generator_losses))
    hole = found = solid = None
    with rt.autocast():
        if cfg.generator.fill and mask is not None:
            solid = solid_parts(mask.float()).to(mask.dtype)
            hole = fill_holes(solid, state.aug_rng)
            fake, alpha, found = state.g(a, with_alpha=True, hole=hole)
        else:
            fake, alpha = state.g(a, with_alpha=True)
    # D: fake then real, as two backward passes; under DDP the first one skips the all-reduce
    # so the gradients are averaged across ranks once, after both halves are accumulated.
    state.opt_d.zero_grad(set_to_none=True)
    with _no_sync(state.d):
        with rt.autocast():
            loss_d_fake = d_fake_loss(kind, state.d(a, fake.detach()))
        scaler.scale(loss_d_fake).backward()
    with rt.autocast():
        loss_d_real = d_real_loss(kind, state.d(a, b))
    scaler.scale(loss_d_real).backward()
    scaler.step(state.opt_d)
    # G: fool D (frozen, and called unwrapped so its DDP reducer expects no gradients) + L1.
    _set_requires_grad(d_plain, False)
    state.opt_g.zero_grad(set_to_none=True)
    with rt.autocast():
        logits = d_plain(a, fake)
    loss_g_gan, loss_g_l1, loss_g = g_loss(kind, logits, fake, b, cfg.lambda_l1)
    loss_alpha = None
    if alpha is not None and mask is not None:
        loss_alpha = (alpha_loss(alpha, mask) if hole is None
                      else _fill_alpha_loss(alpha, found, mask, solid, hole))
        loss_g = loss_g + cfg.alpha_weight * loss_alpha
    loss_hole = None
    if hole is not None:
        # The hole is a few percent of the crop, so the image-wide L1 hardly sees how well it
        # is painted; its own mean L1, at the same weight, makes its colour count.
        loss_hole = hole_l1(fake, b, hole)
        loss_g = loss_g + cfg.lambda_l1 * loss_hole
    scaler.scale(loss_g).backward()
    scaler.step(state.opt_g)
    scaler.update()
    _set_requires_grad(d_plain, True)
    losses = {"G_GAN": loss_g_gan, "G_L1": loss_g_l1, "D_real": loss_d_real, "D_fake": loss_d_fake}
    if loss_alpha is not None:
        losses["G_alpha"] = loss_alpha
    if loss_hole is not None:
        losses["G_L1_hole"] = loss_hole
    return {k: v.detach() for k, v in losses.items()}


def fill_holes(solid: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The holes a fill generator's second pass trains on, (B, 1, H, W) in {0, 1}: the solid
    parts of the true masks (``solid_parts``), grown by 1 to 3 pixels at random (the alpha
    found on a photo has no exact edge). Random numbers come from the CPU ``generator``, as
    augmentation's do."""
    # The holes found on real wearers are at the wide end of these (median width 11.7 px on
    # the 45 frame donors, against 9.1 px at 2 px of growth). Growing by 2 to 5 px instead
    # made no difference by eye on those donors (same data and seed).
    grow = int(torch.randint(1, 4, (1,), generator=generator))
    return frame_hole(solid, 0.5, grow)


# Weight of the first pass's Dice term beside its cross-entropy. With cross-entropy alone it
# found the solid frame parts of held-out synthetic pairs at IoU 0.38 and real frames only at
# alpha 0.2-0.5; with Dice over the whole batch at 0.25, IoU 0.58, at 1.0, 0.62 and no better
# on real frames. Dice is now per image, with thin wires in the target (``solid_parts``).
FIND_DICE = 0.25


def _fill_alpha_loss(alpha: torch.Tensor, found: torch.Tensor, mask: torch.Tensor,
                     solid: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """A fill generator's two alphas: the first pass finds the solid parts (a 0/1 target, so
    its alpha is a clean cut), the second paints the hole whole (alpha 1 there by construction,
    so it is the target there too) and the soft rest (lens tint, shadow) as usual."""
    find = alpha_loss(found, solid) + FIND_DICE * dice_loss(found, solid)
    return find + alpha_loss(alpha, torch.maximum(mask, hole))


def hole_l1(fake: torch.Tensor, b: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Mean L1 over the hole's pixels alone (0 for an empty hole)."""
    weight = hole.float().expand_as(fake)
    return ((fake.float() - b.float()).abs() * weight).sum() / weight.sum().clamp(min=1.0)


def _generator_losses(kind: str, logits: torch.Tensor, fake: torch.Tensor, b: torch.Tensor,
                      lambda_l1: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """G's adversarial term, its L1 term (in fp32) and their weighted sum."""
    gan = generator_adversarial_loss(kind, logits)
    l1 = F.l1_loss(fake.float(), b.float())
    return gan, l1, gan + lambda_l1 * l1


# ----------------------------------------------------------------------------- validation

@torch.no_grad()
def validate(g: nn.Module, pairs: PairSet, rt: Runtime, batch: int = 16) -> dict[str, float]:
    """Validation L1 (on the 0-1 scale of pixel values, as `eyeedit eval` reports it), PSNR (dB)
    and SSIM of G in eval mode over ``pairs``; for a
    generator with alpha on pairs with masks, also ``mask_iou`` (alpha > 0.5 against mask > 0.5)
    and for a fill generator ``find_iou`` (its first pass's alpha > 0.5 against the masks' solid
    parts, what it learns to erase)."""
    was_training = g.training
    g.eval()
    sums = {"l1": 0.0, "psnr": 0.0, "ssim": 0.0}
    for i in range(0, len(pairs), batch):
        a, b = (_to_device(t[i : i + batch], rt) for t in (pairs.a, pairs.b))
        with rt.autocast():
            fake, alpha = eager(g)(a, with_alpha=True)
        fake = fake.float()
        sums["l1"] += (fake - b).abs().flatten(1).mean(1).sum().item() / 2  # [-1, 1] -> 0-1 scale
        sums["psnr"] += psnr(fake, b).sum().item()
        sums["ssim"] += ssim(fake, b).sum().item()
        if alpha is not None and pairs.mask is not None:
            mask = pairs.mask[i : i + batch].to(rt.device).float() / 255
            sums["mask_iou"] = sums.get("mask_iou", 0.0) + mask_iou(alpha[:, 0], mask).sum().item()
            if unwrap(g).cfg.fill:
                with rt.autocast():
                    found = unwrap(g).find(a)
                solid = solid_parts(mask.unsqueeze(1))
                sums["find_iou"] = sums.get("find_iou", 0.0) + mask_iou(found, solid).sum().item()
    g.train(was_training)
    return {k: v / max(1, len(pairs)) for k, v in sums.items()}


@torch.no_grad()
def sample_grid(g: nn.Module, pairs: PairSet, rt: Runtime) -> np.ndarray:
    """(H, W, 3) uint8 grid, one row per pair: input | output | target."""
    was_training = g.training
    g.eval()
    with rt.autocast():
        fake = eager(g)(_to_device(pairs.a, rt))
    g.train(was_training)
    rows = zip(tensor_to_images(images_to_tensor(pairs.a)), tensor_to_images(fake),
               tensor_to_images(images_to_tensor(pairs.b)))
    return image_grid([list(r) for r in rows])


def _to_device(images: torch.Tensor, rt: Runtime) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H, W) in [-1, 1] on the device, in its memory format."""
    t = images.to(rt.device, non_blocking=True)
    return images_to_tensor(t).contiguous(memory_format=rt.memory_format)


# ----------------------------------------------------------------------------- the loop

@dataclass(frozen=True)
class TrainProgress:
    """What ``on_progress`` receives after every step (counts are over all ranks)."""

    epoch: int  # 0-based epoch the step belongs to
    total_epochs: int
    images: int  # images trained on so far in the whole run
    total_images: int
    losses: dict[str, float]  # the latest logged losses ({} before the first log step)


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    metrics: dict[str, float]  # final validation metrics
    steps: int
    seconds: float
    summary: dict[str, Any]


def train(data_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: TrainConfig, rt: Runtime,
          effect: str | None = None, resume: bool = False, overwrite: bool = False,
          data: PairData | None = None, on_progress: Callable[[TrainProgress], None] | None = None,
          tensorboard: bool = False) -> TrainResult | None:
    """Train a pix2pix model on a dataset folder; write the run folder and the model file.

    Returns the result on rank 0 (None on other ranks). Raises RunError / CheckpointError /
    DatasetError / ValueError with one-line messages for unusable inputs, before anything is
    written. ``tensorboard`` also logs scalars and sample grids to OUT/tensorboard/.
    """
    # set-up: check everything, build (or restore) the state, then open the run folder
    data = data or load_pairs(data_dir)
    _check_data(data, cfg)
    paths = RunPaths(Path(out_dir))
    resume_from = check_run_folder(paths, cfg, resume, overwrite, data.fingerprint)
    state = build_state(cfg, rt)
    if rt.reuse_memory:
        reuse_freed_memory(True)
    if resume_from is not None:
        ckpt.load(resume_from, state, rt)
    wrap_ddp(state, rt)
    _barrier(rt)  # every rank has validated before rank 0 touches the folder
    log = None
    if rt.is_main:
        with write_errors(paths, kept=False):
            _open_run_folder(paths, cfg, fresh=overwrite and resume_from is None)
            log = MetricsLog(paths.metrics, state.step if resume_from else None,
                             paths.root / "tensorboard" if tensorboard else None)
    first_epoch = _epoch_batches(len(data.train), cfg, rt, 0)  # every epoch has the same sizes
    steps_per_epoch = len(first_epoch)
    images_per_epoch = sum(map(len, first_epoch)) * rt.world_size
    grid_pairs = _grid_pairs(data, cfg)
    val_metrics: dict[str, float] = {}
    losses: dict[str, float] = {}
    start_step, t0 = state.step, time.perf_counter()
    window_t, window_images = t0, 0
    images_done = state.epoch * images_per_epoch + (state.step % steps_per_epoch) * cfg.batch_size * rt.world_size

    with write_errors(paths, kept=True):
        # the epochs: each resumes where a checkpoint left it (batches are seeded by epoch)
        while state.epoch < cfg.total_epochs:
            batches = _epoch_batches(len(data.train), cfg, rt, state.epoch)
            for idx in batches[state.step - state.epoch * steps_per_epoch :]:
                a, b, mask = make_batch(data.train, idx, state, cfg, rt)
                step_losses = train_step(state, a, b, cfg, rt, mask)
                state.step += 1
                window_images += len(idx) * rt.world_size
                images_done += len(idx) * rt.world_size
                # .item() waits for the device: only when logging, and at the run's last step,
                # so a run shorter than --log-every still has its losses on record
                if state.step % cfg.log_every == 0 or state.step == cfg.total_epochs * steps_per_epoch:
                    losses = {k: v.item() for k, v in step_losses.items()}
                    now = time.perf_counter()
                    if log is not None:
                        log.write({"kind": "train", "step": state.step, "epoch": state.epoch,
                                   "lr": state.opt_g.param_groups[0]["lr"],
                                   "images_per_s": window_images / max(now - window_t, 1e-9), **losses})
                    window_t, window_images = now, 0
                if on_progress is not None and rt.is_main:
                    on_progress(TrainProgress(state.epoch, cfg.total_epochs, images_done,
                                              cfg.total_epochs * images_per_epoch, losses))
                # extra checkpoints between epoch ends (the epoch's last step is saved below)
                if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and state.step % steps_per_epoch:
                    _checkpoint(paths, state, cfg, rt, data.fingerprint)
            # end of the epoch: learning rate, validation, the sample grid, a checkpoint
            state.sched_g.step()
            state.sched_d.step()
            state.epoch += 1
            if rt.is_main:
                g = unwrap(state.g)
                if len(data.val):
                    val_metrics = validate(g, data.val, rt)
                    log.write({"kind": "val", "step": state.step, "epoch": state.epoch, **val_metrics})
                samples = sample_grid(g, grid_pairs, rt)
                write_image(paths.sample(state.epoch), samples)
                log.image("samples", samples, state.step)
            _checkpoint(paths, state, cfg, rt, data.fingerprint)

        # the end: replicas must agree; rank 0 writes the model file and the curves
        seconds = time.perf_counter() - t0
        checksums = _replica_checksums(unwrap(state.g), rt)
        result = None
        if rt.is_main:
            g = unwrap(state.g)
            ensure_finite(g, paths.root)
            metrics = val_metrics or (validate(g, data.val, rt) if len(data.val) else {})
            training = {"steps": state.step, "epochs": state.epoch, "seconds": seconds,
                        "steps_this_session": state.step - start_step, "replica_checksums": checksums}
            meta = model_metadata(data, cfg, rt, effect or paths.root.name, metrics, training)
            save_generator(paths.model, g, meta)
            plot_curves(log.records(), paths.curves)
            log.close()
            result = TrainResult(paths.model, metrics, state.step, seconds, meta)
    _barrier(rt)
    return result


def _open_run_folder(paths: RunPaths, cfg: TrainConfig, fresh: bool) -> None:
    """Empty the folder for --overwrite, remove what a killed run left half-written in our own
    folders (never the user's wider --out tree), and record the config."""
    if fresh:
        clear_run(paths)
    remove_temp_files(paths.root, paths.checkpoints, paths.root / "samples", recursive=False)
    paths.checkpoints.mkdir(parents=True, exist_ok=True)
    write_text(paths.root / "config.json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True))


def _grid_pairs(data: PairData, cfg: TrainConfig) -> PairSet:
    """The fixed validation pairs (training pairs without a validation split) of the sample grid."""
    val = data.val if len(data.val) else data.train
    return val.take(min(cfg.val_samples, len(val)))


def planned_steps(n_pairs: int, cfg: TrainConfig, world_size: int | None = None) -> int:
    """Optimizer steps one process takes over the whole run on ``n_pairs`` training pairs
    (``world_size``: processes under torchrun, by default from its environment)."""
    world = world_size or int(os.environ.get("WORLD_SIZE", "1"))
    per_process = math.ceil(n_pairs / world)  # DistributedSampler pads to equal shares
    return cfg.total_epochs * math.ceil(per_process / cfg.batch_size)


def _epoch_batches(n: int, cfg: TrainConfig, rt: Runtime, epoch: int) -> list[list[int]]:
    """This rank's batches of indices for ``epoch`` (same order on resume: seeded by epoch)."""
    sampler = DistributedSampler(range(n), num_replicas=rt.world_size, rank=rt.rank,
                                 shuffle=True, seed=cfg.seed)
    sampler.set_epoch(epoch)
    idx = list(sampler)
    if rt.compile and len(idx) % cfg.batch_size:
        # A compiled step is specialised to its batch size: a smaller last batch would compile
        # G, D and the losses again (~30 s on a CPU). Fill it from the epoch's first pairs.
        pad = cfg.batch_size - len(idx) % cfg.batch_size
        idx += (idx * math.ceil(pad / len(idx)))[:pad]
    return [idx[i : i + cfg.batch_size] for i in range(0, len(idx), cfg.batch_size)]


def make_batch(pairs: PairSet, idx: Sequence[int] | torch.Tensor, state: GanState, cfg: TrainConfig,
               rt: Runtime) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The pairs ``idx`` as a training batch on ``rt.device``: A, B and (for an alpha generator,
    when the data has them) the edit masks, augmented alike (``state.aug_rng``), in
    ``rt.memory_format``; A and B float (B, C, H, W) in [-1, 1], masks (B, 1, H, W) in [0, 1]."""
    # Gathered, moved and (without jitter) flipped as uint8 NHWC: a quarter of the bytes, and
    # made float they are already the channels-last maps the step wants.
    crops = [t[idx].to(rt.device, non_blocking=True) for t in (pairs.a, pairs.b)]
    if cfg.generator.alpha and pairs.mask is not None:
        crops.append(pairs.mask[idx].to(rt.device, non_blocking=True).unsqueeze(-1))
    if cfg.jitter == 1.0 and cfg.flip:
        crops = flip_crops(crops, state.aug_rng)
    out = [images_to_tensor(c) for c in crops[:2]]
    if len(crops) > 2:  # the masks, 0-255 -> [0, 1]
        out.append(crops[2].permute(0, 3, 1, 2).float().div_(255))
    if cfg.jitter != 1.0:
        out = augment_all(out, state.aug_rng, cfg.jitter, cfg.flip)
    out = [t.contiguous(memory_format=rt.memory_format) for t in out]
    return out[0], out[1], out[2] if len(out) > 2 else None


def _checkpoint(paths: RunPaths, state: GanState, cfg: TrainConfig, rt: Runtime,
                data_fingerprint: str) -> None:
    rng = ckpt.gather_rng(state, rt)  # collective: every rank takes part
    if rt.is_main:
        ckpt.save(paths.checkpoints, state, cfg, rng, rt.world_size, data_fingerprint)
        ckpt.prune(paths.checkpoints, cfg.keep_checkpoints)
    _barrier(rt)


def _barrier(rt: Runtime) -> None:
    if rt.world_size > 1:
        dist.barrier()


def param_checksum(model: nn.Module) -> float:
    """Sum of all parameters in float64: equal on every DDP rank when replicas are in sync."""
    with torch.no_grad():
        return float(sum(p.detach().double().sum().item() for p in model.parameters()))


def _replica_checksums(g: nn.Module, rt: Runtime) -> list[float]:
    mine = param_checksum(g)
    if rt.world_size == 1:
        return [mine]
    everyone: list[Any] = [None] * rt.world_size
    dist.all_gather_object(everyone, mine)
    if len(set(everyone)) != 1:
        raise RuntimeError(f"DDP replicas diverged: generator checksums {everyone}")
    return everyone


def _check_data(data: PairData, cfg: TrainConfig) -> None:
    g = cfg.generator
    if tuple(data.size) != tuple(cfg.size):
        raise ValueError(f"{data.root}: crops are {data.size[0]}x{data.size[1]}, "
                         f"config expects {cfg.size[0]}x{cfg.size[1]}")
    if data.channels != (g.in_channels, g.out_channels):
        raise ValueError(f"{data.root}: dataset channels {data.channels} do not match the "
                         f"generator's ({g.in_channels}, {g.out_channels})")
    if g.fill and data.train.mask is None:
        raise DatasetError(f"{data.root}: a fill generator learns what to erase from edit masks "
                         f"(mask/ folders, made by synth), and this dataset has none")
    if g.alpha and data.train.mask is None:
        warnings.warn(f"{data.root}: no edit masks (mask/ folders, made by synth); the alpha "
                      f"mask is learned from the images alone", stacklevel=3)


def ensure_finite(g: nn.Module, root: Path) -> None:
    """Raise RunError if any of ``g``'s weights or buffers is nan or inf: a run that diverged
    (a learning rate or loss weight far too large) must not leave a model that paints black."""
    bad = [name for name, t in g.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise RunError(f"{root}: training diverged ({len(bad)} of the generator's tensors are not finite, "
                       f"e.g. {bad[0]}); no model written. Try a lower --lr or --lambda-l1")


def model_metadata(data: PairData, cfg: TrainConfig, rt: Runtime, effect: str,
                   metrics: dict[str, float], training: dict[str, Any]) -> dict[str, Any]:
    """The metadata stored in model.safetensors (everything needed to rebuild and use G)."""
    g = cfg.generator
    return {
        "effect": effect,
        "generator": g.to_dict(),
        "region": data.region.to_dict(),
        "size": list(cfg.size),
        "channels": {"in": g.in_channels, "out": g.out_channels},
        "normalization": "[-1,1]",
        "data": data.summary(),
        "metrics": metrics,
        "training": {"precision": rt.precision, "device": str(rt.device),
                     "hardware": hardware_name(rt.device), "finished": time.strftime("%Y-%m-%d", time.gmtime()),
                     # metrics' L1 is on the 0-1 scale of pixel values, as `eval` reports it
                     # (model files without this key measured it on [-1, 1]: twice as large)
                     "l1_scale": "0-1",
                     "world_size": rt.world_size, "config": cfg.to_dict(), **training},
    }
