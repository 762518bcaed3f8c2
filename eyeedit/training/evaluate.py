"""`eyeedit eval`: how close a model's outputs come to the targets, beside baselines.

Metrics, on validation pairs the model never saw: L1 (mean absolute error on the [0, 1] scale),
PSNR (dB) and SSIM, each over the whole crop and inside the edit mask — the pixels where the
target differs from the input, grown by a few pixels. The mask matters: an edit often covers a
small part of the crop, and whole-crop figures are dominated by pixels nobody changed.

For a model that predicts an alpha mask, on pairs whose dataset holds edit masks (synth), also
``mask_iou``: intersection over union of alpha > 0.5 and the edit mask > 0.5.

Baselines computed on the same pairs: ``identity`` (output = input: what doing nothing scores)
and, when a checkpoint folder is given, each saved checkpoint of the model's own training run.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from eyeedit.data.pairs import DatasetError, load_info
from eyeedit.editing.backends import load_translator, translate_with_alpha
from eyeedit.editing.torch_backend import TorchTranslator
from eyeedit.imageio import ImageError, read_image, write_image, write_text
from eyeedit.model.losses import mask_iou, ssim_map
from eyeedit.model.networks import GeneratorConfig, build_generator
from eyeedit.model.store import ModelFile
from eyeedit.model.tensors import images_to_tensor
from eyeedit.regions import RegionSpec
from eyeedit.training.checkpoints import CheckpointError, all_checkpoints, generator_state
from eyeedit.training.plots import image_grid

# A target pixel counts as edited when it differs from the input by more than this (0-255),
# above JPEG-like noise; the mask then grows by MASK_GROW pixels to take in soft edges.
MASK_THRESHOLD = 8
MASK_GROW = 3


@dataclass(frozen=True)
class EvalSet:
    """Validation pairs as (N, H, W, 3) uint8 arrays with their names, and their (N, H, W)
    uint8 edit masks when the dataset has them."""

    a: np.ndarray
    b: np.ndarray
    names: list[str]
    masks: np.ndarray | None = None


def load_eval_set(folder: str | Path, limit: int | None = None) -> EvalSet:
    """Pairs from a split folder holding A/ and B/, or a dataset root (its val/ split)."""
    root = Path(folder)
    split = root if (root / "A").is_dir() else root / "val"
    if not (split / "A").is_dir() or not (split / "B").is_dir():
        raise FileNotFoundError(f"{folder}: no A/ and B/ folders (give a dataset or its val/ folder)")
    names = sorted(p.relative_to(split / "A").with_suffix("").as_posix() for p in (split / "A").rglob("*.png"))
    names = [n for n in names if (split / "B" / f"{n}.png").is_file()][:limit]
    if not names:
        raise FileNotFoundError(f"{split}: no pairs found")
    has_masks = all((split / "mask" / f"{n}.png").is_file() for n in names)
    a = _same_size([split / "A" / f"{n}.png" for n in names])
    b = _same_size([split / "B" / f"{n}.png" for n in names], a.shape[1:3])
    masks = _same_size([split / "mask" / f"{n}.png" for n in names], a.shape[1:3])[..., 0] if has_masks else None
    return EvalSet(a, b, names, masks)


def dataset_root(folder: str | Path) -> Path | None:
    """The dataset a pairs folder belongs to: ``folder`` itself, or its parent when ``folder``
    is one of its splits (the folder holding ``dataset.json``); None for bare A/ B/ folders."""
    root = Path(folder)
    return next((r for r in (root, root.parent) if (r / "dataset.json").is_file()), None)


def dataset_region(folder: str | Path) -> RegionSpec | None:
    """The crop region a dataset's ``dataset.json`` records (``folder`` as :func:`dataset_root`
    takes it), or None when there is none to read."""
    root = dataset_root(folder)
    try:
        return None if root is None else RegionSpec.from_dict(load_info(root)["region"])
    except (DatasetError, KeyError, TypeError, ValueError):
        return None


def _same_size(paths: list[Path], size: tuple[int, ...] | None = None) -> np.ndarray:
    """The images at ``paths`` stacked, (N, H, W, 3); ImageError naming the first that cannot be
    read or whose (H, W) differs from ``size`` (default: the first image's)."""
    images = []
    for path in paths:
        image = read_image(path)
        size = size or image.shape[:2]
        if image.shape[:2] != tuple(size):
            raise ImageError(path, f"is {image.shape[1]}x{image.shape[0]}, its pair needs {size[1]}x{size[0]}")
        images.append(image)
    return np.stack(images)


def edit_masks(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, H, W) bool: where target ``b`` differs from input ``a``, grown by MASK_GROW pixels."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=3) > MASK_THRESHOLD  # (N, H, W)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * MASK_GROW + 1, 2 * MASK_GROW + 1))
    return np.stack([cv2.dilate(d.astype(np.uint8), kernel) > 0 for d in diff])


def image_metrics(pred: np.ndarray, target: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Mean L1, PSNR and SSIM over the batch, on the whole crop and inside ``masks``.

    ``pred`` and ``target`` are (N, H, W, 3) uint8; images whose mask is empty count only in
    the whole-crop figures.
    """
    p, t = pred.astype(np.float64) / 255, target.astype(np.float64) / 255
    err = np.abs(p - t).mean(axis=3)  # (N, H, W)
    sq = ((p - t) ** 2).mean(axis=3)
    with torch.no_grad():
        smap = ssim_map(images_to_tensor(pred), images_to_tensor(target)).numpy()  # (N, H', W')
    pad_y, pad_x = (t.shape[1] - smap.shape[1]) // 2, (t.shape[2] - smap.shape[2]) // 2
    inner = masks[:, pad_y : pad_y + smap.shape[1], pad_x : pad_x + smap.shape[2]]
    out = {"l1": float(err.mean()), "psnr": float(np.mean([psnr_from_mse(m) for m in sq.reshape(len(sq), -1).mean(1)])),
           "ssim": float(smap.mean())}
    has = [i for i in range(len(p)) if masks[i].any() and inner[i].any()]
    if has:
        out["l1_mask"] = float(np.mean([err[i][masks[i]].mean() for i in has]))
        out["psnr_mask"] = float(np.mean([psnr_from_mse(sq[i][masks[i]].mean()) for i in has]))
        out["ssim_mask"] = float(np.mean([smap[i][inner[i]].mean() for i in has]))
    return out


def psnr_from_mse(mse: float, cap: float = 100.0) -> float:
    """PSNR in dB of a mean squared error on the [0, 1] scale, at most ``cap`` (equal images)."""
    return cap if mse <= 1e-10 else min(cap, float(10 * np.log10(1.0 / mse)))


def run_eval(model: ModelFile, data: EvalSet, checkpoints: str | Path | None = None,
             backend: str = "torch", batch: int = 16) -> dict[str, Any]:
    """Metrics of the model, the identity baseline and (optionally) each checkpoint."""
    translate, meta = load_translator(model, backend=backend), model.metadata
    masks = edit_masks(data.a, data.b)
    pred, alpha = _batched(translate, data.a, batch)
    report: dict[str, Any] = {
        "model": str(model.path), "effect": model.effect, "pairs": len(data.names),
        "mask_fraction": float(masks.mean()),
        "results": {"model": image_metrics(pred, data.b, masks),
                    "identity": image_metrics(data.a, data.b, masks)},
    }
    if alpha is not None and data.masks is not None:
        iou = mask_iou(torch.from_numpy(alpha), torch.from_numpy(data.masks).float() / 255)
        report["results"]["model"]["mask_iou"] = float(iou.mean())
    for ckpt in _checkpoint_paths(checkpoints):
        tr = _checkpoint_translator(ckpt, meta)
        report["results"][f"checkpoint {ckpt.stem}"] = image_metrics(_batched(tr, data.a, batch)[0], data.b, masks)
    report["outputs"] = pred
    return report


def _batched(translate: Any, images: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(outputs, alpha masks or None) of a translator over ``images`` in batches."""
    parts = [translate_with_alpha(translate, images[i : i + batch]) for i in range(0, len(images), batch)]
    alphas = [p[1] for p in parts]
    alpha = None if any(x is None for x in alphas) else np.concatenate(alphas)
    return np.concatenate([p[0] for p in parts]), alpha


def _checkpoint_paths(folder: str | Path | None) -> list[Path]:
    if folder is None:
        return []
    return all_checkpoints(Path(folder))


def _checkpoint_translator(path: Path, meta: dict[str, Any]) -> Any:
    """A translator running the generator weights stored in a training checkpoint."""
    cfg = GeneratorConfig.from_dict(meta["generator"])
    g = build_generator(cfg)
    try:
        g.load_state_dict(generator_state(path))
    except RuntimeError as exc:  # weights of another architecture
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: not a checkpoint of this model ({first[:120]})") from None
    return TorchTranslator(g, cfg.in_channels)


def write_gallery(folder: str | Path, data: EvalSet, outputs: np.ndarray, title: str,
                  limit: int = 24) -> tuple[Path, Path]:
    """A PNG grid and a static HTML page of input | output | target rows; returns both paths."""
    out = Path(folder)
    n = min(limit, len(data.names))
    rows = [[data.a[i], outputs[i], data.b[i]] for i in range(n)]
    png = write_image(out / "gallery.png", image_grid(rows))
    cells = []
    for i in range(n):
        stem = f"{i:03d}"
        for tag, img in (("input", data.a[i]), ("output", outputs[i]), ("target", data.b[i])):
            write_image(out / "images" / f"{stem}_{tag}.png", img)
        cells.append(f"<tr><td>{html.escape(data.names[i])}</td>" + "".join(
            f'<td><img src="images/{stem}_{tag}.png" alt="{tag}"></td>' for tag in ("input", "output", "target"))
            + "</tr>")
    page = (f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif}td{padding:2px;font-size:12px}img{display:block}</style>"
            f"<h1>{html.escape(title)}</h1><table><tr><th>pair</th><th>input</th><th>output</th>"
            f"<th>target</th></tr>{''.join(cells)}</table>")
    return png, write_text(out / "index.html", page)
