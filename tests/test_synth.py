"""`eyeedit synth`: pixel-aligned pairs, recorded parameters, seeds, variants, reverse, splits,
skips and exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from eyeedit.cli.main import cli
from eyeedit.data.effects import EFFECTS, glasses
from eyeedit.data.effects.base import TypicalDraws
from eyeedit.data.loader import load_pairs
from eyeedit.data.pairs import load_info, read_manifest
from eyeedit.data.samples import sample_images
from eyeedit.data.synth import (
    Photo,
    SynthConfig,
    default_region,
    drawn_color,
    render_pairs,
    split_of,
    variant_rng,
)
from eyeedit.geometry import fit_crop_from_image, warp_to_crop
from eyeedit.imageio import read_image, write_image
from eyeedit.landmarks import detect_faces


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory, astronaut):
    """alice.png (the astronaut's head 2x), bob.png (mirrored), and a photo without a face."""
    root = tmp_path_factory.mktemp("faces")
    head = cv2.resize(astronaut[20:240, 110:340], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    write_image(root / "alice.png", head)
    write_image(root / "bob.png", np.ascontiguousarray(head[:, ::-1]))
    write_image(root / "rocket.png", sample_images()["no-face"])
    return root


def _synth(*args: str):
    return CliRunner().invoke(cli, ["synth", *map(str, args), "--workers", "1"])


def test_command_choices_come_from_the_library():
    from eyeedit.cli.synth import synth

    choices = {p.name: list(p.type.choices) for p in synth.params if hasattr(p.type, "choices")}
    assert choices["effect"] == list(EFFECTS) and choices["style"] == list(glasses.STYLES)


def test_synth_writes_a_dataset_with_params_and_skips(faces_dir, tmp_path):
    out = tmp_path / "pairs"
    res = _synth(faces_dir, out, "--effect", "glasses", "--variants", "2", "--seed", "7")
    assert res.exit_code == 0, res.output
    assert "rocket.png: no face found" in res.output
    info = load_info(out)
    assert info["region"]["name"] == "glasses" and info["size"] == [256, 128]
    assert info["effect"] == "glasses" and info["variants"] == 2 and info["seed"] == 7
    assert info["statuses"] == {"ok": 4, "no-face": 1}
    records = {r["key"]: r for r in read_manifest(out)}
    assert set(records) == {"alice__v0", "alice__v1", "bob__v0", "bob__v1", "rocket"}
    for key in ("alice__v0", "alice__v1", "bob__v0", "bob__v1"):
        rec = records[key]
        assert rec["status"] == "ok" and rec["params"]["style"] in glasses.STYLES
        a = read_image(out / rec["split"] / "A" / f"{key}.png")
        b = read_image(out / rec["split"] / "B" / f"{key}.png")
        assert a.shape == b.shape == (128, 256, 3) and not np.array_equal(a, b)
    assert records["alice__v0"]["params"] != records["alice__v1"]["params"]  # variants differ
    # Variants of one person share a split.
    assert records["alice__v0"]["split"] == records["alice__v1"]["split"] == split_of("alice", 0.1)
    assert "ok" in res.output and "no-face" in res.output  # the status table
    assert info["color"] is None and drawn_color(info) is None  # random frames: no one colour


def test_a_pinned_frame_colour_is_recorded_for_the_editor(faces_dir, tmp_path):
    out = tmp_path / "pairs"
    res = _synth(faces_dir, out, "--effect", "glasses", "--color", "black", "--material", "plastic")
    assert res.exit_code == 0, res.output
    info = load_info(out)
    assert (info["color"], info["material"], info["tint"]) == ("black", "plastic", None)
    summary = load_pairs(out).summary()
    assert drawn_color(info) == "#141414" == summary["frame_color"]
    # ... with the shadow its frames cast, which the editor casts from the model's frame.
    typical = glasses.sample_params(TypicalDraws(), None)
    assert summary["frame_shadow"] == glasses.typical_shadow() == {
        "strength": typical.shadow, "angle": typical.shadow_angle, "offset": typical.shadow_offset,
        "softness": glasses.SHADOW_SOFTNESS}
    # Only frames of one colour, drawn on (not removed), have it.
    assert drawn_color({**info, "reverse": True}) is None
    assert drawn_color({**info, "material": "tortoiseshell"}) is None
    assert drawn_color({**info, "effect": "eye-color"}) is None
    assert glasses.frame_color("#123456") == "#123456" and glasses.frame_color(None) is None


def test_same_seed_same_files_other_seed_other_params(faces_dir, tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert _synth(faces_dir / "alice.png", tmp_path / name, "--effect", "makeup", "--seed", seed).exit_code == 0
    files = [tmp_path / n / "train" / "B" / "alice__v0.png" for n in "abc"]
    assert files[0].read_bytes() == files[1].read_bytes()
    params = [read_manifest(tmp_path / n)[0]["params"] for n in "abc"]
    assert params[0] == params[1] != params[2]


@pytest.fixture(scope="module")
def alice(faces_dir):
    image = read_image(faces_dir / "alice.png")
    return image, detect_faces(image, max_faces=1)[0]


ALICE = Photo("alice", "alice", Path("alice.png"))


@pytest.mark.parametrize("effect", list(EFFECTS))
def test_a_and_b_are_pixel_aligned_outside_the_edit(effect, alice):
    image, face = alice
    config = SynthConfig(effect=effect, region=default_region(effect), seed=3)
    pair = render_pairs(image, face, ALICE, config)[0]
    matrix = fit_crop_from_image(face.eye_corners, config.region)
    assert np.allclose(pair.record["crop_from_image"], matrix, atol=1e-5)
    # Re-render from the recorded parameters: the manifest alone reproduces the edit.
    params = type(EFFECTS[effect].sample(variant_rng(3, "alice", 0), face, config.pins))(**pair.record["params"])
    rendered = EFFECTS[effect].render(image, face, params)
    # Bilinear resampling spreads a touched pixel over its crop neighbours, hence the > 0.
    touched = warp_to_crop(rendered.mask.astype(np.float32), matrix, config.region.size) > 0
    differs = (pair.a != pair.b).any(axis=2)
    assert differs.any() and not (differs & ~touched).any()
    assert np.array_equal(pair.a, warp_to_crop(image, matrix, config.region.size))  # A = original
    assert np.array_equal(pair.b, warp_to_crop(rendered.image, matrix, config.region.size))


def test_reverse_swaps_a_and_b(alice):
    image, face = alice
    plain = render_pairs(image, face, ALICE, SynthConfig(effect="eye-color", seed=5))[0]
    swapped = render_pairs(image, face, ALICE, SynthConfig(effect="eye-color", seed=5, reverse=True))[0]
    assert np.array_equal(plain.a, swapped.b) and np.array_equal(plain.b, swapped.a)
    assert plain.record["a"] == "original" and swapped.record["a"] == "edited"


def test_variants_and_pins(alice):
    image, face = alice
    config = SynthConfig(effect="glasses", region=default_region("glasses"), variants=3, style="aviator")
    pairs = render_pairs(image, face, ALICE, config)
    assert [p.record["key"] for p in pairs] == ["alice__v0", "alice__v1", "alice__v2"]
    assert {p.record["params"]["style"] for p in pairs} == {"aviator"}
    assert len({json.dumps(p.record["params"], sort_keys=True) for p in pairs}) == 3
    colored = render_pairs(image, face, ALICE, SynthConfig(effect="eye-color", color="#2e8b57"))
    assert colored[0].record["params"]["color"] == "#2e8b57"


def test_plain_pairs_show_the_face_unchanged_with_an_empty_mask(alice):
    image, face = alice
    config = SynthConfig(effect="glasses", region=default_region("glasses"), variants=2, plain_pairs=1,
                         reverse=True, seed=4)
    pairs = render_pairs(image, face, ALICE, config)
    assert [p.record["key"] for p in pairs] == ["alice__v0", "alice__v1", "alice__v2"]
    drawn, plain = pairs[0], pairs[2]
    assert (drawn.a != drawn.b).any() and drawn.mask.max() > 0
    assert np.array_equal(plain.a, plain.b) and np.array_equal(plain.b, drawn.b)  # the photo's crop
    assert plain.mask.shape == plain.a.shape[:2] and plain.mask.max() == 0
    assert plain.record["params"] == {"plain": True} and plain.record["touched_pixels"] == 0
    # The drawn variants are the ones a run without plain pairs makes.
    alone = render_pairs(image, face, ALICE, SynthConfig(effect="glasses", region=default_region("glasses"),
                                                         variants=2, reverse=True, seed=4))
    assert all(np.array_equal(p.a, q.a) for p, q in zip(pairs, alone))


def test_plain_pairs_are_written_and_loaded_like_the_others(faces_dir, tmp_path):
    out = tmp_path / "pairs"
    result = _synth(faces_dir, out, "--effect", "glasses", "--reverse", "--plain-pairs", "1", "--val-fraction", "0")
    assert result.exit_code == 0, result.output
    assert load_info(out)["plain_pairs"] == 1
    records = [r for r in read_manifest(out) if r["status"] == "ok"]
    plain = [r for r in records if r["params"] == {"plain": True}]
    assert len(plain) == 2 and len(records) == 4  # alice and bob: one drawn, one plain each
    for r in plain:
        a, b = (read_image(out / "train" / side / f"{r['key']}.png") for side in ("A", "B"))
        assert np.array_equal(a, b)
        assert cv2.imread(str(out / r["mask"]), cv2.IMREAD_UNCHANGED).max() == 0
    again = _synth(faces_dir, out, "--effect", "glasses", "--reverse", "--plain-pairs", "1", "--val-fraction", "0")
    assert again.exit_code == 0 and "0 photos to go" in again.output


def test_resume_skips_finished_photos_and_other_options_are_refused(faces_dir, tmp_path):
    out = tmp_path / "pairs"
    assert _synth(faces_dir, out, "--effect", "makeup").exit_code == 0
    before = (out / "manifest.jsonl").read_text()
    again = _synth(faces_dir, out, "--effect", "makeup")
    assert again.exit_code == 0 and "0 photos to go" in again.output
    assert (out / "manifest.jsonl").read_text() == before
    other = _synth(faces_dir, out, "--effect", "makeup", "--seed", "9")
    assert other.exit_code == 2 and "--overwrite" in other.output
    assert "seed: 0 -> 9" in " ".join(other.output.split())  # what differs is named


def test_no_pair_at_all_exits_1(faces_dir, tmp_path):
    res = _synth(faces_dir / "rocket.png", tmp_path / "out", "--effect", "glasses")
    assert res.exit_code == 1 and "no pair could be synthesized" in res.output
    assert "rocket.png: no face found" in res.output


def test_small_faces_are_skipped_with_a_reason(faces_dir, tmp_path):
    res = _synth(faces_dir / "alice.png", tmp_path / "out", "--effect", "makeup",
                 "--min-eye-distance", "500")
    assert res.exit_code == 1 and re.search(r"alice.png: eyes \d+ px apart \(minimum 500\)", res.output)
    assert read_manifest(tmp_path / "out")[0]["status"] == "face-too-small"


@pytest.mark.parametrize("args, message", [
    (["--effect", "makeup", "--style", "round"], "--style only applies to --effect glasses"),
    (["--effect", "makeup", "--color", "blue"], "unknown eyeshadow colour 'blue'"),
    (["--effect", "glasses", "--liner", "black"], "--liner only applies to --effect makeup"),
    (["--effect", "makeup", "--tint", "grey"], "--tint only applies to --effect glasses"),
    (["--effect", "glasses", "--color", "plaid"], "unknown frame colour 'plaid'"),
    (["--effect", "glasses", "--tint", "purple"], "unknown lens tint 'purple'"),
    (["--effect", "eye-color", "--color", "purple-ish"], "neither one of blue"),
    (["--effect", "sparkles"], "'sparkles' is not one of"),
    (["--effect", "glasses", "--size", "big"], "WIDTHxHEIGHT"),
    (["--effect", "glasses", "--variants", "0"], "--variants"),
    (["--effect", "glasses", "--variants", "2", "--no-variation"], "--variants must be 1"),
])
def test_bad_options_are_usage_errors(faces_dir, tmp_path, args, message):
    res = _synth(faces_dir, tmp_path / "out", *args)
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "out").exists()  # nothing written


def test_bad_folders_are_usage_errors(faces_dir, tmp_path):
    res = _synth(tmp_path / "missing", tmp_path / "out", "--effect", "glasses")
    assert res.exit_code == 2 and "does not exist" in res.output
    res = _synth(faces_dir, faces_dir / "pairs", "--effect", "glasses")
    assert res.exit_code == 2 and "must not be inside the input folder" in res.output
    assert not (faces_dir / "pairs").exists()
    (tmp_path / "empty").mkdir()
    res = _synth(tmp_path / "empty", tmp_path / "out", "--effect", "glasses")
    assert res.exit_code == 2 and "no images found" in res.output


def test_help_documents_the_options():
    res = CliRunner().invoke(cli, ["synth", "--help"])
    assert res.exit_code == 0
    for word in ("--effect", "--reverse", "--variants", "--seed", "--style", "--color", "eye-color"):
        assert word in res.output


def test_exclusion_lists(tmp_path):
    from eyeedit.data.pairs import InputError
    from eyeedit.data.synth import find_inputs, read_exclusions

    (tmp_path / "labels.csv").write_text("file,glasses\na.png,1\nb.png,0\nc.png,?\n")
    (tmp_path / "names.txt").write_text("b.png\n\n")
    assert read_exclusions(f"{tmp_path / 'labels.csv'}:glasses=1,?") == ("a.png", "c.png")
    assert read_exclusions(str(tmp_path / "names.txt")) == ("b.png",)
    with pytest.raises(InputError, match="no column 'lens'"):
        read_exclusions(f"{tmp_path / 'labels.csv'}:lens=1")
    with pytest.raises(InputError, match="cannot read"):
        read_exclusions(str(tmp_path / "missing.csv"))
    faces = tmp_path / "faces"
    for name in ("a.png", "b.png", "c.png"):
        write_image(faces / name, np.zeros((8, 8, 3), np.uint8))
    kept = [p.path.name for p in find_inputs(faces, ("a.png", "c.png"))]
    assert kept == ["b.png"]


def test_glasses_pins_give_one_look(alice):
    image, face = alice
    config = SynthConfig(effect="glasses", region=default_region("glasses"), variants=3, style="rectangular",
                         material="plastic", color="black", tint="clear")
    params = [p.record["params"] for p in render_pairs(image, face, ALICE, config)]
    assert {(p["style"], p["material"], p["rim_color"], p["lens_tint"]) for p in params} == {
        ("rectangular", "plastic", "#141414", "#c8d2dc")}
    hexed = render_pairs(image, face, ALICE, SynthConfig(effect="glasses", region=default_region("glasses"),
                                                         color="#aa0000", tint="blue"))
    assert hexed[0].record["params"]["rim_color"] == "#aa0000"
    assert hexed[0].record["params"]["lens_tint"] == "#2c4a6e"


def test_makeup_pins(alice):
    image, face = alice
    config = SynthConfig(effect="makeup", variants=2, color="plum", liner="#101010")
    params = [p.record["params"] for p in render_pairs(image, face, ALICE, config)]
    assert {(p["shadow_color"], p["liner_color"]) for p in params} == {("#6e3c5a", "#101010")}


@pytest.mark.parametrize("effect", list(EFFECTS))
def test_no_variation_gives_the_same_look_whatever_the_seed(effect, alice):
    image, face = alice
    region = default_region(effect)
    steady = [render_pairs(image, face, ALICE, SynthConfig(effect=effect, region=region, seed=s,
                                                           variation=False))[0] for s in (1, 2)]
    assert steady[0].record["params"] == steady[1].record["params"]
    assert np.array_equal(steady[0].b, steady[1].b)
    varied = render_pairs(image, face, ALICE, SynthConfig(effect=effect, region=region, seed=1))[0]
    assert varied.record["params"] != steady[0].record["params"]
    assert not np.array_equal(steady[0].a, steady[0].b)  # the effect is still drawn


def test_no_variation_puts_ranges_at_their_middle(alice):
    image, face = alice
    config = SynthConfig(effect="glasses", region=default_region("glasses"), style="rectangular",
                         material="plastic", variation=False)
    params = render_pairs(image, face, ALICE, config)[0].record["params"]
    assert params["lens_width"] == pytest.approx((0.38 + 0.45) / 2)
    assert params["rim_width"] == pytest.approx(0.04) and params["lens_power"] == 1.0


def test_a_resumed_run_removes_what_a_killed_one_left_half_written(faces_dir, tmp_path):
    out = tmp_path / "pairs"
    assert _synth(faces_dir, out, "--effect", "eye-color").exit_code == 0
    finished = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # a kill while dataset.json or a crop was being written leaves their temp files behind
    (out / ".dataset.json.k1.tmp").write_text("{")
    next(out.rglob("*.png")).with_name(".x.png.k2.tmp").write_bytes(b"")
    assert _synth(faces_dir, out, "--effect", "eye-color").exit_code == 0
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == finished
