"""A floor any trained model should clear: add the training set's mean change to each input.

Usage: python scripts/mean_change_baseline.py runs/glasses/data

Computes mean(B - A) over the train split and scores val A + that mean against val B, with
the same metrics and edit masks as `eyeedit eval`, beside identity (doing nothing). On aligned
crops an edit sits in nearly the same place on every face, so this floor is high for glasses;
a GAN scoring below it is being held back by its training, not by its data.
"""

from __future__ import annotations

import sys

import numpy as np

from eyeedit.training.evaluate import edit_masks, image_metrics, load_eval_set


def main(root: str) -> None:
    train, val = load_eval_set(f"{root}/train"), load_eval_set(f"{root}/val")
    change = (train.b.astype(np.float32) - train.a.astype(np.float32)).mean(axis=0)  # (H, W, 3)
    floor = np.clip(np.rint(val.a.astype(np.float32) + change), 0, 255).astype(np.uint8)
    masks = edit_masks(val.a, val.b)
    for name, pred in (("mean change", floor), ("identity", val.a)):
        m = image_metrics(pred, val.b, masks)
        print(f"{name:12s} psnr {m['psnr']:.2f}  masked psnr {m['psnr_mask']:.2f}")


if __name__ == "__main__":
    main(sys.argv[1])
