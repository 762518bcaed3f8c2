"""Weights in and out of model files (safetensors; never a pickle), and rebuilding a generator.

The metadata half of a model file is :mod:`eyeedit.model.store`'s; this module adds the tensors,
so it is the one that needs torch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as tensors_to_bytes

from eyeedit.geometry import eye_openings
from eyeedit.imageio import atomic_write
from eyeedit.model.networks import GeneratorConfig, UNetGenerator
from eyeedit.model.store import (
    META_KEY,
    MODEL_FORMAT,
    REQUIRED_META,
    ModelError,
    open_model,
    read_metadata,
)
from eyeedit.regions import RegionSpec


def save_model(path: str | os.PathLike, tensors: dict[str, Any], metadata: dict[str, Any],
               required: tuple[str, ...] = REQUIRED_META) -> Path:
    """Atomically write ``tensors`` (name -> torch.Tensor) with ``metadata`` to a .safetensors file.

    ``required`` names the metadata fields the file must carry (an effect model's by default).
    """
    meta = {"format": MODEL_FORMAT, **metadata}
    missing = [k for k in required if k not in meta]
    if missing:
        raise ValueError(f"model metadata lacks {', '.join(missing)}")
    blob = tensors_to_bytes({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
                            metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    with atomic_write(path, durable=True) as fh:
        fh.write(blob)
    return Path(path)


def load_model_file(path: str | os.PathLike, required: tuple[str, ...] | None = None,
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors on CPU, metadata) of a model file, its metadata checked; never unpickles.

    ``required=None`` checks an effect model's metadata in full (:func:`open_model`); other
    files (the judge) name the fields they need.
    """
    meta = open_model(path).metadata if required is None else read_metadata(path, required)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: corrupt weights ({str(exc).splitlines()[0]})") from None
    return tensors, meta


def save_generator(path: str | os.PathLike, model: Any, metadata: dict[str, Any]) -> Path:
    """Write a generator ``nn.Module``'s weights (fp32, CPU) with its metadata, atomically.

    ``metadata["generator"]`` must be the config dict the model was built from.
    """
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    return save_model(path, tensors, metadata)


def load_generator(path: str | os.PathLike, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Rebuild a model file's generator (in eval mode, on ``device``) and return it with its metadata.

    The architecture comes from ``metadata["generator"]``; weights must match it exactly.
    Raises ModelError (one line naming the file) otherwise. Never unpickles.
    """
    tensors, meta = load_model_file(path)
    try:
        cfg = GeneratorConfig.from_dict(meta["generator"])
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: bad generator config in metadata ({exc})") from None
    model = UNetGenerator(cfg)
    problem = weights_mismatch(model.state_dict(), tensors)
    if problem:
        raise ModelError(f"{path}: weights do not match the generator config ({problem})")
    model.load_state_dict(tensors, strict=True)
    if cfg.fill and isinstance(meta.get("region"), dict):
        try:
            spec = RegionSpec.from_dict(meta["region"])
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{path}: bad region in metadata ({exc})") from None
        model.keep(torch.from_numpy(eye_openings(spec)))
    return model.to(device).eval(), meta


def weights_mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str:
    """'' if ``found`` has exactly the names and shapes of ``expected``, else a short reason."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    shapes = sorted(k for k in set(expected) & set(found) if expected[k].shape != found[k].shape)
    parts = []
    for label, names in (("missing", missing), ("unexpected", extra), ("wrong shape", shapes)):
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            parts.append(f"{label} {', '.join(names[:3])}{more}")
    return "; ".join(parts)
