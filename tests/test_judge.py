"""The glasses judge: its file refuses bad input, a tiny one learns, the shipped one holds up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_faces

from eyeedit.data.portraits import (
    align_portraits,
    congress_person,
    is_held_out,
    labelled_portraits,
    read_holdout,
)
from eyeedit.geometry import fit_crop_from_image, warp_to_crop
from eyeedit.model.judge import DEFAULT_JUDGE, Judge, JudgeConfig, JudgeNet, save_judge
from eyeedit.model.store import ModelError, find_model, list_models
from eyeedit.model.weights import save_model
from eyeedit.regions import region_spec
from eyeedit.training.judge import (
    JudgeTrainConfig,
    augment,
    class_metrics,
    person_folds,
    predict,
    train_judge,
)

HOLDOUT = Path(__file__).resolve().parents[1] / "pipelines" / "holdout.txt"
TINY = JudgeConfig(width=32, height=16, channels=(4, 8), dropout=0.0)
SPEC = region_spec("glasses", (64, 32))


def _tiny_judge(path: Path, cfg: JudgeConfig = TINY, **meta) -> Path:
    torch.manual_seed(0)
    return save_judge(path, JudgeNet(cfg), cfg, SPEC, 0.5, {"metrics": {}, **meta})


# --------------------------------------------------------------------------- the file


def test_judge_round_trip(tmp_path):
    path = _tiny_judge(tmp_path / "j.safetensors")
    judge = Judge.load(path)
    crops = np.random.default_rng(0).integers(0, 256, (3, 32, 64, 3), dtype=np.uint8)
    p = judge.probability(crops)
    assert p.shape == (3,) and p.dtype == np.float64 and ((p > 0) & (p < 1)).all()
    # another size of the same crop is area-resized to the network's input first
    assert judge.probability(np.repeat(np.repeat(crops, 2, 1), 2, 2)).shape == (3,)
    assert judge.wears_glasses(crops).dtype == bool and judge.region == SPEC
    assert judge.probability(np.zeros((0, 32, 64, 3), np.uint8)).shape == (0,)
    with pytest.raises(ValueError, match="uint8"):
        judge.probability(crops.astype(np.float32))


def _assert_refused(path: Path, *words: str) -> None:
    with pytest.raises(ModelError) as err:
        Judge.load(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and all(w in msg for w in words), msg


def test_truncated_file_is_refused(tmp_path):
    good = _tiny_judge(tmp_path / "good.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(good[: len(good) - 100])
    _assert_refused(tmp_path / "cut.safetensors", "truncated (its weights need")
    (tmp_path / "head.safetensors").write_bytes(good[:40])
    _assert_refused(tmp_path / "head.safetensors", "not a safetensors file")


def test_not_safetensors_is_refused(tmp_path):
    (tmp_path / "text.safetensors").write_text("plain text, long enough for a header length")
    _assert_refused(tmp_path / "text.safetensors", "not a safetensors file")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    _assert_refused(tmp_path / "empty.safetensors", "not a safetensors file")
    _assert_refused(tmp_path / "missing.safetensors", "no such model file")


def test_wrong_metadata_is_refused(tmp_path):
    weights = {k: v for k, v in JudgeNet(TINY).state_dict().items()}
    base = {"kind": "judge", "network": TINY.to_dict(), "region": SPEC.to_dict(), "size": [32, 16],
            "threshold": 0.5}
    cases = {
        "effect": ({"effect": "glasses", "generator": {}, "region": SPEC.to_dict()}, "lacks kind"),
        "kind": ({**base, "kind": "effect"}, "not a judge"),
        "threshold": ({**base, "threshold": 1.5}, "bad judge metadata"),
        "network": ({**base, "network": {**TINY.to_dict(), "depth": 3}}, "bad judge metadata"),
        "size": ({**base, "size": [64, 32]}, "bad judge metadata"),
        "region": ({**base, "region": {"name": "nose"}}, "bad judge metadata"),
    }
    for name, (meta, words) in cases.items():
        path = save_model(tmp_path / f"{name}.safetensors", weights, meta, required=("format",))
        _assert_refused(path, words)


def test_wrong_weight_shapes_are_refused(tmp_path):
    wide = JudgeConfig(width=32, height=16, channels=(4, 16))
    meta = {"kind": "judge", "network": TINY.to_dict(), "region": SPEC.to_dict(), "size": [32, 16],
            "threshold": 0.5}
    path = save_model(tmp_path / "w.safetensors", JudgeNet(wide).state_dict(), meta,
                      required=("format",))
    _assert_refused(path, "weights do not match", "wrong shape")


def test_an_effect_model_is_not_a_judge(tmp_path):
    shipped_effect = find_model("makeup").path
    _assert_refused(shipped_effect, "lacks kind")


# --------------------------------------------------------------------------- training


def test_class_metrics_and_folds():
    prob = np.array([0.9, 0.8, 0.2, 0.1, 0.6, 0.3])
    labels = np.array([1, 1, 1, 0, 0, 0])
    m = class_metrics(prob, labels)
    assert m["glasses_recall"] == pytest.approx(2 / 3) and m["plain_recall"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6) and m["n"] == 6 and m["n_glasses"] == 3
    only_plain = class_metrics(np.array([0.2, 0.7]), np.array([0, 0]))
    assert only_plain["glasses_recall"] is None and only_plain["plain_recall"] == 0.5
    assert only_plain["balanced_accuracy"] is None
    persons = ["a", "a", "b", "c", "c", "d", "e", "f", "g", "h"]
    labels = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    folds = person_folds(persons, labels, 2, seed=3)
    assert folds[0] == folds[1] and folds[3] == folds[4]  # a person's photos share a fold
    for f in (0, 1):
        assert set(labels[folds == f]) == {0, 1}  # both classes in every fold


def test_augment_keeps_shape_range_and_is_seeded():
    x = torch.rand(4, 3, 16, 32) * 2 - 1
    cfg = JudgeTrainConfig()
    a = augment(x, cfg, torch.Generator().manual_seed(1))
    b = augment(x, cfg, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1 and torch.equal(a, b)
    assert not torch.allclose(a, x)


def _glasses_crops(image, face, n, seed, with_glasses):
    """n aligned glasses crops of one photo, each nudged by a random shift and brightness, with
    or without a drawn dark frame (style, colour and material pinned; size, tint, reflections
    random)."""
    from eyeedit.data.effects import Pins, get_effect

    effect, rng = get_effect("glasses"), np.random.default_rng(seed)
    pins = Pins(style="rectangular", material="plastic", color="black")
    base = fit_crop_from_image(face.eye_corners, SPEC)
    crops = []
    for _ in range(n):
        photo = image
        if with_glasses:
            photo = effect.render(image, face, effect.sample(rng, face, pins)).image
        m = base.copy()
        m[:, 2] += rng.uniform(-2, 2, 2)
        crop = warp_to_crop(photo, m, SPEC.size).astype(np.float32) * rng.uniform(0.85, 1.15)
        crops.append(np.clip(crop, 0, 255).astype(np.uint8))
    return np.stack(crops)


def test_tiny_judge_learns_drawn_glasses(astronaut, astronaut_face):
    def make(seed):
        pos = _glasses_crops(astronaut, astronaut_face, 12, seed, True)
        neg = _glasses_crops(astronaut, astronaut_face, 12, seed + 1, False)
        return np.concatenate([pos, neg]), np.array([1] * 12 + [0] * 12)

    x, y = make(0)
    cfg = JudgeTrainConfig(network=JudgeConfig(width=64, height=32, channels=(8, 16, 32)),
                           epochs=12, batch_size=8, seed=0)
    losses = []
    net = train_judge(x, y, cfg, log=lambda e, loss: losses.append(loss))
    assert losses[-1] < losses[0]
    test_x, test_y = make(100)  # frames and nudges never seen in training
    m = class_metrics(predict(net, test_x, cfg.network), test_y)
    assert m["accuracy"] >= 0.9, m
    with pytest.raises(ValueError, match="both classes"):
        train_judge(x[:12], y[:12], cfg)


# --------------------------------------------------------------------------- the shipped judge


def test_shipped_judge_file():
    judge = Judge.load()
    meta = judge.metadata
    assert DEFAULT_JUDGE.stat().st_size < 3e6
    assert judge.region == region_spec("glasses") and 0 < judge.threshold < 1
    assert any("London" in c and "CC BY 4.0" in c for c in meta["data"]["credits"])
    for key in ("accuracy", "glasses_recall", "plain_recall"):
        assert 0.5 < meta["metrics"]["held_out"][key] <= 1
        assert 0.5 < meta["metrics"]["cv"][key]["mean"] <= 1
    # an instrument, not an effect: never listed or looked up as one
    assert "judge" not in {e.effect for e in list_models()}
    with pytest.raises(ModelError, match="not an effect"):
        find_model("judge")


def test_shipped_judge_on_astronaut(astronaut, astronaut_face):
    from eyeedit.data.effects import Pins, get_effect

    judge = Judge.load()
    plain = judge.score_photo(astronaut)
    assert len(plain) == 1 and plain[0].crop.shape == (128, 256, 3)
    effect = get_effect("glasses")
    pins = Pins(style="rectangular", material="plastic", color="black", tint="clear")
    params = effect.sample(np.random.default_rng(0), astronaut_face, pins)
    framed_photo = effect.render(astronaut, astronaut_face, params).image
    framed = judge.score_photo(framed_photo, [astronaut_face])
    assert not plain[0].glasses and framed[0].glasses


def test_holdout_list_reads_and_excludes():
    from eyeedit.data.synth import read_exclusions

    names = read_holdout(HOLDOUT)
    assert names == frozenset(read_exclusions(str(HOLDOUT)))  # `synth --exclude` takes it as is
    assert all(n.endswith(".jpg") and not n.startswith("#") for n in names)


def test_congress_portraits_of_one_member_are_one_person(tmp_path):
    folder = tmp_path / "congress"
    folder.mkdir()
    (folder / "glasses.csv").write_text("file,glasses\n118_M000001.jpg,1\n119_M000001.jpg,1\n"
                                        "118_M000002.jpg,0\n118_G000003.jpg,?\n")
    portraits = labelled_portraits(tmp_path)
    assert [p.person for p in portraits] == ["M000001", "M000001", "M000002"]
    assert congress_person("plain.jpg") == "plain"  # no congress number: the stem


@pytest.mark.faces
def test_holdout_lists_every_photo_of_a_held_out_person():
    names = read_holdout(HOLDOUT)
    portraits = labelled_portraits(shared_faces())
    held = {p.person for p in portraits if is_held_out(p, names)}
    missing = [p.path.name for p in portraits if p.person in held and not is_held_out(p, names)]
    assert not missing


@pytest.mark.faces
def test_holdout_share_per_group():
    portraits = labelled_portraits(shared_faces())
    names = read_holdout(HOLDOUT)
    people = {p.person: p for p in portraits}
    for group in (lambda p: p.glasses, lambda p: p.source == "congress" and not p.glasses,
                  lambda p: p.source == "london"):
        members = [p for p in people.values() if group(p)]
        assert 0.2 <= sum(is_held_out(p, names) for p in members) / len(members) <= 0.3
    assert names <= {p.path.name for p in portraits}


@pytest.mark.faces
def test_shipped_judge_scores_held_out_people_as_reported():
    judge = Judge.load()
    held = [p for p in labelled_portraits(shared_faces()) if is_held_out(p, read_holdout(HOLDOUT))]
    aligned = align_portraits(held, judge.region)
    assert not aligned.missing
    m = class_metrics(judge.probability(aligned.crops), aligned.labels, judge.threshold)
    reported = judge.metadata["metrics"]["held_out"]
    assert m["n"] == reported["n"] and m["n_glasses"] == reported["n_glasses"]
    for key in ("accuracy", "glasses_recall", "plain_recall"):
        assert m[key] == pytest.approx(reported[key], abs=1e-9), key
    assert m["accuracy"] >= 0.9 and m["glasses_recall"] >= 0.85


def test_metadata_is_json_and_names_the_cpu():
    meta = Judge.load().metadata
    json.dumps(meta)
    assert meta["training"]["cpu"] and meta["training"]["date"]
