"""How the glasses judge's verdict falls as the held-out crops are blurred.

    python scripts/judge_blur.py ../shared/faces

Aligns the held-out people's glasses crops (256x128, as the judge takes them), blurs them with
a Gaussian of increasing sigma (crop pixels) and prints the share judged "glasses", per class.
Edited crops are softer than photos, so this bounds what the judge can say about them.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from eyeedit.data.portraits import align_portraits, is_held_out, labelled_portraits, read_holdout
from eyeedit.model.judge import Judge

SIGMAS = (0.0, 1.0, 2.0, 3.0, 4.0)


def main(faces: str, holdout: str = "pipelines/holdout.txt") -> None:
    judge = Judge.load()
    names = read_holdout(holdout)
    held = [p for p in labelled_portraits(faces) if is_held_out(p, names)]
    aligned = align_portraits(held, judge.region)
    glasses = aligned.labels == 1
    print(f"{glasses.sum()} held-out photos with glasses, {(~glasses).sum()} without")
    for sigma in SIGMAS:
        crops = aligned.crops if sigma == 0 else np.stack(
            [cv2.GaussianBlur(c, (0, 0), sigma) for c in aligned.crops])
        said = judge.wears_glasses(crops)
        print(f"sigma {sigma:.0f} px: judged glasses {said[glasses].mean():.0%} of those with, "
              f"{said[~glasses].mean():.0%} of those without")


if __name__ == "__main__":
    main(*sys.argv[1:3])
