"""Speed-ups of the training step that leave what is computed unchanged.

Each is chosen once in :class:`~eyeedit.training.runtime.Runtime` and applied when the state is
built; none changes the networks' parameters, their names or the model files:

- ``optimizer``: ``fused`` Adam is one pass over each parameter, its gradient and both moments
  (CPU and CUDA); ``foreach`` batches per-tensor kernels; ``plain`` is a loop over tensors.
  On a CPU, Adam over the 57M parameters of unet_256 is memory-bound and fused wins by 4x+.
- ``small_convs``: convolutions whose input has at most :data:`SMALL_CONV_PIXELS` positions run
  as one matrix product over unfolded patches (``F.unfold`` / ``F.fold``). At batch 1 the deep
  U-Net levels (512 channels on 1x1 to 8x8 maps) are a few large weight matrices applied to a
  handful of pixels, where oneDNN's convolution kernels spend most of their time on set-up.
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

OPTIMIZERS = ("plain", "foreach", "fused")
# At most this many input positions (8x8): measured break-even of unfold + GEMM against oneDNN
# for 4x4 stride-2 convolutions with 512 channels, forward + backward, batch 1, fp32.
SMALL_CONV_PIXELS = 64


def adam(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float],
         kind: str) -> torch.optim.Adam:
    """Adam with the given implementation (``plain``, ``foreach`` or ``fused``)."""
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {kind!r}")
    flags = {"plain": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[kind]
    return torch.optim.Adam(params, lr=lr, betas=betas, **flags)


# ----------------------------------------------------------------------------- small convolutions

def _conv_as_gemm(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` as one matrix product: (Cout, Cin*k*k) @ (Cin*k*k, B*L)."""
    n, _, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    cols = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw))  # (B, Cin*k*k, L)
    cols = cols.transpose(0, 1).reshape(cols.shape[1], -1)  # (Cin*k*k, B*L): one GEMM for the batch
    y = conv.weight.reshape(conv.out_channels, -1) @ cols  # (Cout, B*L)
    if conv.bias is not None:
        y = y + conv.bias[:, None]
    return y.reshape(conv.out_channels, n, oh * ow).transpose(0, 1).reshape(n, conv.out_channels, oh, ow)


def _transposed_as_gemm(conv: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a transposed convolution: each input pixel's (Cout*k*k) patch is one
    column of a matrix product, and ``F.fold`` adds the overlapping patches into place."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    oh, ow = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
    flat = x.reshape(n, c, h * w).transpose(0, 1).reshape(c, n * h * w)  # (Cin, B*L)
    cols = conv.weight.reshape(c, -1).t() @ flat  # (Cout*k*k, B*L)
    cols = cols.reshape(cols.shape[0], n, h * w).transpose(0, 1)  # (B, Cout*k*k, L)
    y = F.fold(cols, (oh, ow), (kh, kw), padding=(ph, pw), stride=(sh, sw))
    if conv.bias is not None:
        y = y + conv.bias[:, None, None]
    return y


def _small_forward(conv: nn.Module, eager: Callable[[torch.Tensor], torch.Tensor],
                   as_gemm: Callable[[Any, torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    if x.shape[-1] * x.shape[-2] <= SMALL_CONV_PIXELS and x.device.type == "cpu":
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
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and _gemm_capable(m):
            as_gemm = _transposed_as_gemm if isinstance(m, nn.ConvTranspose2d) else _conv_as_gemm
            m.forward = functools.partial(_small_forward, m, m.forward, as_gemm)
            count += 1
    return count


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
