"""GAN objectives and image-quality metrics used by training.

Logits come from the PatchGAN (one per patch); every loss is a mean over patches and batch.
Losses are computed in float32 even under autocast, because bf16/fp16 logits lose the
precision that BCE and squared errors need near their optimum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_LOSSES = ("vanilla", "lsgan", "hinge")


def _check(kind: str) -> None:
    if kind not in GAN_LOSSES:
        raise ValueError(f"gan loss must be one of {', '.join(GAN_LOSSES)}, got {kind!r}")


def _target_loss(kind: str, logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.full_like(logits, 1.0 if real else 0.0)
    if kind == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.mse_loss(logits, target)  # lsgan (Mao et al.)


def discriminator_loss(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D loss on real and fake patches, halved as in pix2pix so D learns slower than G."""
    _check(kind)
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    if kind == "hinge":
        loss = F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    else:
        loss = _target_loss(kind, real_logits, True) + _target_loss(kind, fake_logits, False)
    return 0.5 * loss


def discriminator_fake_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """The fake half of :func:`discriminator_loss` (already halved), for split backward passes."""
    _check(kind)
    fake_logits = fake_logits.float()
    if kind == "hinge":
        return 0.5 * F.relu(1.0 + fake_logits).mean()
    return 0.5 * _target_loss(kind, fake_logits, False)


def discriminator_real_loss(kind: str, real_logits: torch.Tensor) -> torch.Tensor:
    """The real half of :func:`discriminator_loss` (already halved)."""
    _check(kind)
    real_logits = real_logits.float()
    if kind == "hinge":
        return 0.5 * F.relu(1.0 - real_logits).mean()
    return 0.5 * _target_loss(kind, real_logits, True)


def generator_adversarial_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """G's adversarial term: make D call the fakes real (non-saturating for vanilla)."""
    _check(kind)
    fake_logits = fake_logits.float()
    if kind == "hinge":
        return -fake_logits.mean()
    return _target_loss(kind, fake_logits, True)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of (B, C, H, W) images in [-1, 1], measured on the [0, 1] scale. (B,)"""
    mse = ((pred.float() - target.float()) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def _gaussian_window(size: int = 11, sigma: float = 1.5, device: torch.device | None = None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM map of (B, C, H, W) images in [-1, 1] on the [0, 1] scale, channel mean. (B, H-10, W-10)

    Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03 (Wang et al. 2004); only positions where
    the whole window fits are kept (5 pixels trimmed on each side), like scikit-image's
    ``gaussian_weights=True``.
    """
    x, y = (pred.float() + 1) / 2, (target.float() + 1) / 2
    c = x.shape[1]
    g = _gaussian_window(device=x.device)
    kernel_h = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)  # (C, 1, 1, 11)
    kernel_v = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)  # (C, 1, 11, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kernel_h, groups=c), kernel_v, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean(1)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of (B, C, H, W) images in [-1, 1]: the mean of :func:`ssim_map`. (B,)"""
    return ssim_map(pred, target).flatten(1).mean(1)


def alpha_loss(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy between a generator's alpha and the edit mask, both (B, 1, H, W) in
    [0, 1] (a soft mask is a soft target). In float32: call it outside autocast."""
    return F.binary_cross_entropy(alpha.float(), mask.float())


def dice_loss(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice overlap of (B, 1, H, W) alpha and mask in [0, 1], per image, averaged.
    Unlike cross-entropy it does not drown a thin structure (a frame is a few percent of the
    crop) in the easy background, and per image a thin wire frame counts as much as a thick
    one. Smoothed by one pixel, so an empty mask with an empty alpha scores 0. In float32."""
    a, m = alpha.float().flatten(1), mask.float().flatten(1)
    return (1 - (2 * (a * m).sum(1) + 1) / (a.sum(1) + m.sum(1) + 1)).mean()


def mask_iou(alpha: torch.Tensor, mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-image intersection over union of ``alpha > threshold`` and ``mask > threshold``.

    Both (B, 1, H, W) or (B, H, W) in [0, 1]; an image where both are empty scores 1. (B,)
    """
    a, m = (alpha.float() > threshold).flatten(1), (mask.float() > threshold).flatten(1)
    inter, union = (a & m).sum(1).float(), (a | m).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
