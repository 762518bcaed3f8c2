"""The pix2pix networks: a U-Net generator and a PatchGAN discriminator.

Both are plain ``nn.Module`` objects built from frozen configs, so a model file can say exactly
how to rebuild its generator (``GeneratorConfig.to_dict()`` goes into the metadata).

Convention: images are float tensors (B, C, H, W) in [-1, 1]; the generator ends in ``tanh``
and the discriminator returns raw logits, one per patch, shape (B, 1, H', W'). A generator with
``alpha`` also predicts where to edit: a (B, 1, H, W) mask in [0, 1] (sigmoid) that mixes its
colours into the input, so pixels with alpha 0 pass through unchanged. One with ``fill`` as
well runs twice: the first pass finds the solid parts to remove (its alpha), which are erased
from the input, and the second pass paints them from what surrounds them (see ``frame_hole``).

Recipe (Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks"):
4x4 stride-2 convolutions, LeakyReLU(0.2) on the way down, ReLU on the way up, no norm on the
outermost encoder layer nor on the bottleneck, dropout 0.5 as the generator's noise source,
weights drawn from Normal(0, 0.02).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "instance")
UPSAMPLES = ("transpose", "resize")
DISCRIMINATORS = ("patch", "pixel")
MAX_WIDTH_MULT = 8  # channels stop doubling at 8 * ngf, as in the reference recipe


def _level_channels(base: int, level: int) -> int:
    """Channels produced by encoder level ``level`` (0 = outermost)."""
    return base * min(2**level, MAX_WIDTH_MULT)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    # affine=True so that every norm layer has parameters to learn, like batch norm.
    return nn.InstanceNorm2d(channels, affine=True)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} needs a dict, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    return cls(**data)


@dataclass(frozen=True)
class GeneratorConfig:
    """U-Net generator architecture.

    ``depth`` is the number of stride-2 levels; the bottleneck is (H / 2**depth, W / 2**depth),
    so 8 levels on 256x256 (the reference ``unet_256``) or 7 on 256x128 reach 1 or 2 pixels.
    """

    in_channels: int = 3
    out_channels: int = 3
    ngf: int = 64
    depth: int = 7
    norm: str = "batch"
    upsample: str = "transpose"
    dropout: bool = True
    # Predict a change added to the input instead of the whole image: unchanged pixels come out
    # exact instead of re-synthesized, and a local edit (an iris, a frame) is all there is to learn.
    residual: bool = False
    # Also predict an alpha mask (sigmoid) and return input * (1 - alpha) + colour * alpha:
    # the net learns where to edit, and pixels with alpha 0 come out bit-identical to the input.
    alpha: bool = False
    # Find, erase, then fill (needs alpha): a removal model that sees the pixels it replaces
    # learns to shift their colour, and leaves a ghost of any frame unlike its training frames.
    # With the solid parts erased (and marked in a fourth input channel) the only way to fill
    # them is from the skin and eyes around them.
    fill: bool = False
    # Where the first pass's alpha counts as frame. On photos it is less sure of real frames than
    # of drawn ones, so a recipe may set it lower than the one half it was trained to cut at.
    hole_threshold: float = 0.5
    # Hysteresis, as in edge detection: from the pixels above hole_threshold the hole also
    # follows connected pixels above this lower one, so a frame that is sure in places takes its
    # faint parts (a thin rim, a light temple) along. None: no hysteresis. See frame_hole.
    hole_low_threshold: float | None = None
    # Also look for the frame in the mirrored crop and keep, at each pixel, the surer of the two
    # alphas: a pair of glasses is symmetric about the crop's centre line, so a rim the first
    # pass is sure of on one side makes it surer of the faint rim on the other. One more
    # first pass when the model runs; training is unchanged.
    find_flip: bool = False

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels"):
            if getattr(self, name) not in (1, 3):
                raise ValueError(f"{name} must be 1 or 3, got {getattr(self, name)}")
        if self.ngf < 1 or self.depth < 2:
            raise ValueError(f"ngf must be >= 1 and depth >= 2, got ngf={self.ngf} depth={self.depth}")
        _check_choice("norm", self.norm, NORMS)
        _check_choice("upsample", self.upsample, UPSAMPLES)
        if self.residual and self.in_channels != self.out_channels:
            raise ValueError("a residual generator needs as many output channels as input channels")
        if self.alpha and self.in_channels != self.out_channels:
            raise ValueError("an alpha generator needs as many output channels as input channels")
        if self.fill and (not self.alpha or self.residual):
            raise ValueError("fill needs alpha (it erases what the alpha finds) and no residual")
        if not 0 < self.hole_threshold < 1:
            raise ValueError(f"hole threshold must be between 0 and 1, got {self.hole_threshold}")
        if self.find_flip and not self.fill:
            raise ValueError("find-flip needs fill (it is how the first pass looks for the frame)")
        if self.hole_low_threshold is not None and not 0 < self.hole_low_threshold < self.hole_threshold:
            raise ValueError(f"hole low threshold must be between 0 and the hole threshold "
                             f"({self.hole_threshold}), got {self.hole_low_threshold}")

    @property
    def multiple(self) -> int:
        """Width and height must be multiples of this (one halving per level)."""
        return 2**self.depth

    def check_size(self, width: int, height: int) -> None:
        """Raise ValueError, naming sizes that would work, if (width, height) cannot pass the U-Net."""
        m = self.multiple
        if width % m == 0 and height % m == 0 and min(width, height) >= m:
            return
        fits = max_depth(width, height)
        hint = f"depth {fits} fits {width}x{height}" if fits >= 2 else "no depth >= 2 fits it"
        raise ValueError(
            f"size {width}x{height} does not fit a {self.depth}-level U-Net: width and height must "
            f"be multiples of 2**{self.depth} = {m} (e.g. {' or '.join(_nearby_sizes(width, height, m))}); "
            f"or lower --depth ({hint})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        """Rebuild from ``to_dict()`` output; unknown keys or bad values raise ValueError."""
        return _from_dict(cls, data)


def _nearby_sizes(width: int, height: int, multiple: int) -> list[str]:
    """The working sizes just below (if any) and just above (width, height)."""
    up = [max(multiple, -(-v // multiple) * multiple) for v in (width, height)]
    down = [max(multiple, v // multiple * multiple) for v in (width, height)]
    return list(dict.fromkeys(f"{w}x{h}" for w, h in (down, up)))


def max_depth(width: int, height: int) -> int:
    """The deepest U-Net that accepts (width, height): both sides divisible by 2**depth."""
    depth = 0
    while width % 2 ** (depth + 1) == 0 and height % 2 ** (depth + 1) == 0:
        depth += 1
    return depth


@dataclass(frozen=True)
class DiscriminatorConfig:
    """PatchGAN discriminator conditioned on the input: it sees concat(A, B) channels.

    ``kind="patch"`` with ``n_layers=3`` has a 70x70 receptive field; ``kind="pixel"`` judges
    each pixel alone (1x1 convolutions) and ignores ``n_layers``.
    """

    in_channels: int = 6
    ndf: int = 64
    n_layers: int = 3
    norm: str = "batch"
    kind: str = "patch"

    def __post_init__(self) -> None:
        if self.in_channels < 2 or self.ndf < 1 or self.n_layers < 1:
            raise ValueError(f"bad discriminator config {self}")
        _check_choice("norm", self.norm, NORMS)
        _check_choice("discriminator kind", self.kind, DISCRIMINATORS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscriminatorConfig:
        return _from_dict(cls, data)


def _down(c_in: int, c_out: int, norm: str | None, act: bool) -> nn.Sequential:
    """[LeakyReLU] -> 4x4 stride-2 conv -> [norm]; halves H and W."""
    layers: list[nn.Module] = [nn.LeakyReLU(0.2, inplace=True)] if act else []
    # A bias in front of a norm layer is cancelled by its mean subtraction, so drop it.
    layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=norm is None))
    if norm:
        layers.append(_norm(norm, c_out))
    return nn.Sequential(*layers)


def _upconv(c_in: int, c_out: int, mode: str, bias: bool) -> list[nn.Module]:
    if mode == "transpose":
        return [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias)]
    # Resize then convolve: avoids the checkerboard pattern of overlapping transposed kernels
    # (Odena et al., https://distill.pub/2016/deconv-checkerboard/).
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias)]


class ColourAlphaHead(nn.Module):
    """The last activation of an alpha generator: tanh on the colour channels, sigmoid on the
    last channel (the alpha mask). Parameter-free, so state-dict names match a plain U-Net's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.tanh(x[:, :-1]), torch.sigmoid(x[:, -1:])], dim=1)


def _up(c_in: int, c_out: int, cfg: GeneratorConfig, outermost: bool, dropout: bool) -> nn.Sequential:
    """ReLU -> upsample x2 conv -> norm [-> dropout], or -> tanh for the outermost level (tanh
    and sigmoid with ``alpha``: one more output channel, the mask)."""
    layers: list[nn.Module] = [nn.ReLU(inplace=True)]
    extra = 1 if outermost and cfg.alpha else 0  # the alpha channel
    layers += _upconv(c_in, c_out + extra, cfg.upsample, bias=outermost)
    if outermost:
        layers.append(ColourAlphaHead() if cfg.alpha else nn.Tanh())
        return nn.Sequential(*layers)
    layers.append(_norm(cfg.norm, c_out))
    if dropout:
        layers.append(nn.Dropout(0.5))
    return nn.Sequential(*layers)


def dropout_levels(depth: int) -> set[int]:
    """Decoder levels that get dropout 0.5.

    As in the reference: the levels between the bottleneck and level 4 whose input and output
    both have 8*ngf channels (two for depth 7, three for depth 8). Shallower nets keep the
    level just above the bottleneck so the generator still has its noise source.
    """
    levels = set(range(4, depth - 1))
    return levels or ({depth - 2} if depth >= 3 else set())


class UNetGenerator(nn.Module):
    """U-Net: encoder level i is concatenated to the decoder input at the mirrored level.

    Input (B, in_channels, H, W) float in [-1, 1]; output (B, out_channels, H, W) in [-1, 1].
    H and W must satisfy ``cfg.check_size``. ``forward(x, with_alpha=True)`` (or
    :meth:`forward_with_alpha`) returns ``(image, alpha)``, alpha (B, 1, H, W) in [0, 1] or None
    for a generator without alpha; the keyword form also works through DDP wrappers.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        n = cfg.depth
        chans = [_level_channels(cfg.ngf, i) for i in range(n)]
        self.down = nn.ModuleList(
            [_down(cfg.in_channels + int(cfg.fill), chans[0], None, act=False)]
            + [_down(chans[i - 1], chans[i], None if i == n - 1 else cfg.norm, act=True)
               for i in range(1, n)]
        )
        drop = dropout_levels(n) if cfg.dropout else set()
        ups = []
        for i in range(n):  # up[i] mirrors down[i]; it outputs what down[i] received
            c_in = chans[i] if i == n - 1 else 2 * chans[i]
            c_out = cfg.out_channels if i == 0 else chans[i - 1]
            ups.append(_up(c_in, c_out, cfg, outermost=i == 0, dropout=i in drop))
        self.up = nn.ModuleList(ups)
        # A fill generator never erases these pixels (set by :meth:`keep`); not a weight.
        self.register_buffer("kept", None, persistent=False)

    def keep(self, mask: torch.Tensor | None) -> UNetGenerator:
        """Pixels (H, W) in {0, 1} that a fill generator's hole never covers at inference:
        the eye openings, where a reflection on the lens can look like frame but erasing it
        would repaint the eye. None keeps nothing. Returns self."""
        if mask is not None and not self.cfg.fill:
            raise ValueError("only a fill generator erases, so only it can keep pixels")
        self.kept = None if mask is None else mask.to(next(self.parameters()).device).reshape(1, 1, *mask.shape[-2:])
        return self

    def forward(self, x: torch.Tensor, with_alpha: bool = False, hole: torch.Tensor | None = None,
                ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The image, or ``(image, alpha)`` with ``with_alpha``.

        ``hole`` (B, 1, H, W) in {0, 1} trains a ``fill`` generator: the pixels to erase and
        fill. Both passes then run as one batch (one call, as DDP wants) and the result is
        ``(image, alpha, found)``, ``found`` being the first pass's alpha on the same inputs.
        """
        if hole is not None:
            return self._train_passes(x, hole)
        image, alpha = self._run(x)
        return (image, alpha) if with_alpha else image

    def forward_with_alpha(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(image, alpha): alpha is (B, 1, H, W) in [0, 1], or None without ``cfg.alpha``."""
        return self._run(x)

    def find(self, x: torch.Tensor) -> torch.Tensor:
        """A fill generator's first pass alone: its alpha (B, 1, H, W), where it sees something
        to erase."""
        if not self.cfg.fill:
            raise ValueError("only a fill generator has a finding pass")
        self._check(x)
        return self._unet(self._find_input(x))[:, -1:]

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.cfg.fill:
            self._check(x)
            return self._compose(x, self._unet(x))
        return self.fill_hole(x, self.find_hole(x))

    def find_hole(self, x: torch.Tensor) -> torch.Tensor:
        """A fill generator's hole for ``x``: (B, 1, H, W) in {0, 1}, where its first pass sees
        frame (grown a little), less the kept pixels."""
        return self.found_and_hole(x)[1]

    def found_and_hole(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A fill generator's first pass on ``x``: its alpha (B, 1, H, W), and the hole made
        from it (:meth:`find_hole`)."""
        found = self.find(x) if not self.cfg.find_flip else self._find_both_ways(x)
        hole = frame_hole(found, self.cfg.hole_threshold, low=self.cfg.hole_low_threshold)
        if self.kept is not None:
            if self.kept.shape[-2:] != x.shape[-2:]:
                raise ValueError(f"kept pixels are {tuple(self.kept.shape[-2:])}, input is {tuple(x.shape[-2:])}")
            hole = hole * (1 - self.kept.to(hole.dtype))
        return found, hole

    def _find_both_ways(self, x: torch.Tensor) -> torch.Tensor:
        """The first pass's alpha on ``x`` and, mirrored back, on ``x`` mirrored: the larger at
        each pixel (see ``GeneratorConfig.find_flip``). One batch of twice the images."""
        n = x.shape[0]
        both = self.find(torch.cat([x, x.flip(-1)], 0))
        return torch.maximum(both[:n], both[n:].flip(-1))

    def fill_hole(self, x: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A fill generator's second pass alone: ``x`` with ``hole`` (B, 1, H, W) erased and
        painted, as ``(image, alpha)``. Video reuses a face's hole for a few frames (the crop
        follows the face, and the frame with it) and so runs one pass instead of two."""
        hole = self._checked_hole(x, hole)
        return self._fill(x, self._unet(self._erase(x, hole)), hole)

    def _train_passes(self, x: torch.Tensor, hole: torch.Tensor,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hole = self._checked_hole(x, hole)
        n = x.shape[0]
        out = self._unet(torch.cat([self._find_input(x), self._erase(x, hole)], 0))
        image, alpha = self._fill(x, out[n:], hole)
        return image, alpha, out[:n, -1:]

    def _checked_hole(self, x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """``hole`` in ``x``'s dtype, once this is a fill generator and ``x`` a size it takes."""
        if not self.cfg.fill:
            raise ValueError("only a fill generator takes a hole")
        self._check(x)
        return hole.to(x.dtype)

    def _check(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2:]
        if h % self.cfg.multiple or w % self.cfg.multiple:
            self.cfg.check_size(w, h)

    @staticmethod
    def _find_input(x: torch.Tensor) -> torch.Tensor:
        """The finding pass's input: the photo, and an empty hole channel."""
        return torch.cat([x, torch.zeros_like(x[:, :1])], 1)

    @staticmethod
    def _erase(x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The fill pass's input: the photo with the hole blanked, and the hole as a channel."""
        return torch.cat([x * (1 - hole), hole], 1)

    @staticmethod
    def _fill(x: torch.Tensor, out: torch.Tensor, hole: torch.Tensor,
              ) -> tuple[torch.Tensor, torch.Tensor]:
        # The erased pixels must come from the colours: alpha is at least the hole there.
        alpha = torch.maximum(out[:, -1:], hole)
        return x * (1 - alpha) + out[:, :-1] * alpha, alpha

    def _unet(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net's raw output after its last activation (colours, then alpha if any)."""
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for i in range(self.cfg.depth - 2, -1, -1):
            x = self.up[i](torch.cat([x, skips[i]], dim=1))  # (B, 2*C_i, H_i, W_i)
        return x

    def _compose(self, inputs: torch.Tensor, x: torch.Tensor,
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        alpha = None
        if self.cfg.alpha:
            x, alpha = x[:, :-1], x[:, -1:]
        if self.cfg.residual:
            # tanh gives a change in [-1, 1]; doubled, it can take any pixel anywhere in range.
            x = torch.clamp(inputs + 2 * x, -1.0, 1.0)
        if alpha is not None:
            # Where alpha is exactly 0 this is inputs * 1 + colour * 0: the input, bit for bit.
            x = inputs * (1 - alpha) + x * alpha
        return x, alpha


# The solid parts of synth's masks, which a fill generator's first pass learns to find: the
# masks hold frames at their opacity (about 1) and lenses and shadows at 0.5 or less, so the
# eyes behind the lenses are never erased.
SOLID_COVERAGE = 0.6
# A wire rim 1-2 px wide is blurred below that by the warp into the crop, so a thin line that
# stands this far above its surroundings (the mask less its 5x5 opening) is solid too.
SOLID_LINE = 0.2
# Grown by this many pixels, so the frame's anti-aliased edge and its dark outline go too.
HOLE_GROW = 2


def max_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """``F.max_pool2d(x, size, stride=1, padding=size // 2)`` for an odd ``size``, to the bit: the
    maximum of shifted copies, along rows and then along columns. On one-channel masks a
    CPU max-pool cannot vectorise over channels: 3.0-3.2 ms for a 5x5 window on 8x1x128x256,
    where this takes 0.34-0.36 ms (AMX Xeon, 2 threads; `scripts/bench_ops.py`)."""
    r = size // 2
    for dim in (3, 2):
        pad = (r, r, 0, 0) if dim == 3 else (0, 0, r, r)
        padded, n = F.pad(x, pad, value=float("-inf")), x.shape[dim]
        out = padded.narrow(dim, 0, n)
        for i in range(1, size):
            out = torch.maximum(out, padded.narrow(dim, i, n))
        x = out
    return x


def solid_parts(mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) soft mask in [0, 1] -> {0, 1} mask of its solid parts: above
    ``SOLID_COVERAGE``, or thin lines above ``SOLID_LINE`` over their surroundings (lens areas and
    soft shadows are broad, so opening keeps them and they do not count)."""
    opened = max_filter(-max_filter(-mask, 5), 5)
    return ((mask > SOLID_COVERAGE) | (mask - opened > SOLID_LINE)).to(mask.dtype)


# Hysteresis: the hole grows from the sure pixels by at most this many pixels along connected
# faint ones (one 3x3 max-pool per pixel of reach, so it exports to ONNX).
HOLE_REACH = 40
# ... and only in a crop where the sure pixels cover at least this share: on the people not held
# out, the first pass was sure of 0.00-0.58% of a plain face's crop (lid highlights, lashes) and
# of 0.92-11.7% of a wearer's. Without this gate, growing from lid highlights along the faint
# lid line (low threshold 0.15) took plain faces' edited crops from 36.9 to 32.7 dB (p10).
HOLE_SEED_SHARE = 0.0075


def frame_hole(alpha: torch.Tensor, threshold: float = 0.5, grow: int = HOLE_GROW,
               low: float | None = None) -> torch.Tensor:
    """(B, 1, H, W) alpha or coverage in [0, 1] -> {0, 1} mask of the pixels to erase: above
    ``threshold`` or, with ``low``, above ``low`` and connected to those within
    :data:`HOLE_REACH` pixels (in crops where they cover :data:`HOLE_SEED_SHARE`); then dilated
    by ``grow`` pixels (:func:`max_filter`, which exports to ONNX as pads and maxima)."""
    hole = (alpha > threshold).to(alpha.dtype)
    if low is not None:
        faint = (alpha > low).to(alpha.dtype)
        grown = hole
        for _ in range(HOLE_REACH):
            grown = F.max_pool2d(grown, 3, stride=1, padding=1) * faint
        seeded = (hole.mean(dim=(1, 2, 3), keepdim=True) >= HOLE_SEED_SHARE).to(alpha.dtype)
        hole = torch.maximum(hole, grown * seeded)
    if grow > 0:
        hole = max_filter(hole, 2 * grow + 1)
    return hole


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: input concat(A, B) (B, in_channels, H, W) in [-1, 1], output logits.

    ``patch`` returns (B, 1, H/2**n - 2, W/2**n - 2) for n = n_layers >= 3 (one logit per
    overlapping patch); ``pixel`` returns (B, 1, H, W).
    """

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        self.net = nn.Sequential(*(_pixel_layers(cfg) if cfg.kind == "pixel" else _patch_layers(cfg)))

    def forward(self, a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for ``a`` alone (the pair already concatenated) or for the pair (``a``, ``b``),
        concatenated here: inside a compiled discriminator the copy fuses with its first layer."""
        return self.net(a if b is None else torch.cat([a, b], 1))


def _patch_layers(cfg: DiscriminatorConfig) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, cfg.ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    c = cfg.ndf
    for i in range(1, cfg.n_layers + 1):
        # The last of these keeps stride 1: it widens the receptive field without shrinking.
        stride = 1 if i == cfg.n_layers else 2
        c_next = _level_channels(cfg.ndf, i)
        layers += [nn.Conv2d(c, c_next, 4, stride, 1, bias=False), _norm(cfg.norm, c_next),
                   nn.LeakyReLU(0.2, True)]
        c = c_next
    layers.append(nn.Conv2d(c, 1, 4, 1, 1))
    return layers


def _pixel_layers(cfg: DiscriminatorConfig) -> list[nn.Module]:
    return [
        nn.Conv2d(cfg.in_channels, cfg.ndf, 1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(cfg.ndf, 2 * cfg.ndf, 1, bias=False), _norm(cfg.norm, 2 * cfg.ndf),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(2 * cfg.ndf, 1, 1),
    ]


def init_weights(model: nn.Module, std: float = 0.02) -> nn.Module:
    """pix2pix init: conv weights ~ N(0, std), norm scales ~ N(1, std), biases 0. Returns model."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return model


def build_generator(cfg: GeneratorConfig) -> UNetGenerator:
    """A freshly initialised U-Net generator (on CPU, fp32)."""
    return init_weights(UNetGenerator(cfg))


def build_discriminator(cfg: DiscriminatorConfig) -> PatchDiscriminator:
    """A freshly initialised conditional discriminator (on CPU, fp32)."""
    return init_weights(PatchDiscriminator(cfg))


def fold_upsampling(model: UNetGenerator) -> UNetGenerator:
    """An inference copy of ``model`` in which each nearest x2 upsample + 3x3 conv is one 4x4
    stride-2 transposed conv giving the same output (to float rounding).

    Why it is exact: after a nearest x2 upsample, an even output row sees input rows (i-1, i, i)
    through taps (w0, w1, w2) and an odd one rows (i, i, i+1), so per axis the pair is a
    transposed conv with taps (w2, w1 + w2, w0 + w1, w0). It does 16 multiply-adds per 2x2
    output block and input channel where the pair did 36, and skips the 4x larger upsampled
    tensor: about 2x faster in ONNX Runtime here. Models built with ``upsample="transpose"``
    come back as an unchanged copy.
    """
    folded = copy.deepcopy(model).eval()
    for level in folded.up:
        layers = list(level)
        for i, (layer, after) in enumerate(zip(layers, layers[1:])):
            if isinstance(layer, nn.Upsample) and isinstance(after, nn.Conv2d):
                level[i], level[i + 1] = nn.Identity(), _transposed_twin(after)
    return folded


def _transposed_twin(conv: nn.Conv2d) -> nn.ConvTranspose2d:
    """The 4x4 stride-2 transposed conv equal to nearest x2 upsampling followed by ``conv``."""
    if not is_foldable(conv):
        raise ValueError(f"can only fold a 3x3 stride-1 conv with padding 1, got {conv}")
    with torch.no_grad():
        weight = folded_weight(conv.weight.double())  # sums in float64
        twin = nn.ConvTranspose2d(conv.in_channels, conv.out_channels, 4, stride=2, padding=1,
                                  bias=conv.bias is not None).to(conv.weight.device)
        twin.weight.copy_(weight)
        if conv.bias is not None:
            twin.bias.copy_(conv.bias)
    return twin.to(conv.weight.dtype)


def is_foldable(conv: nn.Module) -> bool:
    """Whether nearest x2 upsampling followed by ``conv`` is one 4x4 stride-2 transposed conv."""
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.padding == (1, 1)
            and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros")


def folded_weight(weight: torch.Tensor) -> torch.Tensor:
    """The (in, out, 4, 4) transposed-conv weight equal to nearest x2 upsampling followed by a
    3x3 conv with ``weight`` (out, in, 3, 3) (see :func:`fold_upsampling`). Linear in
    ``weight``, so training can run the folded conv and still update the 3x3 weights."""

    def taps(w: torch.Tensor, dim: int) -> torch.Tensor:
        w0, w1, w2 = w.unbind(dim)
        return torch.stack([w2, w1 + w2, w0 + w1, w0], dim)

    return taps(taps(weight, 2), 3).transpose(0, 1)  # transposed convs store (in, out, kh, kw)

