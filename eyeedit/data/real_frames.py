"""Real frames pasted onto faces without glasses: removal pairs whose frames are real.

Drawn frames teach a removal model what the renderer draws; the frames people wear differ
(acetate colours and mottles, shine, how thin metal catches the light). A removal model's first
pass marks the frame on photos of people who wear glasses (:mod:`eyeedit.editing.frames`
finds them); pasted onto another face's crop, such a frame gives a pair whose edit mask is the
paste itself. Crops are aligned on the eye corners, so a frame lands where frames sit.

What the first pass marks is cleaned before it is pasted
(:func:`eyeedit.editing.frames.frame_weight`): the eye openings and brows are left out,
because a first pass half-sees brows and lash lines, and a model taught to erase a pasted brow
erases brows on faces without glasses (measured with the `no-glasses` recipe at hole threshold
0.6: on 102 held-out faces without glasses the edited crop kept 33.5 dB of the original at p10
with brows pasted, 36.7 without).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eyeedit.imageio import atomic_write


@dataclass(frozen=True)
class RealFrames:
    """Frames found on photos of people who wear glasses, in one region's aligned crops."""

    crops: np.ndarray  # (N, H, W, 3) uint8: each donor photo's aligned crop
    weights: np.ndarray  # (N, H, W) float32 in [0, 1]: where its frame is, as paste weights
    names: tuple[str, ...]  # the donor photos' file names
    model: str = ""  # sha256 of the model file whose first pass found them

    def __len__(self) -> int:
        return len(self.names)

    def save(self, path: str | Path) -> Path:
        """Write to an .npz file (atomically)."""
        with atomic_write(path) as fh:
            np.savez_compressed(fh, crops=self.crops, weights=self.weights,
                                names=np.array(self.names), model=np.array(self.model))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> RealFrames:
        with np.load(path, allow_pickle=False) as f:
            return cls(f["crops"], f["weights"].astype(np.float32), tuple(str(n) for n in f["names"]),
                       str(f["model"]))


def paste_frame(face: np.ndarray, donor: np.ndarray, weight: np.ndarray,
                flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(A, mask): the (H, W, 3) uint8 crop ``face`` with the donor crop's frame pasted on by
    ``weight`` (mirrored left to right when ``flip``), and the (H, W) uint8 0-255 mask of the
    paste. Pixels where the weight is 0 stay bit-identical to ``face``."""
    if flip:
        donor, weight = donor[:, ::-1], weight[:, ::-1]
    w = weight[..., None]
    pasted = np.rint(face * (1 - w) + donor * w).astype(np.uint8)
    a = np.where(w > 0, pasted, face)
    mask = np.clip(np.ceil(weight * 255 - 1e-3), 0, 255).astype(np.uint8)
    return a, mask
