"""Training and cross-validating the glasses judge (:mod:`eyeedit.model.judge`).

Read top to bottom: :class:`JudgeTrainConfig` (what to train), :func:`augment` (what a
training crop may look like), :func:`train_judge` (the loop), :func:`class_metrics` (accuracy
and recall per class), :func:`person_folds` and :func:`cross_validate` (person-wise folds).

The labelled set is small and lopsided (about 47 people with glasses against 330 without,
once the held-out people are set aside), so every batch is drawn class-balanced: the judge sees
as many crops with glasses as without and its 0.5 threshold means "more likely than not" for a
balanced prior. Augmentation stands in for more people: mirror images (the aligned crop is
symmetric), small shifts, scale and roll (alignment is never exact), and colour and brightness
changes (studio light differs from one collection to the next).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from eyeedit.model.judge import JudgeConfig, JudgeNet, to_input

METRICS = ("accuracy", "glasses_recall", "plain_recall", "balanced_accuracy")


@dataclass(frozen=True)
class JudgeTrainConfig:
    """Everything that determines a trained judge (with the data)."""

    network: JudgeConfig = field(default_factory=JudgeConfig)
    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-3
    seed: int = 0
    shift: float = 0.03  # largest shift, as a share of the crop width / height
    scale: float = 0.05  # largest relative change of scale
    roll: float = 4.0  # largest in-plane rotation, degrees
    brightness: float = 0.12  # largest added brightness, on the [0, 1] scale
    contrast: float = 0.2  # largest relative change of contrast
    tint: float = 0.06  # largest relative gain of one colour channel
    grey: float = 0.1  # share of crops turned grey

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"need epochs >= 1 and batch size >= 2, got {self.epochs}, "
                             f"{self.batch_size}")

    def to_dict(self) -> dict:
        return {**asdict(self), "network": self.network.to_dict()}


def augment(x: torch.Tensor, cfg: JudgeTrainConfig, gen: torch.Generator) -> torch.Tensor:
    """A randomly moved, mirrored and recoloured copy of (B, 3, H, W) crops in [-1, 1]."""
    b = x.shape[0]

    def uniform(limit: float, n: int = b) -> torch.Tensor:
        return (torch.rand(n, generator=gen) * 2 - 1) * limit

    angle = torch.deg2rad(uniform(cfg.roll))
    scale = 1 + uniform(cfg.scale)
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)  # output -> input sampling grid, normalised coordinates
    theta[:, 0, 0] = torch.cos(angle) / scale * flip
    theta[:, 0, 1] = -torch.sin(angle) / scale
    theta[:, 1, 0] = torch.sin(angle) / scale * flip
    theta[:, 1, 1] = torch.cos(angle) / scale
    theta[:, :, 2] = torch.stack([uniform(2 * cfg.shift), uniform(2 * cfg.shift)], dim=1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    moved = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return _recolour(moved, cfg, gen) * 2 - 1


def _recolour(x: torch.Tensor, cfg: JudgeTrainConfig, gen: torch.Generator) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> recoloured, in [0, 1]."""
    b = x.shape[0]
    img = (x + 1) / 2
    grey = img.mean(dim=1, keepdim=True).expand_as(img)
    img = torch.where((torch.rand(b, 1, 1, 1, generator=gen) < cfg.grey), grey, img)
    gain = 1 + (torch.rand(b, 3, 1, 1, generator=gen) * 2 - 1) * cfg.tint
    contrast = 1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * cfg.contrast
    mean = img.mean(dim=(1, 2, 3), keepdim=True)
    bright = (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * cfg.brightness
    return ((img * gain - mean) * contrast + mean + bright).clamp(0, 1)


def balanced_draws(labels: np.ndarray, n: int, gen: torch.Generator) -> torch.Tensor:
    """(n,) int64 indices drawn with replacement so that each class is drawn equally often."""
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    weights = torch.as_tensor(1.0 / counts[labels])
    return torch.multinomial(weights, n, replacement=True, generator=gen)


def train_judge(crops: np.ndarray, labels: np.ndarray, cfg: JudgeTrainConfig,
                log: Callable[[int, float], None] | None = None) -> JudgeNet:
    """Train a judge on (N, H, W, 3) uint8 aligned crops with (N,) labels (1 = glasses).

    Returns the network in eval mode. ``log(epoch, mean loss)`` is called after each epoch.
    """
    if set(np.unique(labels)) != {0, 1}:
        raise ValueError("training a judge needs crops of both classes")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    x = to_input(crops, cfg.network)  # (N, 3, h, w) in [-1, 1]
    y = torch.as_tensor(labels, dtype=torch.float32)
    net = JudgeNet(cfg.network).train()
    steps_per_epoch = max(1, math.ceil(len(x) / cfg.batch_size))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr,
                                                total_steps=cfg.epochs * steps_per_epoch)
    for epoch in range(cfg.epochs):
        order = balanced_draws(labels, steps_per_epoch * cfg.batch_size, gen)
        total = 0.0
        for idx in order.view(steps_per_epoch, cfg.batch_size):
            loss = F.binary_cross_entropy_with_logits(net(augment(x[idx], cfg, gen)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        if log is not None:
            log(epoch, total / steps_per_epoch)
    return net.eval()


def predict(net: JudgeNet, crops: np.ndarray, cfg: JudgeConfig, batch: int = 128) -> np.ndarray:
    """(N,) float64 P(glasses) of (N, H, W, 3) uint8 crops, network in eval mode."""
    net.eval()
    with torch.inference_mode():
        out = [torch.sigmoid(net(to_input(crops[i : i + batch], cfg)))
               for i in range(0, len(crops), batch)]
    return torch.cat(out).double().numpy() if out else np.zeros(0)


def class_metrics(prob: np.ndarray, labels: np.ndarray,
                  threshold: float = 0.5) -> dict[str, float | int | None]:
    """Accuracy, recall of each class and their mean (balanced accuracy), all in [0, 1].

    ``glasses_recall`` is the share of people with glasses judged "glasses"; ``plain_recall``
    the share without judged "no glasses". A recall whose class is absent from ``labels`` is
    None (so is the balanced accuracy then), which JSON can carry.
    """
    said = prob >= threshold
    pos, neg = labels == 1, labels == 0
    g = float(said[pos].mean()) if pos.any() else None
    p = float((~said[neg]).mean()) if neg.any() else None
    balanced = None if g is None or p is None else (g + p) / 2
    return {"accuracy": float((said == pos).mean()), "glasses_recall": g, "plain_recall": p,
            "balanced_accuracy": balanced, "n": int(len(labels)), "n_glasses": int(pos.sum())}


def person_folds(persons: list[str], labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(N,) int fold of each photo: a person's photos share a fold, and each class of people is
    dealt round the folds in a seeded random order, so every fold gets its share of both."""
    rng = np.random.default_rng(seed)
    label_of = {p: int(y) for p, y in zip(persons, labels)}
    fold_of: dict[str, int] = {}
    for cls in (1, 0):
        people = sorted(p for p, y in label_of.items() if y == cls)
        for i, p in enumerate(rng.permutation(people)):
            fold_of[str(p)] = i % k
    return np.array([fold_of[p] for p in persons])


@dataclass
class CrossValidation:
    """Per-fold metrics, their mean and spread, and the out-of-fold probability of every crop."""

    folds: list[dict[str, float]]
    probability: np.ndarray  # (N,) float64

    def summary(self) -> dict[str, dict[str, float]]:
        """metric -> {"mean", "std"} over folds (std with ddof 1: the spread between folds)."""
        out = {}
        for m in METRICS:
            values = [f[m] for f in self.folds]
            spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            out[m] = {"mean": float(np.mean(values)), "std": spread}
        return out


def cross_validate(crops: np.ndarray, labels: np.ndarray, persons: list[str], cfg: JudgeTrainConfig,
                   k: int = 5, log: Callable[[str], None] | None = None) -> CrossValidation:
    """Train ``k`` judges, each with one fold of people left out, and score each on its fold."""
    fold = person_folds(persons, labels, k, cfg.seed)
    prob = np.zeros(len(labels))
    results = []
    for f in range(k):
        test = fold == f
        net = train_judge(crops[~test], labels[~test], cfg)
        prob[test] = predict(net, crops[test], cfg.network)
        results.append(class_metrics(prob[test], labels[test]))
        if log is not None:
            log(f"fold {f + 1}/{k}: " + ", ".join(f"{m} {results[-1][m]:.3f}" for m in METRICS))
    return CrossValidation(results, prob)
