"""The pix2pix networks, losses and metrics, parametrized over every variant (timm style)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eyeedit.model.losses import (
    GAN_LOSSES,
    discriminator_fake_loss,
    discriminator_loss,
    discriminator_real_loss,
    generator_adversarial_loss,
    psnr,
    ssim,
)
from eyeedit.model.networks import (
    DiscriminatorConfig,
    GeneratorConfig,
    UNetGenerator,
    build_discriminator,
    build_generator,
    dropout_levels,
    fold_upsampling,
    max_depth,
    max_filter,
)

W, H = 64, 32  # rectangular on purpose: the eye crops are 2:1
GEN_VARIANTS = [
    {"norm": "batch", "upsample": "transpose"},
    {"norm": "instance", "upsample": "transpose"},
    {"norm": "batch", "upsample": "resize"},
    {"norm": "instance", "upsample": "resize", "dropout": False},
    {"in_channels": 1, "out_channels": 3},
    {"in_channels": 3, "out_channels": 1},
    {"upsample": "resize", "residual": True},
]
DISC_VARIANTS = [
    {"kind": "patch", "n_layers": 3, "norm": "batch"},
    {"kind": "patch", "n_layers": 1, "norm": "instance"},
    {"kind": "pixel", "norm": "batch"},
]


def _tiny_gen(**kw) -> GeneratorConfig:
    return GeneratorConfig(**{"ngf": 8, "depth": 5, **kw})


def _inputs(c: int, b: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, c, H, W, generator=g) * 2 - 1


@pytest.mark.parametrize("variant", GEN_VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_generator_shape_range_and_gradients(variant):
    cfg = _tiny_gen(**variant)
    g = build_generator(cfg).train()
    out = g(_inputs(cfg.in_channels))
    assert out.shape == (2, cfg.out_channels, H, W)
    assert torch.isfinite(out).all() and out.abs().max() <= 1
    out.square().mean().backward()
    no_grad = [n for n, p in g.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


@pytest.mark.parametrize("variant", DISC_VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_discriminator_shape_and_gradients(variant):
    cfg = DiscriminatorConfig(in_channels=6, ndf=8, **variant)
    d = build_discriminator(cfg)
    logits = d(_inputs(6))
    n = cfg.n_layers
    expected = (H, W) if cfg.kind == "pixel" else (H // 2**n - 2, W // 2**n - 2)
    assert logits.shape == (2, 1, *expected)
    assert torch.isfinite(logits).all()
    logits.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())


def test_discriminator_takes_the_pair_whole_or_in_two():
    d = build_discriminator(DiscriminatorConfig(in_channels=6, ndf=8)).eval()
    a, b = _inputs(3), _inputs(3).flip(-1)
    assert torch.equal(d(a, b), d(torch.cat([a, b], 1)))
    assert not torch.equal(d(a, b), d(b, a))


@pytest.mark.parametrize("size", [1, 3, 5, 7])
def test_max_filter_is_a_stride_one_max_pool_to_the_bit(size):
    x = _inputs(2, b=3)  # values of both signs: the border is padded with -inf, as a pool pads
    x[0, 0, :, :5] = 1.0  # and a plateau at the edge
    got = max_filter(x, size)
    assert got.shape == x.shape
    assert torch.equal(got, torch.nn.functional.max_pool2d(x, size, stride=1, padding=size // 2))


def test_reference_patchgan_sees_70x70():
    """Receptive field of n_layers=3: the centre logit moves only for inputs within 70x70."""
    d = build_discriminator(DiscriminatorConfig(ndf=4)).eval()
    x = torch.zeros(1, 6, 128, 128, requires_grad=True)
    logits = d(x)
    logits[0, 0, logits.shape[2] // 2, logits.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)))
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2)))
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_unet_256_matches_reference_layout():
    """8 levels on 256x256: 1x1 bottleneck, 3 dropout levels, ~54.4M parameters like unet_256."""
    cfg = GeneratorConfig(depth=8)
    g = UNetGenerator(cfg)
    assert dropout_levels(8) == {4, 5, 6} and dropout_levels(7) == {4, 5}
    n_params = sum(p.numel() for p in g.parameters())
    assert 54.0e6 < n_params < 54.5e6
    with torch.no_grad():
        assert g.eval()(torch.zeros(1, 3, 256, 256)).shape == (1, 3, 256, 256)


def test_init_follows_normal_002():
    g = build_generator(GeneratorConfig(ngf=16, depth=4))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.mean().item()) < 0.002 and 0.018 < w.std().item() < 0.022


@pytest.mark.parametrize("size, depth", [((256, 128), 7), ((128, 64), 6), ((64, 32), 5), ((256, 256), 8)])
def test_sizes_that_fit(size, depth):
    cfg = GeneratorConfig(depth=depth)
    cfg.check_size(*size)
    assert max_depth(*size) >= depth


@pytest.mark.parametrize("size, depth, hints", [
    ((250, 128), 7, ["multiples of 2**7 = 128", "128x128 or 256x128", "no depth >= 2 fits"]),
    ((256, 128), 8, ["multiples of 2**8 = 256", "256x256", "depth 7 fits 256x128"]),
    ((100, 60), 3, ["multiples of 2**3 = 8", "96x56 or 104x64", "depth 2 fits 100x60"]),
])
def test_size_validation_names_working_sizes(size, depth, hints):
    with pytest.raises(ValueError) as err:
        GeneratorConfig(depth=depth).check_size(*size)
    message = str(err.value)
    assert "\n" not in message and f"{size[0]}x{size[1]}" in message
    for hint in hints:
        assert hint in message


def test_generator_rejects_bad_input_size_with_the_same_message():
    g = build_generator(_tiny_gen())
    with pytest.raises(ValueError, match="multiples of 2\\*\\*5 = 32"):
        g(torch.zeros(1, 3, 32, 48))


@pytest.mark.parametrize("bad", [{"norm": "group"}, {"upsample": "pixelshuffle"},
                                 {"in_channels": 2}, {"depth": 1},
                                 {"residual": True, "in_channels": 1, "out_channels": 3}])
def test_generator_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        GeneratorConfig(**bad)


def test_config_round_trip_and_unknown_keys():
    cfg = _tiny_gen(norm="instance", upsample="resize")
    assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        GeneratorConfig.from_dict({**cfg.to_dict(), "wings": 2})
    dcfg = DiscriminatorConfig(kind="pixel")
    assert DiscriminatorConfig.from_dict(dcfg.to_dict()) == dcfg


@pytest.mark.parametrize("kind", GAN_LOSSES)
def test_gan_losses_prefer_the_right_answer(kind):
    confident = torch.full((2, 1, 4, 4), 5.0)
    fooled = -confident
    # D is rewarded for calling real real and fake fake; G for fooling D.
    assert discriminator_loss(kind, confident, fooled) < discriminator_loss(kind, fooled, confident)
    assert generator_adversarial_loss(kind, confident) < generator_adversarial_loss(kind, fooled)
    halves = discriminator_real_loss(kind, fooled) + discriminator_fake_loss(kind, confident)
    assert torch.allclose(halves, discriminator_loss(kind, fooled, confident))


def test_discriminator_loss_is_halved():
    zeros = torch.zeros(1, 1, 2, 2)
    # BCE at logit 0 is ln 2 for each half; halved sum = ln 2.
    assert discriminator_loss("vanilla", zeros, zeros).item() == pytest.approx(np.log(2), rel=1e-6)


def test_metrics_match_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    a, b = _inputs(3, b=1, seed=1), _inputs(3, b=1, seed=2) * 0.3 + _inputs(3, b=1, seed=1) * 0.7
    to01 = [((t[0].permute(1, 2, 0).numpy() + 1) / 2).astype(np.float64) for t in (a, b)]
    want_ssim = structural_similarity(*to01, data_range=1.0, channel_axis=2, gaussian_weights=True,
                                      sigma=1.5, use_sample_covariance=False)
    assert ssim(a, b).item() == pytest.approx(want_ssim, abs=1e-4)
    assert psnr(a, b).item() == pytest.approx(peak_signal_noise_ratio(*to01, data_range=1.0), abs=1e-3)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-5)


def test_residual_generator_starts_near_identity_and_covers_the_range():
    g = build_generator(_tiny_gen(residual=True)).eval()
    x = _inputs(3)
    with torch.no_grad():
        assert (g(x) - x).abs().mean() < 0.2  # Normal(0, 0.02) weights: a small change
        last = g.up[0][1]  # the outermost upsampling convolution
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()
        assert torch.allclose(g(x), x, atol=1e-6)  # no change predicted: the input comes out exactly
        last.bias.fill_(10.0)  # a saturated change still ends inside [-1, 1]
        assert torch.equal(g(x), torch.ones_like(x))


@pytest.mark.parametrize("variant", GEN_VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_folded_upsampling_gives_the_same_output(variant):
    g = build_generator(_tiny_gen(**variant))
    g.train()
    with torch.no_grad():
        g(_inputs(g.cfg.in_channels, b=4, seed=1))  # non-trivial batch-norm statistics
    g.eval()
    folded = fold_upsampling(g)
    x = _inputs(g.cfg.in_channels, seed=2)
    with torch.no_grad():
        assert (folded(x) - g(x)).abs().max() < 1e-5
    assert not any(isinstance(m, torch.nn.Upsample) for m in folded.modules())
    assert any(isinstance(m, torch.nn.Upsample) for m in g.modules()) == (g.cfg.upsample == "resize")
    def count(model, kind):
        return sum(isinstance(m, kind) for m in model.modules())

    assert count(folded, torch.nn.ConvTranspose2d) == g.cfg.depth  # one per decoder level


def test_fold_refuses_a_conv_it_cannot_fold():
    from eyeedit.model.networks import _transposed_twin

    with pytest.raises(ValueError, match="3x3 stride-1"):
        _transposed_twin(torch.nn.Conv2d(4, 4, 5, padding=2))
