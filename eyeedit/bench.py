"""`eyeedit bench`: measure this machine, stage by stage.

Every figure is the median of several timed repeats after warm-up runs, reported with its
spread (the 10th-90th percentile range), so one slow outlier does not move it.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from eyeedit.data.loader import PairSet
from eyeedit.data.samples import astronaut, astronaut_head, group_photo, moving_face_video
from eyeedit.detection import MIN_EYE_DISTANCE, scan_windows
from eyeedit.editing.backends import OnnxFillTranslator, OnnxTranslator, load_translator
from eyeedit.editing.editor import EditOptions, Editor, FaceEdit
from eyeedit.editing.torch_backend import TorchTranslator
from eyeedit.geometry import fit_crop_from_image, warp_to_crop
from eyeedit.landmarks import FaceMeshDetector, SingleStageMesh
from eyeedit.model.networks import DiscriminatorConfig, GeneratorConfig, build_generator
from eyeedit.model.store import ModelFile, open_model
from eyeedit.model.weights import save_generator
from eyeedit.regions import region_spec
from eyeedit.training.config import TrainConfig
from eyeedit.training.runtime import Runtime, cpu_supports_bf16, plain_runtime, processor_name
from eyeedit.training.speed import reuse_freed_memory
from eyeedit.training.state import build_state
from eyeedit.training.train import make_batch, train_step


@dataclass(frozen=True)
class Timing:
    name: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(name: str, fn: Callable[[], Any], repeats: int = 20, warmup: int = 3, note: str = "") -> Timing:
    """Time ``fn()`` ``repeats`` times after ``warmup`` untimed calls."""
    return measure_alternating({name: fn}, repeats, warmup, {name: note})[0]


def measure_alternating(cases: dict[str, Callable[[], Any]], repeats: int = 20, warmup: int = 3,
                        notes: dict[str, str] | None = None) -> list[Timing]:
    """:func:`measure` for several functions taking turns call by call, so that a busy moment of
    the machine falls on all of them alike: their ratio holds even when the times do not."""
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - t0) * 1000)
    out = []
    for name, ms in samples.items():
        q = np.percentile(ms, [10, 90])
        out.append(Timing(name, statistics.median(ms), float(q[0]), float(q[1]), repeats, (notes or {}).get(name, "")))
    return out


def bench_frame(size: tuple[int, int]) -> np.ndarray:
    """A (H, W, 3) test frame of ``size`` with the sample face at a webcam-like scale."""
    w, h = size
    face = astronaut()
    # The astronaut's eyes are 42 px apart at 512 px; scale so a face fills a webcam frame.
    scaled = cv2.resize(face, (round(512 * h / 480), round(512 * h / 480)))
    frames, _ = moving_face_video(scaled, 1, size=(w, h), noise=0)
    return frames[0]


BASELINE = "torch fp32 eager"  # what backend speed-ups are measured against


def bench_inference(model: ModelFile | None, size: tuple[int, int], repeats: int = 20) -> dict[str, Any]:
    """Per-stage timings of the editor and the generator on each backend and precision."""
    frame = bench_frame(size)
    detector = FaceMeshDetector(video=False)
    faces = detector.detect(frame)
    if not faces:
        raise RuntimeError("no face found in the benchmark frame")
    face = faces[0]
    model = model or open_model(_random_model())
    # The baseline: eager fp32 PyTorch on the network exactly as trained (upsampling not folded).
    translators: dict[str, Any] = {}
    translators[BASELINE] = load_translator(model, "torch", "cpu", "fp32", fold=False)
    for backend, precision in (("torch", "fp32"), ("torch", "bf16"), ("onnx", "fp32")):
        try:
            translators[f"{backend} {precision}"] = load_translator(model, backend, "cpu", precision)
        except ImportError as exc:  # e.g. onnxruntime missing
            translators[f"{backend} {precision}"] = exc
    region = model.region
    m = fit_crop_from_image(face.eye_corners, region)
    crop = warp_to_crop(frame, m, region.size)
    batch = crop[None]
    rows = [measure("align (fit + warp)",
                    lambda: warp_to_crop(frame, fit_crop_from_image(face.eye_corners, region), region.size), repeats)]
    gen: dict[str, Timing] = {}
    for name, tr in translators.items():
        if isinstance(tr, Exception):
            continue
        gen[name] = measure(f"generator {name}", lambda tr=tr: tr(batch), repeats)
        rows.append(gen[name])
    identity = Editor(lambda c: c, region)
    rows.append(measure("un-warp + blend", lambda: identity.blend_face(frame.copy(), FaceEdit(face, m, crop), crop),
                        repeats))
    best = min((k for k in gen if k != BASELINE), key=lambda k: gen[k].median_ms)
    editor = Editor(translators[best], region, EditOptions(max_faces=1), detector=detector)
    detection, e2e, ref_detection, ref_e2e = _detection_rows(frame, editor, repeats)
    rows = [detection, *rows, e2e, ref_detection, ref_e2e,
            *_large_face_rows(frame, face, translators[best], region, repeats)]
    base = gen[BASELINE]
    return {
        "size": list(size), "region": region.to_dict(), "model": str(model.path),
        "rows": [r.to_dict() for r in rows],
        "fps": 1000 / e2e.median_ms, "backend": best,
        "vs_single_stage": e2e.median_ms / ref_e2e.median_ms,
        "speedup_vs_torch_fp32": base.median_ms / gen[best].median_ms,
        "backend_psnr_db": _backend_psnr(translators, batch),
        "is_onnx": isinstance(translators.get("onnx fp32"), (OnnxTranslator, OnnxFillTranslator)),
        "is_torch": isinstance(translators.get("torch fp32"), TorchTranslator),
    }


def _detection_rows(frame: np.ndarray, editor: Editor, repeats: int) -> list[Timing]:
    """Detection and end to end with every face looked for, beside Face Mesh's own single-stage
    pipeline (the reference: faces close to the camera only), taking turns call by call."""
    note = _calls_note(frame, MIN_EYE_DISTANCE)
    reference = SingleStageMesh()
    try:
        cases = {f"detect (eyes >= {MIN_EYE_DISTANCE:g} px)": lambda: editor.detector.find(frame),
                 "end to end": lambda: editor.run(frame),
                 "detect: Face Mesh alone (reference)": lambda: reference.detect(frame),
                 "end to end: Face Mesh alone (reference)": lambda: editor.run(frame, reference.detect(frame))}
        return measure_alternating(cases, repeats, notes={next(iter(cases)): note, "end to end": note})
    finally:
        reference.close()


def _calls_note(frame: np.ndarray, min_eye: float) -> str:
    """How many detector calls finding faces down to ``min_eye`` px costs on ``frame``."""
    calls = 1 + len(scan_windows(frame.shape[1], frame.shape[0], min_eye))
    return f"{calls} detector call{'s' if calls > 1 else ''}"


def _large_face_rows(frame: np.ndarray, face: Any, translate: Any, region: Any, repeats: int) -> list[Timing]:
    """Detection and end to end when only faces about as large as the frame's own are looked
    for (``--min-eye-distance``): what a photo costs when small faces are not wanted."""
    wanted = math.floor(0.9 * face.eye_distance)
    detector = FaceMeshDetector(video=False, min_eye_distance=wanted)
    editor = Editor(translate, region, EditOptions(max_faces=1), detector=detector)
    note = _calls_note(frame, wanted)
    return [measure(f"detect (eyes >= {wanted} px)", lambda: detector.detect(frame), repeats, note=note),
            measure(f"end to end (eyes >= {wanted} px)", lambda: editor.run(frame), repeats, note=note)]


# 29 astronaut heads at the four sizes of a crowded group picture: eyes 62, 44, 31 and 22 px apart.
GROUP_WIDTHS = (340,) * 5 + (240,) * 7 + (170,) * 9 + (120,) * 8
GROUP_SIZE = (1920, 1280)


def bench_group(model: ModelFile | None, repeats: int = 5) -> dict[str, Any]:
    """A 1920x1280 group photo of 29 faces against the same photo holding only its first face:
    detection and end-to-end editing (every face, one generator batch, ONNX Runtime where
    available), and what each face beyond the first adds."""
    model = model or open_model(_random_model())
    editor = Editor(load_translator(model, "auto", "cpu"), model.region)
    crowd, _ = group_photo([astronaut_head()], list(GROUP_WIDTHS), GROUP_SIZE)
    alone, _ = group_photo([astronaut_head()], list(GROUP_WIDTHS[:1]), GROUP_SIZE)
    result = editor.run(crowd)
    n = result.found
    rows = [measure("detect, 1 face", lambda: editor.detector.find(alone), repeats),
            measure(f"detect, {n} faces", lambda: editor.detector.find(crowd), repeats),
            measure("end to end, 1 face", lambda: editor.run(alone), repeats),
            measure(f"end to end, {n} faces", lambda: editor.run(crowd), repeats)]
    return {"size": list(GROUP_SIZE), "faces": len(GROUP_WIDTHS), "found": n, "edited": len(result.faces),
            "skipped": [s.describe() for s in result.skipped], "rows": [r.to_dict() for r in rows],
            "per_added_face_ms": (rows[3].median_ms - rows[2].median_ms) / max(n - 1, 1)}


def _backend_psnr(translators: dict[str, Any], batch: np.ndarray) -> dict[str, float]:
    """PSNR of each backend's output against eager PyTorch fp32 (as trained) on the same crop."""
    base = translators[BASELINE](batch).astype(np.float64)
    out = {}
    for name, tr in translators.items():
        if name == BASELINE or isinstance(tr, Exception):
            continue
        mse = float(((tr(batch).astype(np.float64) - base) ** 2).mean())
        out[name] = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
    return out


def _random_model() -> Path:
    """A model file with the built-in models' architecture and random weights (timing only)."""
    torch.manual_seed(0)
    cfg = GeneratorConfig(ngf=16, depth=7, upsample="resize", residual=True)  # as in pipelines/*.toml
    spec = region_spec("eyes")
    path = Path(tempfile.mkdtemp(prefix="eyeedit-bench-")) / "random.safetensors"
    meta = {"effect": "random", "generator": cfg.to_dict(), "region": spec.to_dict(), "size": list(spec.size)}
    return save_generator(path, build_generator(cfg).eval(), meta)


@dataclass(frozen=True)
class TrainCase:
    """A training configuration to time: the pix2pix reference configurations and eyeedit's."""

    name: str
    size: tuple[int, int]  # (width, height)
    depth: int
    batch: int
    ngf: int = 64
    ndf: int = 64
    upsample: str = "transpose"
    residual: bool = False


TRAIN_CASES = (
    TrainCase("unet_256", (256, 256), 8, 1),
    TrainCase("unet_128", (128, 128), 7, 8),
    TrainCase("eyes", (256, 128), 7, 1),
    TrainCase("shipped", (256, 128), 7, 8, ngf=16, ndf=16, upsample="resize", residual=True),
)


def _case_config(case: TrainCase) -> TrainConfig:
    gen = GeneratorConfig(ngf=case.ngf, depth=case.depth, upsample=case.upsample, residual=case.residual)
    return TrainConfig(size=case.size, generator=gen, discriminator=DiscriminatorConfig(ndf=case.ndf),
                       batch_size=case.batch)


def training_step(case: TrainCase, rt: Runtime) -> Callable[[], None]:
    """One whole training step (augmentation, D and G updates) of ``case`` on random pairs,
    as a function that runs it and waits for the device."""
    cfg = _case_config(case)
    w, h = case.size
    a_u8, b_u8 = torch.randint(0, 256, (2, case.batch, h, w, 3), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))
    pairs, idx = PairSet(a_u8, b_u8, tuple(map(str, range(case.batch)))), list(range(case.batch))
    state = build_state(cfg, rt)

    def step() -> None:
        reuse_freed_memory(rt.reuse_memory)  # a process-wide setting: each side sets its own
        a, b, _ = make_batch(pairs, idx, state, cfg, rt)
        train_step(state, a, b, cfg, rt)
        _sync(rt)

    return step


def step_flops(case: TrainCase) -> float:
    """Floating-point operations of one training step of ``case`` per image, counted (not
    timed) on the plain eager step: convolutions, matrix products and what else torch counts."""
    from torch.utils.flop_counter import FlopCounterMode

    step = training_step(case, plain_runtime())
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / case.batch


def bench_training(case: TrainCase, sides: dict[str, Runtime], rounds: int = 8,
                   min_seconds: float = 0.0, flops: float | None = None,
                   probes: dict[str, Callable[[], list[float]]] | None = None) -> dict[str, Any]:
    """Images/s of ``case``'s training step under each runtime in ``sides``, measured side by
    side: after each side's warm-up (its first step, which includes any compilation, is timed
    on its own), the sides take turns, one step each per round (ABAB...), so a change in the
    machine's load falls on all of them alike. Figures are medians over rounds; ``ratio`` is
    each side's images/s over the first side's, the median of the per-round ratios.

    ``probes`` (precision -> :func:`ceiling_probe`) also run once per round, so the ceiling a
    step is a share of is measured under the same load: ``ceilings`` holds, per precision, the
    median over rounds of the best conv's GFLOP/s."""
    steps = {name: training_step(case, rt) for name, rt in sides.items()}
    first = {}
    for name, step in steps.items():
        t0 = time.perf_counter()
        step()
        first[name] = time.perf_counter() - t0
        step()  # warm-up: allocator, oneDNN kernel selection, a second compiled graph
    load = [os.getloadavg()[0]]
    times: dict[str, list[float]] = {name: [] for name in steps}
    probed: dict[str, list[float]] = {prec: [] for prec in probes or {}}
    start, done = time.perf_counter(), 0
    while done < rounds or time.perf_counter() - start < min_seconds:
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
        for prec, probe in (probes or {}).items():
            probed[prec].append(max(probe()))
        done += 1
    load.append(os.getloadavg()[0])
    base = next(iter(sides))
    flops = flops if flops is not None else step_flops(case)
    out = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        q = np.percentile(ts, [10, 90])
        ratios = [b / t for b, t in zip(times[base], ts)]
        out[name] = {"runtime": sides[name].describe(), "precision": sides[name].precision,
                     "images_per_s": case.batch / med, "median_step_s": med,
                     "p10_step_s": float(q[0]), "p90_step_s": float(q[1]),
                     "first_step_s": first[name], "ratio": statistics.median(ratios),
                     "gflop_per_s": flops * case.batch / med / 1e9}
    return {"case": case.name, "batch": case.batch, "size": list(case.size), "rounds": done,
            "gflop_per_image": flops / 1e9, "load_average": load, "baseline": base, "sides": out,
            "ceilings": {prec: statistics.median(v) for prec, v in probed.items()},
            "threads": torch.get_num_threads()}


# Representative convolutions of the U-Net and PatchGAN at 256x256, batch 1: (in channels,
# out channels, input side). 4x4 stride-2 like every encoder level.
CEILING_CONVS = ((64, 128, 128), (128, 256, 64), (256, 512, 32))


def ceiling_probe(dtype: torch.dtype = torch.float32, device: str = "cpu") -> Callable[[], list[float]]:
    """A function that runs each of :data:`CEILING_CONVS` forward + backward (weight and input
    gradients) once in ``dtype`` and returns the GFLOP/s each reached."""
    from torch.utils.flop_counter import FlopCounterMode

    runs = []
    for c_in, c_out, side in CEILING_CONVS:
        conv = torch.nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False).to(device, dtype)
        x = torch.randn(1, c_in, side, side, dtype=dtype, device=device, requires_grad=True)

        def run(conv: torch.nn.Module = conv, x: torch.Tensor = x) -> None:
            conv(x).sum().backward()
            if x.is_cuda:
                torch.cuda.synchronize()

        with FlopCounterMode(display=False) as counter:
            run()  # also the warm-up
        run()
        runs.append((run, counter.get_total_flops()))

    def probe() -> list[float]:
        out = []
        for run, flops in runs:
            t0 = time.perf_counter()
            run()
            out.append(flops / (time.perf_counter() - t0) / 1e9)
        return out

    return probe


def conv_ceiling(dtype: torch.dtype = torch.float32, repeats: int = 5, device: str = "cpu") -> dict[str, Any]:
    """The best FLOP/s this machine reaches on a convolution forward + backward over
    :data:`CEILING_CONVS` in ``dtype`` (per conv the median of ``repeats``): the ceiling a
    training step's figures are a share of."""
    probe = ceiling_probe(dtype, device)
    per_conv = list(zip(*(probe() for _ in range(repeats))))
    rows = [{"shape": list(shape), "gflop_per_s": statistics.median(r)} for shape, r in zip(CEILING_CONVS, per_conv)]
    return {"dtype": str(dtype).removeprefix("torch."), "gflop_per_s": max(r["gflop_per_s"] for r in rows),
            "convs": rows}


def _sync(rt: Any) -> None:
    if rt.device.type == "cuda":
        torch.cuda.synchronize(rt.device)


# The instruction-set flags that decide a training step's speed and precision on a CPU.
SPEED_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")


def machine() -> dict[str, Any]:
    """What this machine is, for the report header: CPU model, cores, speed-relevant flags."""
    flags = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            present = set(next((ln.split(":", 1)[1].split() for ln in fh if ln.startswith("flags")), []))
        flags = [f for f in SPEED_FLAGS if f in present]
    except OSError:
        pass
    return {"cpu": processor_name(), "cores": os.cpu_count(),
            "threads": torch.get_num_threads(), "flags": flags, "bf16": cpu_supports_bf16(),
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def native_dtypes(device: str = "cpu") -> dict[str, torch.dtype]:
    """The precisions with a ceiling here: fp32, and bf16 where it is native."""
    native = torch.cuda.is_bf16_supported() if device == "cuda" else cpu_supports_bf16()
    return {"fp32": torch.float32, **({"bf16": torch.bfloat16} if native else {})}


def ceilings(device: str = "cpu") -> dict[str, dict[str, Any]]:
    """The conv ceilings this machine has: fp32, and bf16 where it is native."""
    return {prec: conv_ceiling(dtype, device=device) for prec, dtype in native_dtypes(device).items()}


def with_shares(result: dict[str, Any], ceils: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each side's achieved FLOP/s as a share of the ceiling in its precision: the one measured
    during the run's rounds where there is one, else ``ceils`` (None without either)."""
    in_run = result.get("ceilings") or {}
    for side in result["sides"].values():
        prec = side["precision"]
        ceil = in_run.get(prec) or (ceils[prec]["gflop_per_s"] if prec in ceils else None)
        side["share_of_ceiling"] = side["gflop_per_s"] / ceil if ceil else None
    return result
