"""Lens outlines completed from a removal model's faint first pass: the curve follows a faint
closed outline around each eye, adds nothing where nothing is marked, never takes the eye
openings, and only runs in crops whose hole already holds a frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from eyeedit.editing import lenses

H, W = 128, 256
EYES = np.array([[84.0, 64.0], [172.0, 64.0]])


def _outline(center: np.ndarray, axes: tuple[int, int] = (34, 22)) -> np.ndarray:
    """(H, W) uint8 {0, 1}: a 1 px ellipse, as a rimless lens edge around an eye."""
    out = np.zeros((H, W), np.uint8)
    cv2.ellipse(out, (int(center[0]), int(center[1]) + 4), axes, 0, 0, 360, 1, 1)
    return out


def _faint_lenses(level: float = 0.2, gap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A first pass that half-sees two lens edges (alpha ``level``, the top of one missing) over
    speckle, and the true edges."""
    edges = np.maximum(_outline(EYES[0]), _outline(EYES[1]))
    seen = edges.copy()
    if gap:
        seen[:52, 40:130] = 0  # the top of the right lens is not seen at all
    speckle = np.random.default_rng(0).uniform(0, 0.004, (H, W)).astype(np.float32)
    return np.maximum(speckle, level * seen.astype(np.float32)), edges


def _near(mask: np.ndarray, other: np.ndarray, px: int) -> np.ndarray:
    """Where ``mask`` lies within ``px`` pixels of ``other``."""
    grown = cv2.dilate(other, np.ones((2 * px + 1, 2 * px + 1), np.uint8))
    return (mask > 0) & (grown > 0)


def test_the_curve_follows_a_faint_lens_edge_around_each_eye():
    found, edges = _faint_lenses()
    ring = lenses.lens_rings(found, EYES)
    assert ring.dtype == np.float32 and set(np.unique(ring)) == {0.0, 1.0}
    on_edge = _near(ring, edges, 2).sum() / (ring > 0).sum()
    assert on_edge > 0.95, on_edge  # the curve lies on the outline, not across the face
    seen_edges = (found > 0.01) & (edges > 0)
    covered = _near(seen_edges.astype(np.uint8), ring.astype(np.uint8), 1).sum() / seen_edges.sum()
    assert covered > 0.9, covered  # and takes nearly all of what the first pass marked
    # Where the first pass saw nothing (the gap), nothing is erased.
    assert not ring[:48, 40:130].any()


def test_nothing_marked_means_no_curve():
    speckle = np.random.default_rng(1).uniform(0, 0.004, (H, W)).astype(np.float32)
    assert not lenses.lens_rings(speckle, EYES).any()
    assert not lenses.lens_rings(np.zeros((H, W), np.float32), EYES).any()


def test_eye_openings_are_never_part_of_the_curve():
    found, _ = _faint_lenses(gap=False)
    keep_out = np.zeros((H, W), bool)
    keep_out[:, :W // 2] = True  # e.g. a grown eye opening, here half the crop
    ring = lenses.lens_rings(found, EYES, keep_out)
    assert not ring[keep_out].any() and ring[:, W // 2:].any()


@pytest.mark.parametrize("share", [0.0, 0.02])
def test_a_crop_without_a_frame_in_its_hole_keeps_its_hole(share):
    # On a face without glasses the hole is a few specks: no outline is looked for, even where
    # the first pass faintly marks lens-like curves (lids, the cheek's outline).
    found, _ = _faint_lenses(gap=False)
    hole = np.zeros((H, W), np.float32)
    hole.flat[:int(share * H * W)] = 1
    assert np.array_equal(lenses.hole_with_rings(found, hole, EYES), hole)


def test_a_frame_s_hole_gains_the_outline_and_keeps_what_it_had():
    found, edges = _faint_lenses(gap=False)
    hole = np.zeros((H, W), np.float32)
    hole[56:64, 110:146] = 1  # the bridge, found surely: 1% of the crop ...
    hole[20:30, 0:110] = 1  # ... and the top bar: over the share that says "a frame"
    assert hole.mean() >= lenses.RING_HOLE_SHARE
    grown = lenses.hole_with_rings(found, hole, EYES)
    assert grown.dtype == hole.dtype and np.all(grown >= hole)
    added = (grown > hole)
    assert added.sum() > 300 and _near(added.astype(np.uint8), edges, 2).sum() / added.sum() > 0.95
