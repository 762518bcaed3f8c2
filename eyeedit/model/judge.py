"""The glasses judge: a small classifier telling glasses from no glasses on real portraits.

It is an instrument for measuring effects on real photos (`eyeedit eval MODEL --real DIR`):
does a removal effect leave people judged as wearing glasses, does an adding effect make them
look like they do. Nothing trains against it; a model tuned to fool it would only be measured
less well.

The judge looks at the aligned ``glasses`` crop of a face (256x128 by default, the crop the
glasses effects use), shrunk by area averaging to the network's input (128x64), and returns the
probability that the person wears glasses.

Its file is a model file like the effects' (:mod:`eyeedit.model.store`: safetensors with a JSON
header, never unpickled) with ``kind: "judge"`` and the fields in :data:`JUDGE_META`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from eyeedit.geometry import fit_crop_from_image, warp_to_crop
from eyeedit.landmarks import Face, detect_faces
from eyeedit.model.store import PACKAGE_MODELS, ModelError
from eyeedit.model.tensors import images_to_tensor
from eyeedit.model.weights import load_model_file, save_model, weights_mismatch
from eyeedit.regions import RegionSpec

JUDGE_KIND = "judge"
JUDGE_META = ("format", "kind", "network", "region", "size", "threshold")
DEFAULT_JUDGE = PACKAGE_MODELS / "judge.safetensors"


@dataclass(frozen=True)
class JudgeConfig:
    """The network: per entry of ``channels`` a 3x3 conv + batch norm + ReLU that halves the
    size (the first by its stride, the others by a 2x max-pool), then global average and max
    pooling and one linear logit. ``width`` x ``height`` is its input."""

    width: int = 128
    height: int = 64
    channels: tuple[int, ...] = (16, 32, 64, 96)
    dropout: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be positive, got {self.channels}")
        step = 2 ** len(self.channels)
        if self.width % step or self.height % step:
            raise ValueError(f"input {self.width}x{self.height} must be a multiple of {step}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeConfig:
        if not isinstance(data, dict):
            raise TypeError(f"JudgeConfig needs a dict, got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        return cls(**data)


class JudgeNet(nn.Module):
    """(B, 3, H, W) float in [-1, 1] -> (B,) logits (positive: glasses)."""

    def __init__(self, cfg: JudgeConfig):
        super().__init__()
        # A strided first conv costs a quarter of a full-size one; its 3x3 taps still cover every
        # pixel, so a one-pixel rim is not skipped.
        c0 = cfg.channels[0]
        layers: list[nn.Module] = [nn.Conv2d(3, c0, 3, stride=2, padding=1, bias=False),
                                   nn.BatchNorm2d(c0), nn.ReLU(inplace=True)]
        c_in = c0
        for c in cfg.channels[1:]:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(cfg.dropout)
        # Max pooling answers "is there a rim anywhere", average pooling "how much of it".
        self.head = nn.Linear(2 * c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)  # (B, C, H / 2**n, W / 2**n)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)  # (B, 2C)
        return self.head(self.dropout(pooled)).squeeze(1)  # (B,)


def to_input(crops: np.ndarray, cfg: JudgeConfig) -> torch.Tensor:
    """(N, H, W, 3) uint8 aligned crops -> (N, 3, cfg.height, cfg.width) float in [-1, 1].

    Crops of another size are shrunk (or grown) to the network's input by area averaging.
    """
    if crops.ndim != 4 or crops.shape[3] != 3 or crops.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 crops, got {crops.shape} {crops.dtype}")
    if crops.shape[1:3] != (cfg.height, cfg.width):
        crops = np.stack([cv2.resize(c, cfg.size, interpolation=cv2.INTER_AREA) for c in crops])
    return images_to_tensor(np.ascontiguousarray(crops))


@dataclass(frozen=True)
class FaceVerdict:
    """The judge's view of one face in a photo: its probability of glasses, its aligned crop."""

    face: Face
    crop_from_image: np.ndarray  # (2, 3)
    crop: np.ndarray  # (H, W, 3) uint8, the judge's region
    probability: float
    glasses: bool


class Judge:
    """A loaded judge: the network in eval mode, its region, input size and threshold."""

    def __init__(self, net: JudgeNet, cfg: JudgeConfig, region: RegionSpec, threshold: float,
                 metadata: dict[str, Any] | None = None):
        self.net = net.eval()
        self.cfg = cfg
        self.region = region
        self.threshold = threshold
        self.metadata = metadata or {}

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Judge:
        """Load a judge file (default: the shipped ``eyeedit/weights/judge.safetensors``).

        Raises ModelError (one line naming the file) for anything that is not a sound judge.
        """
        return load_judge(DEFAULT_JUDGE if path is None else Path(path))

    def probability(self, crops: np.ndarray, batch: int = 64) -> np.ndarray:
        """(N, H, W, 3) uint8 crops aligned to ``self.region`` -> (N,) float64 P(glasses), 0-1."""
        if len(crops) == 0:
            return np.zeros(0, np.float64)
        out = []
        with torch.inference_mode():
            for i in range(0, len(crops), batch):
                logits = self.net(to_input(crops[i : i + batch], self.cfg))  # (B,)
                out.append(torch.sigmoid(logits).double().numpy())
        return np.concatenate(out)

    def wears_glasses(self, crops: np.ndarray) -> np.ndarray:
        """(N,) bool: the probability is at or above the judge's threshold."""
        return self.probability(crops) >= self.threshold

    def crop(self, image: np.ndarray, face: Face) -> tuple[np.ndarray, np.ndarray]:
        """(crop (H, W, 3) uint8, crop_from_image (2, 3)) of one face in the judge's region."""
        m = fit_crop_from_image(face.eye_corners, self.region)
        return warp_to_crop(image, m, self.region.size), m

    def score_photo(self, image: np.ndarray, faces: list[Face] | None = None) -> list[FaceVerdict]:
        """Every face of an (H, W, 3) uint8 RGB photo (detected unless given), aligned, scored."""
        faces = detect_faces(image) if faces is None else faces
        if not faces:
            return []
        crops, transforms = zip(*(self.crop(image, f) for f in faces))
        probs = self.probability(np.stack(crops))
        return [FaceVerdict(f, m, c, float(p), bool(p >= self.threshold))
                for f, m, c, p in zip(faces, transforms, crops, probs)]


def save_judge(path: str | os.PathLike, net: JudgeNet, cfg: JudgeConfig, region: RegionSpec,
               threshold: float, metadata: dict[str, Any]) -> Path:
    """Write a judge's weights (fp32) with its metadata, atomically."""
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    meta = {**metadata, "kind": JUDGE_KIND, "network": cfg.to_dict(), "region": region.to_dict(),
            "size": list(cfg.size), "threshold": float(threshold)}
    return save_model(path, tensors, meta, required=JUDGE_META)


def load_judge(path: Path) -> Judge:
    """Rebuild a judge from its file; ModelError (one line) when the file is not a sound judge."""
    tensors, meta = load_model_file(path, required=JUDGE_META)
    if meta["kind"] != JUDGE_KIND:
        raise ModelError(f"{path}: not a judge (kind {meta['kind']!r})")
    try:
        cfg = JudgeConfig.from_dict(meta["network"])
        region = RegionSpec.from_dict(meta["region"])
        threshold = float(meta["threshold"])
        size = [int(v) for v in meta["size"]]
    except (TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{path}: bad judge metadata ({exc})") from None
    if not 0 < threshold < 1 or size != list(cfg.size):
        raise ModelError(f"{path}: bad judge metadata (threshold {threshold}, size {meta['size']} "
                         f"for a {cfg.width}x{cfg.height} network)")
    net = JudgeNet(cfg)
    problem = weights_mismatch(net.state_dict(), tensors)
    if problem:
        raise ModelError(f"{path}: weights do not match the judge's network ({problem})")
    net.load_state_dict(tensors, strict=True)
    return Judge(net, cfg, region, threshold, meta)
