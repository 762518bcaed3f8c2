"""Paired crops in memory for training, and paired augmentation.

A dataset folder (format of :mod:`eyeedit.data.pairs`) is read once into two uint8 tensors per
split: crops are small (256x128x3 = 96 KiB), so thousands of pairs fit in memory and training
never waits on disk or decoding.
"""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from eyeedit.data.pairs import DatasetError, load_info, mask_path
from eyeedit.data.synth import drawn_color, drawn_shadow
from eyeedit.imageio import ImageError, read_image
from eyeedit.regions import RegionSpec


@dataclass(frozen=True)
class PairSet:
    """One split held in memory: ``a`` and ``b`` are uint8 (N, H, W, C) tensors, row i = pair i;
    ``mask`` the uint8 (N, H, W) edit masks (0-255) when the dataset has them (synth), else None."""

    a: torch.Tensor
    b: torch.Tensor
    names: tuple[str, ...]
    mask: torch.Tensor | None = None

    def take(self, k: int) -> PairSet:
        """The first ``k`` pairs."""
        mask = None if self.mask is None else self.mask[:k]
        return PairSet(self.a[:k], self.b[:k], self.names[:k], mask)

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class PairData:
    """A whole dataset folder in memory, with what its ``dataset.json`` says about it."""

    root: Path
    region: RegionSpec
    size: tuple[int, int]  # (width, height)
    channels: tuple[int, int]  # (in, out)
    train: PairSet
    val: PairSet
    info: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """What a model file records about the data it was trained on."""
        keep = ("effect", "source", "eyeedit_version")
        summary = {"path": str(self.root), "train_pairs": len(self.train), "val_pairs": len(self.val),
                   "fingerprint": self.fingerprint, **{k: self.info[k] for k in keep if k in self.info}}
        painted = drawn_color(self.info)
        if not painted:
            return summary
        return {**summary, "frame_color": painted, "frame_shadow": drawn_shadow(self.info)}

    @functools.cached_property
    def fingerprint(self) -> str:
        """A short hash of the pairs' names and pixels: the same data gives the same value."""
        h = hashlib.sha256()
        for split in (self.train, self.val):
            h.update("\n".join(split.names).encode())
            for t in (split.a, split.b):
                h.update(t.numpy().tobytes())
            if split.mask is not None:  # only then: datasets without masks keep their value
                h.update(split.mask.numpy().tobytes())
        return h.hexdigest()[:16]


def dataset_channels(info: dict[str, Any]) -> tuple[int, int]:
    """(in, out) channels from ``dataset.json``: an int for both, or ``{"in": .., "out": ..}``."""
    ch = info.get("channels", 3)
    pair = (ch.get("in", 3), ch.get("out", 3)) if isinstance(ch, dict) else (ch, ch)
    if any(c not in (1, 3) for c in pair):
        raise DatasetError(f"dataset channels must be 1 or 3, got {ch!r}")
    return int(pair[0]), int(pair[1])


def _load_split(root: Path, split: str, size: tuple[int, int], channels: tuple[int, int]) -> PairSet:
    folder_a = root / split / "A"
    paths = sorted(folder_a.rglob("*.png")) if folder_a.is_dir() else []
    names = tuple(p.relative_to(folder_a).with_suffix("").as_posix() for p in paths)
    w, h = size
    arrays: dict[str, list[np.ndarray]] = {"A": [], "B": []}
    for name in names:
        for side, c in zip("AB", channels):
            path = root / split / side / f"{name}.png"
            img = read_image(path)
            if img.shape[:2] != (h, w):
                raise DatasetError(f"{path}: is {img.shape[1]}x{img.shape[0]}, dataset says {w}x{h}")
            if c == 1 and not (np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])):
                # grey crops are stored as R = G = B; a colour crop here means dataset.json is wrong
                raise DatasetError(f"{path}: is in colour, but dataset.json says 1 channel")
            arrays[side].append(img[..., :c])
    empty = [torch.zeros((0, h, w, c), dtype=torch.uint8) for c in channels]
    a, b = (torch.from_numpy(np.stack(arrays[s])) if names else e for s, e in zip("AB", empty))
    return PairSet(a, b, names, _load_masks(root, split, names, size))


def _load_masks(root: Path, split: str, names: tuple[str, ...], size: tuple[int, int]) -> torch.Tensor | None:
    """uint8 (N, H, W) masks of a split, or None when it has none (or not one for every pair)."""
    paths = [mask_path(root, split, n) for n in names]
    present = [p.is_file() for p in paths]
    if not names or not any(present):
        return None
    if not all(present):
        warnings.warn(f"{root / split / 'mask'}: {present.count(False)} of {len(names)} pairs have "
                      f"no mask; training this split without masks", stacklevel=3)
        return None
    masks = []
    for path in paths:
        m = read_image(path)[..., 0]  # stored grey: R = G = B
        if m.shape != (size[1], size[0]):
            raise DatasetError(f"{path}: is {m.shape[1]}x{m.shape[0]}, dataset says {size[0]}x{size[1]}")
        masks.append(m)
    return torch.from_numpy(np.stack(masks))


def load_pairs(root: str | os.PathLike) -> PairData:
    """Read a dataset folder into memory; DatasetError (one line naming the file) if unusable."""
    root = Path(root)
    info = load_info(root)
    try:
        region = RegionSpec.from_dict(info["region"])
        size = (int(info["size"][0]), int(info["size"][1]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DatasetError(f"{root / 'dataset.json'}: bad region or size ({exc})") from None
    if region.size != size:
        raise DatasetError(f"{root / 'dataset.json'}: region {region.name} is {region.width}x"
                           f"{region.height} but the crop size is {size[0]}x{size[1]}")
    channels = dataset_channels(info)
    try:
        train, val = (_load_split(root, s, size, channels) for s in ("train", "val"))
    except ImageError as exc:
        raise DatasetError(str(exc)) from None
    if len(train) == 0:
        raise DatasetError(f"{root}: no training pairs in {root / 'train' / 'A'}")
    return PairData(root, region, size, channels, train, val, info)


def flip_crops(crops: Sequence[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """:func:`augment_all` without jitter, on uint8 (B, H, W, C) crops before they become float:
    the same draw from ``generator`` mirrors the same samples, and the result, made float, is
    the same to the bit. A quarter of the bytes move, and the crops stay in the channels-last
    layout that training wants."""
    n = crops[0].shape[0]
    mirror = (torch.rand(n, generator=generator) < 0.5).to(crops[0].device).view(n, 1, 1, 1)
    return [torch.where(mirror, c.flip(2), c) for c in crops]


def augment_all(tensors: Sequence[torch.Tensor], generator: torch.Generator, jitter: float,
                flip: bool) -> list[torch.Tensor]:
    """The same random jitter and flip for every tensor (A, B and a mask), drawn per sample.

    Each tensor is float (B, C_i, H, W). Jitter scales them up by ``jitter`` (>= 1) and crops a
    random HxW window back out; flip mirrors left-right with probability 1/2. Random numbers
    come from ``generator`` (a CPU generator), so the stream is the same on every device, and
    does not depend on how many tensors ride along.
    """
    n, _, h, w = tensors[0].shape
    sizes = [t.shape[1] for t in tensors]
    ab = torch.cat(list(tensors), dim=1)  # (B, sum C_i, H, W): one resample keeps them aligned
    if jitter > 1.0:
        big_h, big_w = round(h * jitter), round(w * jitter)
        ab = F.interpolate(ab, size=(big_h, big_w), mode="bilinear", align_corners=False)
        ys = torch.randint(0, big_h - h + 1, (n,), generator=generator).tolist()
        xs = torch.randint(0, big_w - w + 1, (n,), generator=generator).tolist()
        ab = torch.stack([ab[i, :, y : y + h, x : x + w] for i, (y, x) in enumerate(zip(ys, xs))])
    if flip:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(ab.device)
        ab = torch.where(mirror.view(n, 1, 1, 1), ab.flip(-1), ab)
    return list(torch.split(ab, sizes, dim=1))
