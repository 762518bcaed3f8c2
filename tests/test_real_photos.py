"""`eyeedit eval MODEL --real DIR`: figures on real photos, on a fixture the tests make."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from eyeedit.cli.main import cli
from eyeedit.data.samples import sample_images
from eyeedit.editing.editor import Editor
from eyeedit.imageio import read_image, write_image
from eyeedit.model.judge import Judge, JudgeConfig, JudgeNet, save_judge
from eyeedit.model.networks import GeneratorConfig, build_generator
from eyeedit.model.weights import save_generator
from eyeedit.regions import region_spec
from eyeedit.training.real_photos import (
    ADDING,
    OTHER,
    REMOVAL,
    distinct_files,
    effect_kind,
    measure_photo,
)

SPEC = region_spec("glasses", (64, 32))


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    """Three astronaut photos with a face (one in a subfolder), one without, one unreadable."""
    root = tmp_path_factory.mktemp("real")
    samples = sample_images()
    write_image(root / "astronaut.png", samples["astronaut"])
    write_image(root / "more" / "astronaut-flip.jpg", samples["astronaut-flip"])
    write_image(root / "astronaut-small.png", samples["astronaut-small"])
    write_image(root / "no-face.png", samples["no-face"])
    (root / "bad.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A tiny random removal model and a tiny random judge."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    cfg = GeneratorConfig(ngf=4, depth=5)
    meta = {"effect": "no-glasses", "generator": cfg.to_dict(), "region": SPEC.to_dict()}
    model = save_generator(root / "no-glasses.safetensors", build_generator(cfg).eval(), meta)
    jcfg = JudgeConfig(width=32, height=16, channels=(4, 8))
    judge = save_judge(root / "judge.safetensors", JudgeNet(jcfg).eval(), jcfg, SPEC, 0.5, {})
    return model, judge


def test_effect_kind_from_metadata():
    assert effect_kind({"effect": "no-glasses"}) == REMOVAL
    assert effect_kind({"effect": "clear-lens", "description": "remove eyeglasses"}) == REMOVAL
    assert effect_kind({"effect": "glasses", "description": "add eyeglasses"}) == ADDING
    assert effect_kind({"effect": "aviators", "data": {"effect": "glasses"}}) == ADDING
    assert effect_kind({"effect": "makeup", "data": {"effect": "makeup"}}) == OTHER


def test_eval_real_reports_counts_ranges_and_gallery(tmp_path, fixture_dir, models):
    model, judge = models
    res = CliRunner().invoke(cli, ["eval", str(model), "--real", str(fixture_dir), "--judge",
                                   str(judge), "--json", "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    real = report["real"]
    assert real["effect_kind"] == REMOVAL and real["effect"] == "no-glasses"
    assert (real["photos"], real["faces_found"]) == (5, 3)
    assert real["no_face"] == ["no-face.png"] and real["unreadable"] == ["bad.jpg"]
    assert len(real["per_photo"]) == 5
    judged = real["judge"]
    for when in ("before", "after"):
        assert 0 <= judged[when]["glasses_share"] <= 1 and 0 < judged[when]["mean_probability"] < 1
    # the share and mean are over the three faces: the per-photo figures give them back
    after = [p["after"] for p in real["per_photo"] if p["after"] is not None]
    assert len(after) == 3 and judged["after"]["mean_probability"] == pytest.approx(np.mean(after))
    assert judged["still_glasses"]["of"] == sum(p["before"] >= 0.5 for p in real["per_photo"] if p["before"] is not None)
    drift = real["drift"]
    assert drift["found_again"] == 3  # the random model leaves the astronaut's face findable
    for key in ("eye_corners_px", "iris_px"):
        d, floor = drift[key], drift["floor"][key]
        # a random generator scrambles the crop: the landmarks move well beyond re-save jitter
        assert d["median"] > floor["median"] and d["median"] <= d["p90"]
        assert floor["median"] is not None and 0 <= floor["median"] <= floor["p90"] < 2
    assert 0 < real["outside"]["changed_share_mean"] < 0.2
    assert real["outside"]["max_change_outside_crop"] == 0  # the editor touches only the crop's box
    page = (tmp_path / "out" / "real" / "index.html").read_text()
    assert page.count("_after.png") == 3 and "more/astronaut-flip.jpg" in page
    assert read_image(tmp_path / "out" / "real" / "gallery.png").shape[1] > 2 * 64
    assert "real" in json.loads((tmp_path / "out" / "metrics.json").read_text())


def test_eval_real_table_and_limit(fixture_dir, models):
    model, judge = models
    res = CliRunner().invoke(cli, ["eval", str(model), "--real", str(fixture_dir), "--judge",
                                   str(judge), "--limit", "2"])
    assert res.exit_code == 0, res.output
    assert "faces found in 2 of 2" in res.stdout and "still judged glasses" in res.stdout
    assert "The judge misses faint remains" in " ".join(res.stdout.split())  # a removal effect: look too


def test_a_copy_of_a_photo_is_measured_once(tmp_path, fixture_dir, models):
    model, judge = models
    folder = tmp_path / "photos"
    folder.mkdir()
    data = (fixture_dir / "astronaut.png").read_bytes()
    (folder / "a.png").write_bytes(data)
    (folder / "b-copy.png").write_bytes(data)  # the same portrait under a second name
    write_image(folder / "c.png", sample_images()["astronaut-flip"])
    res = CliRunner().invoke(cli, ["eval", str(model), "--real", str(folder), "--judge", str(judge), "--json"])
    assert res.exit_code == 0, res.output
    real = json.loads(res.stdout)["real"]
    assert real["photos"] == 2 and [r["name"] for r in real["per_photo"]] == ["a.png", "c.png"]
    assert real["duplicates"] == ["b-copy.png: the same file as a.png"]
    table = CliRunner().invoke(cli, ["eval", str(model), "--real", str(folder), "--judge", str(judge)])
    assert table.exit_code == 0 and "copies of a photo already measured, left out" in table.stdout


def test_a_limit_stops_reading_once_enough_distinct_photos_are_kept(tmp_path):
    for name, data in (("a.jpg", b"1"), ("b.jpg", b"1"), ("c.jpg", b"2"), ("d.jpg", b"3")):
        (tmp_path / name).write_bytes(data)
    paths = sorted(tmp_path.iterdir())
    assert distinct_files(paths, tmp_path) == (
        [tmp_path / "a.jpg", tmp_path / "c.jpg", tmp_path / "d.jpg"], ["b.jpg: the same file as a.jpg"])
    assert distinct_files(paths, tmp_path, 2)[0] == [tmp_path / "a.jpg", tmp_path / "c.jpg"]
    assert distinct_files(paths, tmp_path, 1) == ([tmp_path / "a.jpg"], [])  # b.jpg never read


def test_eval_needs_pairs_or_real(models, tmp_path):
    model, judge = models
    res = CliRunner().invoke(cli, ["eval", str(model)])
    assert res.exit_code == 2 and "--real" in res.output
    (tmp_path / "empty").mkdir()
    empty = str(tmp_path / "empty")
    res = CliRunner().invoke(cli, ["eval", str(model), "--real", empty, "--judge", str(judge)])
    assert res.exit_code == 1 and "no photos found" in res.output
    res = CliRunner().invoke(cli, ["eval", str(model), "--real", empty,
                                   "--judge", str(tmp_path / "nope.safetensors")])
    assert res.exit_code == 1 and "nope.safetensors" in res.output


def test_an_edit_that_changes_nothing_moves_nothing(astronaut, models):
    _, judge_path = models
    judge = Judge.load(judge_path)
    editor = Editor(lambda crops: crops, SPEC, name="identity")
    r = measure_photo(astronaut, editor, judge, "astronaut")
    assert r.status == "ok" and r.before == r.after
    assert r.corner_drift == 0 and r.iris_drift == 0
    assert r.changed_share == 0 and r.outside_change == 0
    assert r.crop_before.shape == (32, 64, 3) and np.array_equal(r.crop_before, r.crop_after)


class RimDrawer:
    """A stand-in for an adding model that predicts where it edits: a ring of ``color`` around
    each eye (``bumpy``: its width wanders), with alpha marking the rings."""

    def __init__(self, spec, color, bumpy=False):
        self.spec, self.color, self.bumpy = spec, color, bumpy

    def with_alpha(self, crops):
        w, h = self.spec.size
        unit = w / self.spec.span  # inter-eye distance in crop pixels
        cy = self.spec.center_y * h
        alpha = np.zeros((h, w), np.float32)
        for cx in (w / 2 - unit / 2, w / 2 + unit / 2):
            ring = np.zeros((h, w), np.uint8)
            axes = (round(0.33 * unit), round(0.22 * unit))
            cv2.ellipse(ring, (round(cx), round(cy)), axes, 0, 0, 360, 1, 6)
            if self.bumpy:  # twice as thick along the upper half of each rim
                cv2.ellipse(ring, (round(cx), round(cy)), axes, 0, 180, 360, 1, 14)
            alpha = np.maximum(alpha, ring.astype(np.float32))
        a = alpha[None, ..., None]
        out = crops * (1 - a) + np.array(self.color, np.float32) * a
        return out.round().astype(np.uint8), np.repeat(alpha[None], len(crops), axis=0)

    def __call__(self, crops):
        return self.with_alpha(crops)[0]


@pytest.mark.parametrize("bumpy, color, even", [(False, (20, 20, 20), True), (True, (20, 20, 20), False),
                                                 (False, (30, 90, 60), True)])
def test_rims_are_measured_against_the_colour_asked_for(astronaut, models, bumpy, color, even):
    _, judge_path = models
    spec = region_spec("glasses", (256, 128))
    editor = Editor(RimDrawer(spec, color, bumpy), spec, name="rims")
    r = measure_photo(astronaut, editor, Judge.load(judge_path), "astronaut", rim_color=(20, 20, 20))
    assert r.rim_delta_e is not None and r.rim_even is not None
    assert (r.rim_delta_e <= 10) == (color == (20, 20, 20))  # a green rim is far from black
    assert (r.rim_even >= 0.9) == even
    assert 10 < r.crop_psnr < 40  # rims drawn: the crop changed, not beyond recognition
    plain = measure_photo(astronaut, Editor(lambda c: c, spec, name="identity"), Judge.load(judge_path), "a",
                          rim_color=(20, 20, 20))
    assert plain.rim_delta_e is None and plain.crop_psnr == 99.0  # no alpha: no rims; unchanged crop


def test_a_face_the_editor_declines_is_reported_not_a_crash(models):
    from eyeedit.data.samples import astronaut, turned
    from eyeedit.editing.editor import EditOptions

    _, judge_path = models
    editor = Editor(lambda crops: crops, SPEC, EditOptions(max_yaw=5), name="identity")
    r = measure_photo(turned(astronaut(), 0.2), editor, Judge.load(judge_path), "turned")
    assert r.status == "skipped" and r.reason.startswith("head turned") and r.after is None


def test_the_report_names_the_rim_colour_it_measured_against(tmp_path, fixture_dir, models):
    """An adding model with alpha and --rim-color: the rims are measured and the report says
    against which colour, so a figure quoted from it carries its command."""
    _, judge = models
    torch.manual_seed(0)
    cfg = GeneratorConfig(ngf=4, depth=5, alpha=True)
    meta = {"effect": "glasses", "generator": cfg.to_dict(), "region": SPEC.to_dict()}
    model = save_generator(tmp_path / "glasses.safetensors", build_generator(cfg).eval(), meta)
    args = ["eval", str(model), "--real", str(fixture_dir), "--judge", str(judge), "--json"]
    res = CliRunner().invoke(cli, args + ["--rim-color", "black"])
    assert res.exit_code == 0, res.output
    rims = json.loads(res.stdout)["real"]["rims"]
    assert rims["color"] == "#141414" and 1 <= rims["measured"] <= 3
    without = json.loads(CliRunner().invoke(cli, args).stdout)["real"]
    assert without["rims"] is None
