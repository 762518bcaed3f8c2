"""Speed-ups of the training step that leave what is computed unchanged.

Each is chosen once in :class:`~eyeedit.training.runtime.Runtime` and applied when the state is
built (freed memory: when training starts); none changes the networks' parameters, their names
or the model files:

- ``optimizer``: ``fused`` Adam is one pass over each parameter, its gradient and both moments
  (CPU and CUDA); ``foreach`` batches per-tensor kernels; ``plain`` is a loop over tensors.
  On a CPU, Adam over the 57M parameters of unet_256 is memory-bound and fused wins by 4x+.
- ``small_convs``: convolutions on small inputs (:data:`SMALL_CONV_POSITIONS`,
  :data:`SMALL_TRANSPOSED_POSITIONS`) run as one matrix product over unfolded patches
  (``F.unfold`` / ``F.fold``). At batch 1 the deep U-Net levels (512 channels on 1x1 to 8x8
  maps) are a few large weight matrices applied to a handful of pixels, where oneDNN's
  convolution kernels spend most of their time on set-up. Stride-1 convolutions with very few
  output channels (the PatchGAN's last layer) run taps first (:func:`_narrow_conv`).
- ``fold_resize``: a resize level (nearest x2 upsample, then a 3x3 conv) runs as the one 4x4
  stride-2 transposed conv it equals, with weights derived from the 3x3 ones at each step:
  2.25x fewer multiply-adds and no upsampled map (the shipped models' U-Net).
- ``dense_grads``: the gradient reaching each U-Net decoder level that joins a skip is made
  dense (the concatenation's backward hands on a strided slice, with which batch norm's
  backward ran 5x slower).
- ``reuse_memory``: freed host memory stays in the process for the next step's tensors.
- ``compile``: ``torch.compile`` of G, D and the losses (fuses batch norm, activations and the
  loss arithmetic). Falls back to eager, with a warning, where compiling fails.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from eyeedit.model.networks import UNetGenerator, folded_weight, is_foldable

OPTIMIZERS = ("plain", "foreach", "fused")
# Input positions (batch x height x width) up to which the matrix product beat oneDNN, forward +
# backward in fp32 on an AVX2 CPU, layer by layer in unet_256 (batch 1) and the shipped models'
# U-Net (batch 8): a convolution up to 8 positions per image at batch 8 or an 8x8 map at batch
# 1 (1.0-3.5x); a transposed convolution up to a 16x16 map (1.3-2x; from 32x32 on, oneDNN's
# kernels were as fast or faster).
SMALL_CONV_POSITIONS = 64
SMALL_TRANSPOSED_POSITIONS = 256


def adam(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float],
         kind: str) -> torch.optim.Adam:
    """Adam with the given implementation (``plain``, ``foreach`` or ``fused``)."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {kind!r}")
    flags = {"plain": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[kind]
    return torch.optim.Adam(params, lr=lr, betas=betas, **flags)


# ----------------------------------------------------------------------------- small convolutions

# Both products put the few positions first and the weight second, (B*L, K) @ (K, N): with a
# weight matrix on the left, transposed for the backward pass, MKL's skinny products ran 3-5x
# slower on this layout.

def _conv_as_gemm(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` as one matrix product: (B*L, Cin*k*k) @ (Cin*k*k, Cout)."""
    h, w = x.shape[-2:]
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    cols = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw))  # (B, Cin*k*k, L)
    rows = cols.transpose(1, 2).reshape(-1, cols.shape[1])  # (B*L, Cin*k*k): one product for the batch
    y = rows @ conv.weight.reshape(conv.out_channels, -1).t()  # (B*L, Cout)
    if conv.bias is not None:
        y = y + conv.bias
    return _rows_to_map(y, x, oh, ow)


def _rows_to_map(y: torch.Tensor, x: torch.Tensor, oh: int, ow: int) -> torch.Tensor:
    """(B*L, C) rows -> a (B, C, oh, ow) map in ``x``'s memory format: channels_last is the
    rows' own layout (a free view); the contiguous format takes a transposing copy."""
    nchw = y.reshape(x.shape[0], oh, ow, y.shape[-1]).permute(0, 3, 1, 2)
    return nchw if _is_channels_last(x) else nchw.contiguous()


def _is_channels_last(x: torch.Tensor) -> bool:
    """A channels-last map (a map with one channel, or 1x1, is both layouts: counted contiguous)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _transposed_as_gemm(conv: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a transposed convolution: each input pixel's (Cout*k*k) patch is one
    row of a matrix product, and ``F.fold`` adds the overlapping patches into place."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    oh, ow = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
    rows = x.reshape(n, c, h * w).transpose(1, 2).reshape(n * h * w, c)  # (B*L, Cin)
    patches = rows @ conv.weight.reshape(c, -1)  # (B*L, Cout*k*k)
    cols = patches.reshape(n, h * w, -1).transpose(1, 2)  # (B, Cout*k*k, L)
    y = F.fold(cols, (oh, ow), (kh, kw), padding=(ph, pw), stride=(sh, sw))
    if conv.bias is not None:
        y = y + conv.bias[:, None, None]
    return y


# Stride-1 convolutions with at most this many output channels run taps first (the PatchGAN's
# last layer, 1 channel): 1.6-1.8x faster forward + backward than oneDNN's kernels, which are
# built for wide outputs.
NARROW_OUT_CHANNELS = 4


def _narrow_conv(conv: nn.Conv2d, eager: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for few output channels: one product gives every tap's map over the padded
    input, (Cout*k*k, Cin) @ (Cin, H*W); the output is the sum of the k*k maps, each shifted."""
    if x.device.type != "cpu":
        return eager(x)
    n, c, h, w = x.shape
    (kh, kw), (ph, pw) = conv.kernel_size, conv.padding
    hp, wp = h + 2 * ph, w + 2 * pw
    oh, ow = hp - kh + 1, wp - kw + 1
    taps = conv.weight.permute(0, 2, 3, 1).reshape(-1, c)  # (Cout*kh*kw, Cin)
    maps = (taps @ F.pad(x, (pw, pw, ph, ph)).reshape(n, c, hp * wp)).reshape(n, -1, kh, kw, hp, wp)
    y = maps[:, :, 0, 0, :oh, :ow]
    for i in range(kh):
        for j in range(kw):
            if i or j:
                y = y + maps[:, :, i, j, i : i + oh, j : j + ow]
    return y if conv.bias is None else y + conv.bias[:, None, None]


def _small_forward(conv: nn.Module, eager: Callable[[torch.Tensor], torch.Tensor],
                   as_gemm: Callable[[Any, torch.Tensor], torch.Tensor], limit: int, x: torch.Tensor) -> torch.Tensor:
    if x.shape[0] * x.shape[-1] * x.shape[-2] <= limit and x.device.type == "cpu":
        return as_gemm(conv, x)
    return eager(x)


def _gemm_capable(m: nn.Module) -> bool:
    plain = m.groups == 1 and m.dilation == (1, 1) and m.padding_mode == "zeros"
    if isinstance(m, nn.ConvTranspose2d):
        return plain and m.output_padding == (0, 0) and isinstance(m.padding, tuple)
    return isinstance(m, nn.Conv2d) and plain and isinstance(m.padding, tuple)


def small_convs_as_gemm(model: nn.Module) -> int:
    """Route ``model``'s convolutions on small inputs through a matrix product; returns how
    many convolutions were set up. Parameters and their names are untouched (the forward is
    replaced on the instances), so checkpoints and model files are the same either way."""
    count = 0
    for m in model.modules():
        if (type(m) is nn.Conv2d and _gemm_capable(m) and m.stride == (1, 1)
                and m.out_channels <= NARROW_OUT_CHANNELS):
            m.forward = functools.partial(_narrow_conv, m, m.forward)
            count += 1
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and _gemm_capable(m):
            transposed = isinstance(m, nn.ConvTranspose2d)
            as_gemm = _transposed_as_gemm if transposed else _conv_as_gemm
            limit = SMALL_TRANSPOSED_POSITIONS if transposed else SMALL_CONV_POSITIONS
            m.forward = functools.partial(_small_forward, m, m.forward, as_gemm, limit)
            count += 1
    return count


# ----------------------------------------------------------------------------- resize levels

# Input positions (batch x height x width) above which a resize level runs folded: from 4x8 maps
# at batch 8 on, the folded conv was 1.1-4.3x faster forward + backward (fp32, AVX2); on the
# smallest maps the upsample + 3x3 pair was faster.
FOLD_POSITIONS = 64


def _is_nearest_x2(m: nn.Module) -> bool:
    return isinstance(m, nn.Upsample) and m.mode == "nearest" and m.scale_factor in (2, 2.0, (2, 2), (2.0, 2.0))


def _resize_forward(seq: nn.Sequential, pairs: dict[int, nn.Conv2d], x: torch.Tensor) -> torch.Tensor:
    fold = x.shape[0] * x.shape[-2] * x.shape[-1] > FOLD_POSITIONS
    layers = list(seq)
    i = 0
    while i < len(layers):
        if fold and i in pairs:  # upsample + 3x3 conv as one transposed conv on the small map
            conv = pairs[i]
            x = F.conv_transpose2d(x, folded_weight(conv.weight), conv.bias, stride=2, padding=1)
            i += 2
        else:
            x = layers[i](x)
            i += 1
    return x


def fold_resize_levels(model: nn.Module) -> int:
    """Run each nearest x2 upsample + 3x3 conv pair in ``model`` as the one 4x4 stride-2
    transposed conv it equals (:func:`~eyeedit.model.networks.folded_weight`, derived from the
    3x3 weights at every step, so they are what trains); returns how many pairs.

    The pair does 36 multiply-adds per 2x2 output block and input channel on a map 4x the
    input's size; the folded conv does 16 on the input map itself, forward and backward. The
    3x3 weights stay the parameters: names, checkpoints and model files are unchanged."""
    count = 0
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        layers = list(seq)
        pairs = {i: conv for i, (up, conv) in enumerate(zip(layers, layers[1:]))
                 if _is_nearest_x2(up) and is_foldable(conv)}
        if pairs:
            seq.forward = functools.partial(_resize_forward, seq, pairs)
            count += len(pairs)
    return count


# ----------------------------------------------------------------------------- skip gradients
class _DenseGrad(torch.autograd.Function):
    """Identity forward; backward hands on the gradient dense, in the output's memory format."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.channels_last = _is_channels_last(x)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        layout = torch.channels_last if ctx.channels_last else torch.contiguous_format
        return grad.contiguous(memory_format=layout)


def _dense_grad_forward(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return _DenseGrad.apply(forward(x))


def dense_skip_grads(model: nn.Module) -> int:
    """Make the gradient reaching each U-Net decoder level whose output is concatenated with a
    skip dense; returns how many levels. The concatenation's backward hands each level a
    channel slice of its gradient, and a batch norm's forward + backward with such a strided
    gradient took 6.3-6.8 ms against 1.2 ms with a dense one (bf16, channels_last,
    8x16x64x128, AMX Xeon, 2 threads; `scripts/bench_ops.py`), far more than the copy. Nothing
    else changes: the values are the same."""
    if not isinstance(model, UNetGenerator):
        return 0
    for level in model.up[1:]:  # up[0] is the output layer, never concatenated
        level.forward = functools.partial(_dense_grad_forward, level.forward)
    return len(model.up) - 1


# ----------------------------------------------------------------------------- freed memory

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # mallopt parameters (malloc.h)
# Where glibc's own thresholds settle in a process that frees large blocks (they rise with each
# freed block up to 32 MB; setting any of them by hand stops that, so "off" sets these).
_GLIBC_SETTLED = {_M_MMAP_MAX: 65536, _M_MMAP_THRESHOLD: 32 * 2**20, _M_TRIM_THRESHOLD: 64 * 2**20}


@functools.cache
def _libc() -> Any:
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def reuse_freed_memory(on: bool) -> bool:
    """Keep memory that tensors free for the next step's tensors (glibc only; True if set).

    By default glibc hands every allocation over 32 MB (and many smaller ones) back to the
    kernel when it is freed, so each step's gradients and activations arrive as fresh pages:
    about 39,000 page faults per unet_256 step, each zero-filling 4 KiB. Served from the heap
    and never trimmed, they are reused instead (3,400 faults a step). The resident size stays
    at the step's peak, which a training process reaches anyway. ``False`` sets glibc's
    thresholds where they settle by themselves in a training process.
    """
    libc = _libc()
    if libc is None:
        return False
    settings = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 2**31 - 1} if on else _GLIBC_SETTLED
    return all(libc.mallopt(key, value) == 1 for key, value in settings.items())


# ----------------------------------------------------------------------------- torch.compile

@functools.cache
def compile_available() -> str | None:
    """None when ``torch.compile`` can run here, else a one-line reason it cannot.

    Compiles and runs a one-line function once per process: on a CPU, inductor needs a
    working C++ compiler, which only a real compile finds out.
    """
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    try:
        probe = torch.compile(lambda t: t * 2 + 1, dynamic=False)
        probe(torch.ones(4))
    except Exception as exc:  # a missing compiler or a partial install: anything can come up
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        return f"torch.compile does not work here ({type(exc).__name__}: {first})"
    return None


def eager(model: nn.Module) -> Callable[..., Any]:
    """``model``'s forward without its compiled version (``nn.Module.compile`` compiles only the
    call): validation and sample grids run once an epoch, in eval mode, without gradients and
    with their own batch sizes, each of which would compile the model again."""
    return model.forward


def compile_module(model: nn.Module) -> bool:
    """Compile ``model`` in place (``nn.Module.compile``: parameter names unchanged); False,
    with a warning, when compiling is unavailable here."""
    reason = compile_available()
    if reason is not None:
        warnings.warn(f"--compile: {reason}; training runs eagerly", stacklevel=2)
        return False
    model.compile(dynamic=False)
    return True


@functools.cache
def compiled(fn: Callable[..., Any], enabled: bool) -> Callable[..., Any]:
    """``torch.compile(fn)`` when enabled and available, else ``fn`` (one wrapper per function,
    so its compiled code is reused from step to step)."""
    if not enabled or compile_available() is not None:
        return fn
    return torch.compile(fn, dynamic=False)
