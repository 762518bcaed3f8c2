"""What to train: the frozen training config, saved in every run folder and checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from eyeedit.data.loader import PairData
from eyeedit.model.losses import GAN_LOSSES
from eyeedit.model.networks import DiscriminatorConfig, GeneratorConfig, max_depth

# The alpha mask's cross-entropy weight beside 100 x L1. Measured (2026-11-30) on 96 synthetic
# no-glasses pairs (ngf 16, 3 epochs): validation mask IoU 0.00 at weight 1, 0.47 at 10, 0.80 at
# 30 and 0.80 at 100, with masked PSNR 19.8, 20.0, 20.0 and 19.7 dB: 30 learns the mask as well
# as 100 without costing the image.
ALPHA_WEIGHT = 30.0


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (device and precision aside)."""

    size: tuple[int, int]  # (width, height) of the crops
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    gan_loss: str = "vanilla"
    lambda_l1: float = 100.0
    # Weight of the alpha mask's cross-entropy against the data's edit masks (alpha generators
    # trained on data with masks only).
    alpha_weight: float = ALPHA_WEIGHT
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
        if self.alpha_weight < 0:
            raise ValueError(f"alpha weight must be >= 0, got {self.alpha_weight}")
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


def make_config(data: PairData, *, ngf: int = 64, depth: int | None = None, norm: str = "batch",
                upsample: str = "transpose", dropout: bool = True, residual: bool = False,
                alpha: bool = False, fill: bool = False, hole_threshold: float = 0.5,
                hole_low_threshold: float | None = None, find_flip: bool = False, ndf: int = 64,
                n_layers: int = 3, d_kind: str = "patch", **options: Any) -> TrainConfig:
    """A TrainConfig for ``data``: size and channels from the dataset, the rest from options.

    ``depth=None`` picks the deepest U-Net the crop size allows, at most 8 (the reference).
    Raises ValueError naming the sizes that would work when ``depth`` does not fit.
    """
    c_in, c_out = data.channels
    if depth is None:
        fits = max_depth(*data.size)
        # When nothing fits, keep the default so check_size explains which sizes would.
        depth = min(8, fits) if fits >= 2 else GeneratorConfig.depth
    gen = GeneratorConfig(c_in, c_out, ngf, depth, norm, upsample, dropout, residual, alpha, fill,
                          hole_threshold, hole_low_threshold, find_flip)
    disc = DiscriminatorConfig(c_in + c_out, ndf, n_layers, norm, d_kind)
    return TrainConfig(size=data.size, generator=gen, discriminator=disc, **options)
