"""pix2pix training: the config, the step and the loop.

Read top to bottom: ``TrainConfig`` (what to train), ``build_state`` (networks and optimizers),
``train_step`` (one GAN update, returning its losses), ``train`` (epochs, validation,
checkpoints, the final model file). Where and how it runs (device, precision, DDP) is a
``Runtime`` from :mod:`eyeedit.training.runtime`, decided once by ``setup_runtime`` at the entry point.

A run folder ``runs/NAME/`` holds ``config.json``, ``metrics.jsonl``, ``checkpoints/``,
``samples/epoch_NNN.png`` (input | output | target on fixed validation pairs), ``curves.png``
and the final ``model.safetensors``. Multi-process runs start through torchrun; only rank 0
writes anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from eyeedit.training import checkpoints as ckpt
from eyeedit.model import store
from eyeedit.model.tensors import images_to_tensor, tensor_to_images
from eyeedit.data.loader import PairData, PairSet, augment, load_pairs
from eyeedit.imageio import remove_temp_files, write_image, write_text
from eyeedit.model.losses import (
    GAN_LOSSES,
    discriminator_fake_loss,
    discriminator_real_loss,
    generator_adversarial_loss,
    psnr,
    ssim,
)
from eyeedit.model.networks import DiscriminatorConfig, GeneratorConfig, build_discriminator, build_generator
from eyeedit.training.plots import plot_curves
from eyeedit.training.runtime import Runtime


class RunError(Exception):
    """The run folder or its checkpoint cannot be used as asked (one-line message)."""


# ----------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (device and precision aside)."""

    size: tuple[int, int]  # (width, height) of the crops
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    gan_loss: str = "vanilla"
    lambda_l1: float = 100.0
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    epochs: int = 100  # at the initial learning rate
    decay_epochs: int = 100  # then linearly down to zero
    batch_size: int = 1
    # Scale-up factor before the random crop. pix2pix uses 286/256 = 1.12 and rescales its test
    # images the same way; eyeedit's crops are landmark-aligned and never rescaled at inference,
    # so a jittered model sees faces 12% larger in training and draws its edit too large.
    jitter: float = 1.0
    flip: bool = True
    seed: int = 0
    keep_checkpoints: int = 3
    checkpoint_every: int = 0  # steps between extra checkpoints; 0: only at epoch ends
    log_every: int = 10
    val_samples: int = 4  # validation pairs shown in the per-epoch grid

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        self.generator.check_size(*self.size)
        g, d = self.generator, self.discriminator
        if d.in_channels != g.in_channels + g.out_channels:
            raise ValueError(f"discriminator sees concat(A, B): in_channels must be "
                             f"{g.in_channels + g.out_channels}, got {d.in_channels}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan loss must be one of {', '.join(GAN_LOSSES)}, got {self.gan_loss!r}")
        if self.epochs < 0 or self.decay_epochs < 0 or self.epochs + self.decay_epochs < 1:
            raise ValueError("epochs and decay epochs must be >= 0 with at least one epoch in total")
        if self.batch_size < 1 or self.jitter < 1 or self.keep_checkpoints < 1:
            raise ValueError("batch size and keep-checkpoints must be >= 1 and jitter >= 1")

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.decay_epochs

    def lr_factor(self, epoch: int) -> float:
        """Learning-rate multiplier for 0-based ``epoch``: 1 for ``epochs``, then linear to 0."""
        return 1.0 - max(0, epoch + 1 - self.epochs) / (self.decay_epochs + 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in data.items() if k in known}
        kw["generator"] = GeneratorConfig.from_dict(kw["generator"])
        kw["discriminator"] = DiscriminatorConfig.from_dict(kw["discriminator"])
        return cls(**kw)


# ----------------------------------------------------------------------------- state and step

@dataclass
class GanState:
    """Networks, optimizers and counters: everything a checkpoint holds."""

    g: nn.Module  # possibly DDP-wrapped
    d: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    aug_rng: torch.Generator  # CPU stream for jitter and flip
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps completed


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def _adam(params: Any, cfg: TrainConfig, rt: Runtime) -> torch.optim.Adam:
    # Fused Adam is one kernel per step on CUDA; on CPU the foreach path is the fast one.
    fast = {"fused": True} if rt.device.type == "cuda" else {"foreach": True}
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **fast)


def build_state(cfg: TrainConfig, rt: Runtime) -> GanState:
    """Fresh networks (seeded by ``cfg.seed``) on ``rt.device`` with their optimizers."""
    torch.manual_seed(cfg.seed)
    g = build_generator(cfg.generator).to(rt.device, memory_format=rt.memory_format)
    d = build_discriminator(cfg.discriminator).to(rt.device, memory_format=rt.memory_format)
    opt_g, opt_d = _adam(g.parameters(), cfg, rt), _adam(d.parameters(), cfg, rt)
    sched_g, sched_d = (torch.optim.lr_scheduler.LambdaLR(o, cfg.lr_factor) for o in (opt_g, opt_d))
    scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.precision == "fp16")
    # Each rank draws its own augmentation and dropout streams; weights come from rank 0.
    aug_rng = torch.Generator().manual_seed(cfg.seed + 1000 * rt.rank)
    torch.manual_seed(cfg.seed + rt.rank)
    return GanState(g, d, opt_g, opt_d, sched_g, sched_d, scaler, aug_rng)


def wrap_ddp(state: GanState, rt: Runtime) -> None:
    """Wrap G and D for data-parallel training (call after any checkpoint is loaded)."""
    if rt.world_size == 1:
        return
    ids = [rt.device.index] if rt.device.type == "cuda" else None
    state.g = DistributedDataParallel(state.g, device_ids=ids)
    state.d = DistributedDataParallel(state.d, device_ids=ids)


def _no_sync(model: nn.Module) -> contextlib.AbstractContextManager:
    return model.no_sync() if isinstance(model, DistributedDataParallel) else contextlib.nullcontext()


def _set_requires_grad(model: nn.Module, flag: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(flag)


def train_step(state: GanState, a: torch.Tensor, b: torch.Tensor, cfg: TrainConfig,
               rt: Runtime) -> dict[str, torch.Tensor]:
    """One pix2pix update of D then G on a batch; returns the detached losses.

    ``a``, ``b``: float (B, C, H, W) in [-1, 1] on ``rt.device``.
    """
    scaler, kind = state.scaler, cfg.gan_loss
    d_plain = unwrap(state.d)
    with rt.autocast():
        fake = state.g(a)
    # D: fake then real, as two backward passes; under DDP the first one skips the all-reduce
    # so the gradients are averaged across ranks once, after both halves are accumulated.
    state.opt_d.zero_grad(set_to_none=True)
    with _no_sync(state.d):
        with rt.autocast():
            loss_d_fake = discriminator_fake_loss(kind, state.d(torch.cat([a, fake.detach()], 1)))
        scaler.scale(loss_d_fake).backward()
    with rt.autocast():
        loss_d_real = discriminator_real_loss(kind, state.d(torch.cat([a, b], 1)))
    scaler.scale(loss_d_real).backward()
    scaler.step(state.opt_d)
    # G: fool D (frozen, and called unwrapped so its DDP reducer expects no gradients) + L1.
    _set_requires_grad(d_plain, False)
    state.opt_g.zero_grad(set_to_none=True)
    with rt.autocast():
        loss_g_gan = generator_adversarial_loss(kind, d_plain(torch.cat([a, fake], 1)))
    loss_g_l1 = F.l1_loss(fake.float(), b.float())
    scaler.scale(loss_g_gan + cfg.lambda_l1 * loss_g_l1).backward()
    scaler.step(state.opt_g)
    scaler.update()
    _set_requires_grad(d_plain, True)
    losses = {"G_GAN": loss_g_gan, "G_L1": loss_g_l1, "D_real": loss_d_real, "D_fake": loss_d_fake}
    return {k: v.detach() for k, v in losses.items()}


# ----------------------------------------------------------------------------- validation

@torch.no_grad()
def evaluate(g: nn.Module, pairs: PairSet, rt: Runtime, batch: int = 16) -> dict[str, float]:
    """Validation L1 (on [-1, 1]), PSNR (dB) and SSIM of G in eval mode over ``pairs``."""
    was_training = g.training
    g.eval()
    sums = {"l1": 0.0, "psnr": 0.0, "ssim": 0.0}
    for i in range(0, len(pairs), batch):
        a, b = (_to_device(t[i : i + batch], rt) for t in (pairs.a, pairs.b))
        with rt.autocast():
            fake = g(a)
        fake = fake.float()
        sums["l1"] += (fake - b).abs().flatten(1).mean(1).sum().item()
        sums["psnr"] += psnr(fake, b).sum().item()
        sums["ssim"] += ssim(fake, b).sum().item()
    g.train(was_training)
    return {k: v / max(1, len(pairs)) for k, v in sums.items()}


@torch.no_grad()
def sample_grid(g: nn.Module, pairs: PairSet, rt: Runtime) -> np.ndarray:
    """(H, W, 3) uint8 grid, one row per pair: input | output | target."""
    from eyeedit.viz import grid

    was_training = g.training
    g.eval()
    with rt.autocast():
        fake = g(_to_device(pairs.a, rt))
    g.train(was_training)
    rows = zip(tensor_to_images(images_to_tensor(pairs.a)), tensor_to_images(fake),
               tensor_to_images(images_to_tensor(pairs.b)))
    return grid([list(r) for r in rows])


def _to_device(images: torch.Tensor, rt: Runtime) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H, W) in [-1, 1] on the device, in its memory format."""
    t = images.to(rt.device, non_blocking=True)
    return images_to_tensor(t).contiguous(memory_format=rt.memory_format)


# ----------------------------------------------------------------------------- the run folder

@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def model(self) -> Path:
        return self.root / "model.safetensors"

    def sample(self, epoch: int) -> Path:
        return self.root / "samples" / f"epoch_{epoch:03d}.png"


def _prepare_run(paths: RunPaths, cfg: TrainConfig, resume: bool, overwrite: bool) -> Path | None:
    """Check the run folder against the request; returns the checkpoint to resume from."""
    latest = ckpt.latest(paths.checkpoints)
    if resume:
        if latest is None:
            # Killed before its first checkpoint: nothing to continue, so start afresh rather
            # than make the user choose between --resume and --overwrite.
            _clear_run(paths)
            return None
        saved = ckpt.read_config(latest)
        diff = sorted(k for k, v in cfg.to_dict().items() if saved.get(k) != _jsonish(v))
        if diff:
            raise RunError(f"{latest}: run was started with different {', '.join(diff)}; "
                           f"resume with the same options")
        return latest
    started = latest is not None or paths.metrics.exists() or paths.model.exists()
    if started and not overwrite:
        raise RunError(f"{paths.root}: already holds a run; pass --resume to continue it "
                       f"or --overwrite to start again")
    return None


def _jsonish(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _clear_run(paths: RunPaths) -> None:
    for sub in ("checkpoints", "samples"):
        shutil.rmtree(paths.root / sub, ignore_errors=True)
    for f in (paths.metrics, paths.model, paths.root / "curves.png"):
        f.unlink(missing_ok=True)


class MetricsLog:
    """metrics.jsonl, appended by rank 0; on resume, records after the checkpoint are dropped."""

    def __init__(self, path: Path, keep_until_step: int | None):
        self.path = path
        if keep_until_step is not None and path.exists():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if _parse(line) and _parse(line)["step"] <= keep_until_step]
            write_text(path, "".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [r for r in map(_parse, self.path.read_text(encoding="utf-8").splitlines()) if r]


def _parse(line: str) -> dict[str, Any] | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None  # a torn last line from a killed run


# ----------------------------------------------------------------------------- the loop

@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    metrics: dict[str, float]  # final validation metrics
    steps: int
    seconds: float
    summary: dict[str, Any]


def _epoch_batches(n: int, cfg: TrainConfig, rt: Runtime, epoch: int) -> list[list[int]]:
    """This rank's batches of indices for ``epoch`` (same order on resume: seeded by epoch)."""
    sampler = DistributedSampler(range(n), num_replicas=rt.world_size, rank=rt.rank,
                                 shuffle=True, seed=cfg.seed)
    sampler.set_epoch(epoch)
    idx = list(sampler)
    return [idx[i : i + cfg.batch_size] for i in range(0, len(idx), cfg.batch_size)]


def _batch(pairs: PairSet, idx: list[int], state: GanState, cfg: TrainConfig,
           rt: Runtime) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = (images_to_tensor(t[idx].to(rt.device, non_blocking=True)) for t in (pairs.a, pairs.b))
    a, b = augment(a, b, state.aug_rng, cfg.jitter, cfg.flip)
    return a.contiguous(memory_format=rt.memory_format), b.contiguous(memory_format=rt.memory_format)


def _progress_text(epoch: int, cfg: TrainConfig, losses: dict[str, float]) -> str:
    d = losses["D_real"] + losses["D_fake"]
    return (f"epoch {epoch + 1}/{cfg.total_epochs}  G {losses['G_GAN']:.3f}  "
            f"L1 {losses['G_L1']:.3f}  D {d:.3f}")


class _Loop:
    """The epoch loop of one rank; rank 0 also logs, validates and writes checkpoints."""

    def __init__(self, data: PairData, paths: RunPaths, cfg: TrainConfig, rt: Runtime,
                 state: GanState, log: MetricsLog | None):
        self.data, self.paths, self.cfg, self.rt, self.state, self.log = data, paths, cfg, rt, state, log
        self.steps_per_epoch = len(_epoch_batches(len(data.train), cfg, rt, 0))
        val = data.val if len(data.val) else data.train
        k = min(cfg.val_samples, len(val))
        self.grid_pairs = PairSet(val.a[:k], val.b[:k], val.names[:k])
        self.last_val: dict[str, float] = {}
        self.window = (time.perf_counter(), 0)

    def run(self, progress: Any) -> None:
        cfg, state, world = self.cfg, self.state, self.rt.world_size
        task = None
        while state.epoch < cfg.total_epochs:
            batches = _epoch_batches(len(self.data.train), cfg, self.rt, state.epoch)
            done_in_epoch = state.step - state.epoch * self.steps_per_epoch
            if progress is not None and task is None:  # counts images over all ranks
                per_epoch = sum(map(len, batches)) * world
                done = state.epoch * per_epoch + sum(map(len, batches[:done_in_epoch])) * world
                task = progress.add_task("training", total=cfg.total_epochs * per_epoch, completed=done)
            for idx in batches[done_in_epoch:]:
                self._one_step(idx, progress, task)
            self._end_epoch()

    def _one_step(self, idx: list[int], progress: Any, task: Any) -> None:
        state, cfg = self.state, self.cfg
        a, b = _batch(self.data.train, idx, state, cfg, self.rt)
        losses = train_step(state, a, b, cfg, self.rt)
        state.step += 1
        self.window = (self.window[0], self.window[1] + len(idx) * self.rt.world_size)
        if state.step % cfg.log_every == 0 or progress is not None:
            values = {k: v.item() for k, v in losses.items()}
            if progress is not None:
                progress.update(task, advance=len(idx) * self.rt.world_size,
                                description=_progress_text(state.epoch, cfg, values))
            if self.log and state.step % cfg.log_every == 0:
                self._log_train(values)
        # The epoch's last step is saved by _end_epoch, after validation and the LR update.
        end_of_epoch = state.step % self.steps_per_epoch == 0
        if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0 and not end_of_epoch:
            self._checkpoint()

    def _log_train(self, values: dict[str, float]) -> None:
        start, images = self.window
        now = time.perf_counter()
        self.window = (now, 0)
        self.log.write({"kind": "train", "step": self.state.step, "epoch": self.state.epoch,
                        "lr": self.state.opt_g.param_groups[0]["lr"],
                        "images_per_s": images / max(now - start, 1e-9), **values})

    def _end_epoch(self) -> None:
        state = self.state
        state.sched_g.step()
        state.sched_d.step()
        state.epoch += 1
        if self.rt.is_main:
            g = unwrap(state.g)
            if len(self.data.val):
                self.last_val = evaluate(g, self.data.val, self.rt)
                self.log.write({"kind": "val", "step": state.step, "epoch": state.epoch, **self.last_val})
            write_image(self.paths.sample(state.epoch), sample_grid(g, self.grid_pairs, self.rt))
        self._checkpoint()

    def _checkpoint(self) -> None:
        rng = ckpt.gather_rng(self.state, self.rt)  # collective: every rank takes part
        if self.rt.is_main:
            ckpt.save(self.paths.checkpoints, self.state, self.cfg, rng, self.rt.world_size)
            ckpt.prune(self.paths.checkpoints, self.cfg.keep_checkpoints)
        if self.rt.world_size > 1:
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


def train(data_dir: str | os.PathLike, out_dir: str | os.PathLike, cfg: TrainConfig, rt: Runtime,
          effect: str | None = None, resume: bool = False, overwrite: bool = False,
          data: PairData | None = None, show_progress: bool = True) -> TrainResult | None:
    """Train a pix2pix model on a dataset folder; write the run folder and the model file.

    Returns the result on rank 0 (None on other ranks). Raises RunError / DatasetError /
    ValueError with one-line messages for unusable inputs, before anything is written.
    """
    data = data or load_pairs(data_dir)
    _check_data(data, cfg)
    paths = RunPaths(Path(out_dir))
    resume_from = _prepare_run(paths, cfg, resume, overwrite)
    if rt.world_size > 1:
        dist.barrier()  # every rank has validated before rank 0 touches the folder
    if rt.is_main:
        if overwrite and resume_from is None:
            _clear_run(paths)
        # Files a killed run was writing; only our own folders, never the user's --out tree.
        remove_temp_files(paths.root, paths.checkpoints, paths.root / "samples", recursive=False)
        paths.checkpoints.mkdir(parents=True, exist_ok=True)
        write_text(paths.root / "config.json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    state = build_state(cfg, rt)
    if resume_from is not None:
        ckpt.load(resume_from, state, rt)
    wrap_ddp(state, rt)
    log = MetricsLog(paths.metrics, state.step if resume_from else None) if rt.is_main else None
    loop = _Loop(data, paths, cfg, rt, state, log)
    start_step, t0 = state.step, time.perf_counter()
    with _maybe_progress(rt.is_main and show_progress) as progress:
        loop.run(progress)
    seconds = time.perf_counter() - t0
    checksums = _replica_checksums(unwrap(state.g), rt)
    result = None
    if rt.is_main:
        result = _finish(paths, data, cfg, rt, state, loop, log, effect,
                         {"seconds": seconds, "steps_this_session": state.step - start_step,
                          "replica_checksums": checksums})
    if rt.world_size > 1:
        dist.barrier()
    return result


@contextlib.contextmanager
def _maybe_progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from eyeedit.cli.ui import progress

    with progress("img") as bar:
        yield bar


def _check_data(data: PairData, cfg: TrainConfig) -> None:
    g = cfg.generator
    if tuple(data.size) != tuple(cfg.size):
        raise ValueError(f"{data.root}: crops are {data.size[0]}x{data.size[1]}, "
                         f"config expects {cfg.size[0]}x{cfg.size[1]}")
    if data.channels != (g.in_channels, g.out_channels):
        raise ValueError(f"{data.root}: dataset channels {data.channels} do not match the "
                         f"generator's ({g.in_channels}, {g.out_channels})")


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
                     "world_size": rt.world_size, "config": cfg.to_dict(), **training},
    }


def _finish(paths: RunPaths, data: PairData, cfg: TrainConfig, rt: Runtime, state: GanState,
            loop: _Loop, log: MetricsLog, effect: str | None, extra: dict[str, Any]) -> TrainResult:
    g = unwrap(state.g)
    metrics = loop.last_val or (evaluate(g, data.val, rt) if len(data.val) else {})
    name = effect or paths.root.name
    training = {"steps": state.step, "epochs": state.epoch, **extra}
    meta = model_metadata(data, cfg, rt, name, metrics, training)
    store.save_generator(paths.model, g, meta)
    plot_curves(log.records(), paths.root / "curves.png")
    return TrainResult(paths.model, metrics, state.step, extra["seconds"], meta)


def make_config(data: PairData, *, ngf: int = 64, depth: int | None = None, norm: str = "batch",
                upsample: str = "transpose", dropout: bool = True, residual: bool = False,
                ndf: int = 64, n_layers: int = 3, d_kind: str = "patch", **options: Any) -> TrainConfig:
    """A TrainConfig for ``data``: size and channels from the dataset, the rest from options.

    ``depth=None`` picks the deepest U-Net the crop size allows, at most 8 (the reference).
    Raises ValueError naming the sizes that would work when ``depth`` does not fit.
    """
    from eyeedit.model.networks import max_depth

    c_in, c_out = data.channels
    if depth is None:
        fits = max_depth(*data.size)
        # When nothing fits, keep the default so check_size explains which sizes would.
        depth = min(8, fits) if fits >= 2 else GeneratorConfig.depth
    gen = GeneratorConfig(c_in, c_out, ngf, depth, norm, upsample, dropout, residual)
    disc = DiscriminatorConfig(c_in + c_out, ndf, n_layers, norm, d_kind)
    return TrainConfig(size=data.size, generator=gen, discriminator=disc, **options)
