"""The training state: networks, optimizers, schedulers and counters (what a checkpoint holds)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from eyeedit.model.networks import build_discriminator, build_generator
from eyeedit.training.config import TrainConfig
from eyeedit.training.runtime import Runtime
from eyeedit.training.speed import (
    adam,
    compile_module,
    dense_skip_grads,
    fold_resize_levels,
    small_convs_as_gemm,
)


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
    """The network inside a DDP wrapper (the module itself when not wrapped)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def _adam(params: Any, cfg: TrainConfig, rt: Runtime) -> torch.optim.Adam:
    return adam(params, cfg.lr, (cfg.beta1, cfg.beta2), rt.optimizer)


def build_state(cfg: TrainConfig, rt: Runtime) -> GanState:
    """Fresh networks (seeded by ``cfg.seed``) on ``rt.device`` with their optimizers."""
    torch.manual_seed(cfg.seed)
    g = build_generator(cfg.generator).to(rt.device, memory_format=rt.param_memory_format)
    d = build_discriminator(cfg.discriminator).to(rt.device, memory_format=rt.param_memory_format)
    for net in (g, d):
        if rt.fold_resize:
            fold_resize_levels(net)
        if rt.small_convs:
            small_convs_as_gemm(net)
        if rt.dense_grads:
            dense_skip_grads(net)
        if rt.compile:
            compile_module(net)
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
