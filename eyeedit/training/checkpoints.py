"""Training checkpoints: one safetensors file per checkpoint, never a pickle.

``checkpoints/step_00001234.safetensors`` holds every tensor of the training state under
prefixed names (``g/``, ``d/``, ``opt_g/<param>/<key>``, ``opt_d/...``, ``rng/<rank>/<stream>``)
and, in its header, a JSON document with the rest: the training config, epoch and step, the
optimizers' param groups, both schedulers, the gradient scaler and the world size. Files are
written atomically, so a run killed at any moment leaves only whole checkpoints behind.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as to_bytes

from eyeedit.imageio import atomic_write
from eyeedit.training.config import TrainConfig
from eyeedit.training.runtime import Runtime
from eyeedit.training.state import GanState, unwrap

CHECKPOINT_FORMAT = "eyeedit-checkpoint/1"
META_KEY = "eyeedit_checkpoint"
_NAME = re.compile(r"step_(\d+)\.safetensors$")
_HOW_KEYS = ("foreach", "fused", "capturable", "differentiable")


class CheckpointError(Exception):
    """A checkpoint file cannot be read (one-line message naming it)."""


def _optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    sd = opt.state_dict()
    tensors = {f"{prefix}/{pid}/{key}": torch.as_tensor(val)
               for pid, state in sd["state"].items() for key, val in state.items()}
    return tensors, sd["param_groups"]


def _optimizer_load(opt: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor],
                    groups: list[dict[str, Any]]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, t in tensors.items():
        if name.startswith(prefix + "/"):
            _, pid, key = name.split("/", 2)
            state.setdefault(int(pid), {})[key] = t
    for g, mine in zip(groups, opt.param_groups):
        g["betas"] = tuple(g["betas"])
        # How the step runs is this run's choice, not the checkpoint's (fused vs foreach).
        g.update({k: mine[k] for k in _HOW_KEYS if k in mine})
    opt.load_state_dict({"state": state, "param_groups": groups})


def rng_state(state: GanState, rt: Runtime) -> dict[str, torch.Tensor]:
    """This process's random streams: torch (dropout), augmentation, and CUDA if used."""
    out = {"torch": torch.get_rng_state(), "aug": state.aug_rng.get_state()}
    if rt.device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(rt.device)
    return out


def gather_rng(state: GanState, rt: Runtime) -> list[dict[str, torch.Tensor]]:
    """Every rank's random streams (a collective call under DDP), indexed by rank."""
    mine = rng_state(state, rt)
    if rt.world_size == 1:
        return [mine]
    everyone: list[Any] = [None] * rt.world_size
    dist.all_gather_object(everyone, mine)
    return everyone


def save(folder: Path, state: GanState, cfg: TrainConfig, rng: list[dict[str, torch.Tensor]],
         world_size: int, data_fingerprint: str = "") -> Path:
    """Write ``folder/step_<step>.safetensors`` atomically; returns its path."""
    tensors = {f"g/{k}": v for k, v in unwrap(state.g).state_dict().items()}
    tensors.update({f"d/{k}": v for k, v in unwrap(state.d).state_dict().items()})
    opt_g, groups_g = _optimizer_tensors("opt_g", state.opt_g)
    opt_d, groups_d = _optimizer_tensors("opt_d", state.opt_d)
    tensors.update(opt_g)
    tensors.update(opt_d)
    for rank, streams in enumerate(rng):
        tensors.update({f"rng/{rank}/{k}": v.cpu() for k, v in streams.items()})
    meta = {
        "format": CHECKPOINT_FORMAT, "config": cfg.to_dict(), "data": data_fingerprint, "epoch": state.epoch,
        "step": state.step, "world_size": world_size, "opt_g": groups_g, "opt_d": groups_d,
        "sched_g": state.sched_g.state_dict(), "sched_d": state.sched_d.state_dict(),
        "scaler": state.scaler.state_dict(),
    }
    blob = to_bytes({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
                    metadata={META_KEY: json.dumps(meta)})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{state.step:08d}.safetensors"
    with atomic_write(path, durable=True) as fh:
        fh.write(blob)
    return path


def _read(path: Path, prefix: str | None = "") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(the tensors whose names start with ``prefix``, the metadata) of a checkpoint; with
    ``prefix=None`` no tensor is read (the metadata sits in the header)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = json.loads((fh.metadata() or {}).get(META_KEY, "null"))
            if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
                raise CheckpointError(f"{path}: not an eyeedit checkpoint")
            names = [] if prefix is None else [k for k in fh.keys() if k.startswith(prefix)]  # noqa: SIM118
            tensors = {k: fh.get_tensor(k) for k in names}
    except (SafetensorError, OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({str(exc).splitlines()[0]})") from None
    return tensors, meta


def read_config(path: Path) -> dict[str, Any]:
    """The training config (as saved, a plain dict) of a checkpoint."""
    return _read(path, None)[1]["config"]


def read_data_fingerprint(path: Path) -> str:
    """The fingerprint of the dataset a checkpoint was trained on ('' if it did not record one)."""
    return _read(path, None)[1].get("data", "")


def generator_state(path: Path) -> dict[str, torch.Tensor]:
    """The generator's weights in a checkpoint (a state dict), e.g. to evaluate each one."""
    tensors, _ = _read(path, "g/")
    return {k[2:]: v for k, v in tensors.items()}


def load(path: Path, state: GanState, rt: Runtime) -> None:
    """Restore ``state`` (unwrapped networks) in place from a checkpoint, RNG streams included."""
    tensors, meta = _read(path)
    for prefix, model in (("g/", state.g), ("d/", state.d)):
        sub = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        unwrap(model).load_state_dict(sub, strict=True)
    _optimizer_load(state.opt_g, "opt_g", tensors, meta["opt_g"])
    _optimizer_load(state.opt_d, "opt_d", tensors, meta["opt_d"])
    state.sched_g.load_state_dict(meta["sched_g"])
    state.sched_d.load_state_dict(meta["sched_d"])
    state.scaler.load_state_dict(meta["scaler"])
    state.epoch, state.step = meta["epoch"], meta["step"]
    _restore_rng(tensors, meta, state, rt)


def _restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any], state: GanState,
                 rt: Runtime) -> None:
    if meta["world_size"] != rt.world_size:
        warnings.warn(f"checkpoint was written by {meta['world_size']} process(es), this run has "
                      f"{rt.world_size}: random streams restart from the seed", stacklevel=2)
        return
    prefix = f"rng/{rt.rank}/"
    torch.set_rng_state(tensors[prefix + "torch"])
    state.aug_rng.set_state(tensors[prefix + "aug"])
    if rt.device.type == "cuda" and prefix + "cuda" in tensors:
        torch.cuda.set_rng_state(tensors[prefix + "cuda"], rt.device)


def all_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files in ``folder``, oldest step first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.search(p.name))]
    return [p for _, p in sorted(found)]


def latest(folder: Path) -> Path | None:
    """The checkpoint of the highest step in ``folder``, or None when it holds none."""
    files = all_checkpoints(folder)
    return files[-1] if files else None


def prune(folder: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    for old in all_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
