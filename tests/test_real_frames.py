"""Real frames for removal pairs: the paste keeps every pixel it does not cover, the frame weight
leaves eyes, brows and specks out, synth writes pasted pairs and the donors are never plain
faces, and the shipped removal model's first pass finds a frame on a photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import shared_faces

from eyeedit.cli.main import cli
from eyeedit.data.effects import glasses
from eyeedit.data.loader import load_pairs
from eyeedit.data.pairs import load_info, read_manifest
from eyeedit.data.real_frames import RealFrames, paste_frame
from eyeedit.data.synth import Photo, SynthConfig, default_region, render_pairs, variant_rng
from eyeedit.editing.frames import find_frames, frame_weight
from eyeedit.geometry import fit_crop_from_image, warp_to_crop
from eyeedit.imageio import write_image

ROOT = Path(__file__).resolve().parents[1]


def _frames(n: int = 2) -> RealFrames:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (n, 128, 256, 3), dtype=np.uint8)
    weights = np.zeros((n, 128, 256), np.float32)
    weights[:, 40:50, 20:120] = 1.0
    weights[:, 39, 20:120] = 0.4  # a soft edge
    return RealFrames(crops, weights, tuple(f"donor{i}.jpg" for i in range(n)), "ab" * 32)


def test_paste_keeps_every_pixel_it_does_not_cover():
    frames = _frames(1)
    face = np.full((128, 256, 3), 90, np.uint8)
    a, mask = paste_frame(face, frames.crops[0], frames.weights[0])
    covered = frames.weights[0] > 0
    assert np.array_equal(a[~covered], face[~covered])
    assert np.array_equal(a[45, 30], frames.crops[0][45, 30])  # weight 1: the donor's pixel
    assert (mask[covered] > 0).all() and (mask[~covered] == 0).all() and mask.dtype == np.uint8
    flipped, flipped_mask = paste_frame(face, frames.crops[0], frames.weights[0], flip=True)
    assert np.array_equal(flipped_mask, mask[:, ::-1])
    assert np.array_equal(flipped[45, 255 - 30], frames.crops[0][45, 30])


def test_frame_weight_leaves_out_eyes_brows_and_specks():
    found = np.zeros((128, 256), np.float32)
    found[40:46, 20:200] = 0.9  # a rim
    found[46:50, 20:200] = 0.3  # fainter frame joined to it: kept
    found[100:103, 10:13] = 0.9  # a speck: left out
    found[80:84, 150:190] = 0.3  # faint and alone: left out
    keep_out = np.zeros((128, 256), bool)
    keep_out[30:60, 100:120] = True  # an eye opening or a brow
    weight = frame_weight(found, keep_out)
    assert weight[42, 50] == 1.0 and weight[48, 50] == 1.0
    assert weight[45, 110] == 0.0 and weight[101, 11] == 0.0 and weight[82, 170] == 0.0
    assert 0.0 < weight[38, 50] < 1.0  # a softened edge
    assert weight.min() >= 0.0 and weight.max() <= 1.0


def test_real_frames_round_trip(tmp_path):
    frames = _frames()
    loaded = RealFrames.load(frames.save(tmp_path / "frames.npz"))
    assert np.array_equal(loaded.crops, frames.crops) and np.array_equal(loaded.weights, frames.weights)
    assert loaded.names == frames.names and loaded.model == frames.model


FRAMED = glasses.GlassesParams(
    style="rectangular", material="plastic", rim_color="#141414", rim_width=0.04, lens_width=0.42,
    lens_height=0.27, bridge_gap=0.28, lens_drop=0.05, lens_tint="#c8d2dc", lens_alpha=0.03,
    lens_power=1.0, reflection=0.2, reflection_angle=40.0, shadow=0.2)


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory, astronaut, astronaut_face):
    """plain.png (the astronaut) and framed.png (the astronaut with drawn glasses, a donor)."""
    root = tmp_path_factory.mktemp("faces")
    write_image(root / "plain.png", astronaut)
    write_image(root / "framed.png", glasses.render(astronaut, astronaut_face, FRAMED).image)
    return root


def test_synth_pairs_with_real_frames(astronaut, astronaut_face):
    config = SynthConfig(effect="glasses", region=default_region("glasses"), variants=1, reverse=True,
                         real_frames=2, frame_donors=("donor0.jpg",), seed=3)
    frames = _frames(3)
    pairs = render_pairs(astronaut, astronaut_face, Photo("a", "a", Path("a.png")), config, frames)
    assert [p.record["key"] for p in pairs] == ["a__v0", "a__v1", "a__v2"]
    for v, pair in enumerate(pairs[1:], start=1):
        rng = variant_rng(3, "a", v)
        donor, flip = int(rng.integers(3)), bool(rng.random() < 0.5)
        assert pair.record["params"] == {"real_frame": f"donor{donor}.jpg", "flip": flip}
        assert np.array_equal(pair.b, pairs[0].b)  # B: the face's own crop
        untouched = pair.mask == 0
        assert np.array_equal(pair.a[untouched], pair.b[untouched]) and (pair.a != pair.b).any()
        assert pair.record["touched_pixels"] == int((pair.mask > 0).sum())


@pytest.mark.parametrize("kwargs", [dict(reverse=False, frame_donors=("x.jpg",)),
                                    dict(reverse=True, frame_donors=()),
                                    dict(effect="makeup", reverse=True, frame_donors=("x.jpg",))])
def test_real_frames_need_a_glasses_removal_dataset_and_donors(kwargs):
    with pytest.raises(ValueError, match="--real-frames"):
        SynthConfig(**{"effect": "glasses", "real_frames": 1, **kwargs})


def test_synth_cli_pastes_frames_found_by_the_removal_model(faces_dir, tmp_path):
    donors = tmp_path / "donors.txt"
    donors.write_text("# who wears glasses\nframed.png\n")
    out = tmp_path / "pairs"
    res = CliRunner().invoke(cli, ["synth", str(faces_dir), str(out), "--effect", "glasses", "--reverse",
                                   "--real-frames", "1", "--frame-donors", str(donors), "--val-fraction", "0",
                                   "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "1 real frames found on 1 donor photos" in res.output
    keys = {r["key"] for r in read_manifest(out)}
    assert keys == {"plain__v0", "plain__v1"}  # the donor is never a plain face
    info = load_info(out)
    assert info["real_frames"] == 1 and len(info["frame_model"]) == 64
    pasted = [r for r in read_manifest(out) if r["key"] == "plain__v1"][0]
    assert pasted["params"]["real_frame"] == "framed.png" and pasted["touched_pixels"] > 200
    data = load_pairs(out)
    assert len(data.train) == 2 and data.train.mask is not None


def test_synth_cli_refuses_real_frames_without_donors_or_a_fill_model(faces_dir, tmp_path):
    res = CliRunner().invoke(cli, ["synth", str(faces_dir), str(tmp_path / "o"), "--effect", "glasses",
                                   "--reverse", "--real-frames", "1"])
    assert res.exit_code == 2 and "--frame-donors" in res.output and not (tmp_path / "o").exists()
    donors = tmp_path / "donors.txt"
    donors.write_text("framed.png\n")
    res = CliRunner().invoke(cli, ["synth", str(faces_dir), str(tmp_path / "o"), "--effect", "glasses",
                                   "--reverse", "--real-frames", "1", "--frame-donors", str(donors),
                                   "--frame-model", "glasses"])
    assert res.exit_code == 2 and "not a fill generator" in res.output and not (tmp_path / "o").exists()
    for extra in (["--frame-donors", str(donors)], ["--frame-model", "no-glasses"]):  # no --real-frames
        res = CliRunner().invoke(cli, ["synth", str(faces_dir), str(tmp_path / "o"), "--effect", "glasses", *extra])
        assert res.exit_code == 2 and "used only with --real-frames" in res.output and not (tmp_path / "o").exists()


def test_the_first_pass_finds_most_of_a_drawn_frame(faces_dir, astronaut, astronaut_face):
    told = {}
    found = find_frames([faces_dir / "framed.png", faces_dir / "plain.png"],
                        on_photo=lambda p, e: told.setdefault(p.name, e))
    assert told["framed.png"] == "" and found.names[0] == "framed.png" and len(found.model) == 64
    assert found.crops.shape[1:] == (128, 256, 3) and found.weights.shape[1:] == (128, 256)
    spec = default_region("glasses")
    rim = glasses.frame_layers(astronaut.shape, astronaut_face, FRAMED)["rim"]
    rim = warp_to_crop(rim, fit_crop_from_image(astronaut_face.eye_corners, spec), spec.size) > 0.5
    assert found.weights[0][rim].mean() > 0.5  # most of the drawn rims
    # On the same face without them it finds nothing, or far less (a line it half-sees).
    if told["plain.png"]:
        assert told["plain.png"] == "no frame found" and found.names == ("framed.png",)
    else:
        assert found.weights[0].sum() > 2 * found.weights[1].sum()


@pytest.mark.faces
def test_frame_donors_wear_glasses_and_are_not_held_out():
    from eyeedit.data.portraits import is_held_out, labelled_portraits, read_holdout

    donors = {line.strip() for line in (ROOT / "pipelines/frame-donors.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    portraits = {p.path.name: p for p in labelled_portraits(shared_faces())}
    held = {p.person for p in portraits.values() if is_held_out(p, read_holdout(ROOT / "pipelines/holdout.txt"))}
    assert donors and all(portraits[n].glasses for n in donors)
    assert not {portraits[n].person for n in donors} & held
    # every wearer who is not held out lends a frame
    assert donors == {n for n, p in portraits.items() if p.glasses and p.person not in held}

