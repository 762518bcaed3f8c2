"""Lens outlines completed from a removal model's faint first pass: the curve follows a faint
closed outline around each eye, adds nothing where nothing is marked, never takes the eye
openings, and only runs in crops whose hole already holds a frame; where the first pass saw
nothing, the photo's thin lines below the eyes complete it; the editor hands the grown hole to
the fill pass."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from eyeedit.editing import lenses
from eyeedit.editing.blending import eye_mask, grow_mask
from eyeedit.editing.editor import EditOptions, Editor
from eyeedit.geometry import eye_openings, template_points, transform_points
from eyeedit.regions import region_spec

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


def _photo_with_edges(edges: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: skin with grain, and ``edges`` as a thin bright line (a lens edge
    catching the light)."""
    grain = np.random.default_rng(2).normal(0, 3, (H, W, 1))
    skin = np.array([200.0, 160.0, 140.0]) + grain + 30.0 * cv2.GaussianBlur(edges.astype(np.float32), (0, 0), 0.7)[..., None]
    return np.clip(np.rint(skin), 0, 255).astype(np.uint8)


def test_thin_lines_below_the_eyes_count_and_nothing_above_or_at_the_eyes():
    edges = np.maximum(_outline(EYES[0]), _outline(EYES[1]))
    lines = lenses.crop_lines(_photo_with_edges(edges), EYES)
    assert lines.dtype == np.float32 and lines.shape == (H, W) and 0 <= lines.min() and lines.max() <= 1
    below = (edges > 0) & (np.arange(H)[:, None] > EYES[0, 1] + 10)
    assert np.median(lines[below]) > lenses.LINE_FLOOR  # the lower edges stand out
    assert np.median(lines[(edges == 0) & ~_near(np.ones((H, W)), edges, 3)]) < lenses.LINE_FLOOR / 3
    assert not lines[: int(EYES[0, 1]) - 6].any()  # above the eyes: brows, left to the first pass
    keep_out = np.zeros((H, W), bool)
    keep_out[60:70, 70:100] = True  # an eye opening: lines near it are the lids'
    assert not lenses.crop_lines(_photo_with_edges(edges), EYES, keep_out)[57:73, 67:103].any()


def test_a_faint_line_on_a_flat_crop_is_not_a_strong_one():
    # Without skin grain the crop's median line strength is 0: a line 2 levels above a flat
    # crop must still read as faint, not as the strongest line there could be.
    edges = np.maximum(_outline(EYES[0]), _outline(EYES[1]))
    flat = np.full((H, W, 3), (200, 160, 140), np.float32) + 2.0 * edges[..., None]
    lines = lenses.crop_lines(flat.astype(np.uint8), EYES)
    assert lines.max() < lenses.LINE_FLOOR
    assert not lenses.crop_lines(np.full((H, W, 3), 128, np.uint8), EYES).any()


def test_lines_complete_the_lower_edges_the_first_pass_missed():
    edges = np.maximum(_outline(EYES[0]), _outline(EYES[1]))
    found = 0.3 * edges.astype(np.float32)
    found[int(EYES[0, 1]) + 4:] = 0  # the first pass sees the upper halves only
    lines = lenses.crop_lines(_photo_with_edges(edges), EYES)
    lower = (edges > 0) & (np.arange(H)[:, None] > EYES[0, 1] + 12)
    without = lenses.lens_rings(found, EYES)
    with_lines = lenses.lens_rings(found, EYES, lines=lines)
    assert _near(without, lower.astype(np.uint8), 1).sum() < 0.1 * lower.sum()
    taken = _near(lower.astype(np.uint8), with_lines.astype(np.uint8), 1).sum() / lower.sum()
    assert taken > 0.9, taken
    assert _near(with_lines, edges, 2).sum() / (with_lines > 0).sum() > 0.95  # on the outline only
    # Lines alone, with nothing from the first pass, erase nothing.
    assert not lenses.lens_rings(np.zeros((H, W), np.float32), EYES, lines=lines).any()


class RingFill:
    """A fill generator's translator whose first pass half-sees two lens outlines around the
    template's eyes and is sure of a top bar; it records the holes it is asked to fill."""

    fills = True

    def __init__(self, spec):
        corners = template_points(spec)
        self.eyes = np.stack([corners[0:2].mean(0), corners[2:4].mean(0)])
        self.filled = []

    def find_hole(self, crops):
        n, h, w = crops.shape[:3]
        found = np.zeros((n, h, w), np.float32)
        for c in self.eyes:  # a small lens: its outline runs through the eye corners
            cv2.ellipse(found[0], (int(c[0]), int(c[1])), (24, 15), 0, 0, 360, 0.2, 1)
        hole = np.zeros((n, h, w), np.float32)
        hole[:, 20:34, :] = 1  # the bar across the top: a frame's hole (11% of the crop)
        return found, hole

    def with_hole(self, crops, holes=None):
        self.filled.append(holes.copy())
        return crops.copy(), None, holes


def test_the_editor_adds_the_outlines_to_a_frame_s_hole_and_never_erases_the_eyes(astronaut):
    spec = region_spec("glasses")
    fake = RingFill(spec)
    res = Editor(fake, spec, EditOptions(max_faces=1)).run(astronaut)
    (hole,) = fake.filled[-1]
    edit = res.faces[0]
    assert np.array_equal(edit.hole, hole) and not edit.reused_hole
    assert hole[20:34].all()  # the first pass's hole is kept
    found = fake.find_hole(edit.crop_in[None])[0][0]
    added = hole > 0.5
    added[20:34] = False
    assert added.sum() > 300  # the outlines, both eyes
    on_outline = _near(added.astype(np.uint8), (found > 0).astype(np.uint8), 3).sum() / added.sum()
    assert on_outline > 0.9, on_outline
    eyes = grow_mask(eye_mask(transform_points(edit.crop_from_image, edit.face.points), spec.size), 2) > 0.5
    template = eye_openings(spec) > 0.5
    assert not hole[eyes].any() and not hole[template].any()
    # ... where the outline alone would have taken them
    iris = transform_points(edit.crop_from_image, edit.face.iris_centers)
    assert lenses.lens_rings(found, iris)[eyes | template].sum() > 20
