"""Where and how training runs: device, precision, memory format and the DDP process group.

Decided once, at the entry point, by :func:`setup_runtime`, and passed everywhere as a frozen
:class:`Runtime`; nothing deeper down picks a device or a dtype on its own.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass

import torch
import torch.distributed as dist

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX).

    Without them oneDNN emulates bf16 and autocast is far slower than fp32 (measured 30x
    slower on an AVX2-only EPYC), so ``auto`` must not pick it.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "").split()
        if flags:
            return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        pass
    mkldnn_check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(mkldnn_check and mkldnn_check())


def processor_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform module knows: speed
    figures and trained models name the CPU they came from, since speeds differ widely between
    CPUs of one architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def hardware_name(device: torch.device) -> str:
    """What ``device`` is: the GPU's name for CUDA, else the CPU's (:func:`processor_name`)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return processor_name()


@dataclass(frozen=True)
class Runtime:
    """Where and how training runs; built once by ``setup_runtime`` and passed everywhere."""

    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16" (autocast dtype; weights stay fp32)
    channels_last: bool
    rank: int = 0
    world_size: int = 1
    # How the step runs, not what it computes (eyeedit.training.speed): the Adam
    # implementation, torch.compile of G, D and the losses, small convolutions as GEMMs.
    optimizer: str = "foreach"
    compile: bool = False
    small_convs: bool = False
    fold_resize: bool = False  # upsample + 3x3 conv levels as one transposed conv
    dense_grads: bool = False  # dense gradients into the U-Net levels that skips are joined to
    reuse_memory: bool = False  # keep freed host memory for the next step (glibc malloc)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @property
    def memory_format(self) -> torch.memory_format:
        """The activations' memory format (inputs and everything computed from them)."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def param_memory_format(self) -> torch.memory_format:
        """The weights' memory format: channels_last only on GPUs. On a CPU, channels_last
        weights are not contiguous, so fused Adam copies each of them (and its gradient and
        moments) in and out at every step, and the small convolutions' matrix products copy
        the weights to reshape them: unet_256 in bf16 ran at 1.9x the plain step with
        channels_last weights and 2.3-2.5x with contiguous ones (AMX Xeon, 2 threads)."""
        return self.memory_format if self.device.type == "cuda" else torch.contiguous_format

    def describe(self, upsample: str = "resize") -> str:
        """One line: device, precision and the speed paths on (``upsample``: the generator's, as
        folding applies to resize levels only)."""
        layout = "channels_last" if self.param_memory_format == self.memory_format else "channels_last activations"
        extras = [name for name, on in ((layout, self.channels_last), ("compiled", self.compile),
                                        ("small convs as GEMM", self.small_convs),
                                        ("resize levels folded", self.fold_resize and upsample == "resize"),
                                        ("dense skip gradients", self.dense_grads),
                                        ("freed memory reused", self.reuse_memory)) if on]
        extras.append(f"{self.optimizer} Adam")
        if self.world_size > 1:
            extras.append(f"DDP x{self.world_size}")
        return f"{self.device} {self.precision}, {', '.join(extras)}"


def plain_runtime(device: str = "cpu") -> Runtime:
    """The reference to measure speed-ups against: eager fp32, contiguous tensors, a plain
    per-tensor Adam loop, no compilation."""
    return Runtime(torch.device(device), "fp32", False, optimizer="plain")


def _pick_device(name: str, local_rank: int) -> torch.device:
    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else (
            "mps" if torch.backends.mps.is_available() else "cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda asked for, but torch sees no CUDA GPU")
        return torch.device("cuda", local_rank)
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps asked for, but the MPS backend is not available")
    return torch.device(name)


def _pick_precision(name: str, device: torch.device) -> str:
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return "fp32"


def setup_runtime(device: str = "auto", precision: str = "auto", compile: str = "auto",
                  planned_steps: int | None = None) -> Runtime:
    """Decide device, precision and speed-ups once; join the process group under torchrun.

    ``auto`` precision: bf16 autocast on CUDA GPUs that support it, else fp16 with a gradient
    scaler; on a CPU, bf16 only with native bf16 instructions, else fp32. ``compile``: "on",
    "off", or "auto": on where it measured faster and the run (``planned_steps`` optimizer
    steps per process) is long enough to repay the compile time (:data:`COMPILE_AUTO`).
    Raises ValueError with a one-line message for an unusable choice.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local_rank)
    prec = _pick_precision(precision, dev)
    if prec == "fp16" and dev.type == "cpu":
        raise ValueError("fp16 training is for GPUs; on a CPU use --precision bf16 or fp32")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its kernels
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    # NHWC activations help tensor cores and oneDNN's bf16 kernels; on an fp32 AVX2 CPU they
    # were slower. (Weights: see Runtime.param_memory_format.)
    channels_last = dev.type == "cuda" or (dev.type == "cpu" and prec == "bf16")
    # Fused Adam exists for CPU and CUDA tensors; MPS keeps the foreach path.
    optimizer = "fused" if dev.type in ("cpu", "cuda") else "foreach"
    # Small convolutions as matrix products and folded resize levels won in fp32 (AVX2) and
    # in bf16 (AMX: unet_256 1.9x -> 2.3x the plain step, the shipped configuration 2.7x -> 3.0x).
    cpu = dev.type == "cpu"
    return Runtime(dev, prec, channels_last, rank, world, optimizer=optimizer,
                   compile=_pick_compile(compile, dev, prec, planned_steps), small_convs=cpu, fold_resize=cpu,
                   dense_grads=cpu, reuse_memory=cpu)


COMPILE_CHOICES = ("auto", "on", "off")


def _pick_compile(name: str, device: torch.device, precision: str, planned_steps: int | None = None) -> bool:
    if name not in COMPILE_CHOICES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_CHOICES)}, got {name!r}")
    if name != "auto":
        return name == "on"
    min_steps = COMPILE_AUTO.get((device.type, precision))
    return min_steps is not None and planned_steps is not None and planned_steps >= min_steps


# Where `--compile auto` compiles: device/precision pairs where the compiled step measured faster
# than the eager one, and the fewest planned steps for which the saving repays the compile time.
# - CPU bf16 (AMX Xeon, 2 threads): the shipped configuration 1.12x the eager step (91.9 against
#   81.7 img/s, `scripts/bench_before_after.py` with the same tree on both sides; 1.38x before
#   the eager step's skip gradients were made dense), unet_256 1.03x; compiling costs 45-55 s
#   (each graph once: an epoch's last batch is filled to full size and validation runs
#   eagerly). Repaid after ~4,500 steps of the shipped configuration and ~8,000 of unet_256, so
#   runs of 10,000 steps and more compile. The no-glasses recipe (1,584 steps; its generator
#   runs twice a step) stays eager, and compiled it gained nothing: 1.04x once compiled, 341 s
#   of training against 311 s.
# - CPU fp32 (AVX2): slower (0.95x the plain step against 1.26x eager, after 106 s of compiling).
# - GPUs: `scripts/gpu_check.sh` times it; not yet measured.
COMPILE_AUTO: dict[tuple[str, str], int] = {("cpu", "bf16"): 10_000}


def teardown_runtime(rt: Runtime) -> None:
    """Undo :func:`setup_runtime`: leave the DDP process group when one was joined."""
    if rt.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
