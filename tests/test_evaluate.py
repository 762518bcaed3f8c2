"""`eyeedit eval`: metrics, masks, baselines, gallery."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from eyeedit.cli.main import cli
from eyeedit.imageio import read_image, write_image
from eyeedit.training.evaluate import edit_masks, image_metrics, load_eval_set, write_gallery


def _pairs(n=3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(40, 200, (n, 32, 64, 3), dtype=np.uint8)
    b = a.copy()
    b[:, 10:20, 20:40] = (30, 60, 200)  # the edit: a blue patch
    return a, b


def test_masks_cover_the_edit():
    a, b = _pairs()
    m = edit_masks(a, b)
    assert m.shape == (3, 32, 64) and m[:, 10:20, 20:40].all()
    assert not m[:, 25:, :].any()  # far from the edit stays out
    assert m[0].sum() < 0.5 * m[0].size


def test_metrics_perfect_identity_and_ranges():
    a, b = _pairs()
    masks = edit_masks(a, b)
    perfect = image_metrics(b, b, masks)
    assert perfect["l1"] == 0 and perfect["psnr"] == 100 and perfect["ssim"] == pytest.approx(1)
    ident = image_metrics(a, b, masks)
    assert 0 < ident["l1"] < ident["l1_mask"] <= 1
    assert ident["psnr_mask"] < ident["psnr"]  # all the error is inside the mask
    assert -1 <= ident["ssim_mask"] < ident["ssim"] <= 1


def test_load_eval_set_and_gallery(tmp_path):
    a, b = _pairs()
    for i in range(3):
        write_image(tmp_path / "ds" / "val" / "A" / f"p{i}.png", a[i])
        write_image(tmp_path / "ds" / "val" / "B" / f"p{i}.png", b[i])
    data = load_eval_set(tmp_path / "ds")
    assert data.names == ["p0", "p1", "p2"] and np.array_equal(data.a, a)
    assert load_eval_set(tmp_path / "ds" / "val", limit=2).names == ["p0", "p1"]
    png, page = write_gallery(tmp_path / "g", data, b, "t")
    assert read_image(png).shape[1] > 3 * 64
    html = page.read_text()
    assert html.count("<tr>") == 4 and "images/000_output.png" in html
    with pytest.raises(FileNotFoundError):
        load_eval_set(tmp_path)


@pytest.fixture
def scored(tmp_path):
    """A three-pair dataset and a tiny random model for it."""
    import torch

    from eyeedit.model.networks import GeneratorConfig, build_generator
    from eyeedit.model.weights import save_generator
    from eyeedit.regions import region_spec

    a, b = _pairs()
    for i in range(3):
        write_image(tmp_path / "ds" / "val" / "A" / f"p{i}.png", a[i])
        write_image(tmp_path / "ds" / "val" / "B" / f"p{i}.png", b[i])
    torch.manual_seed(0)
    cfg = GeneratorConfig(ngf=4, depth=5)
    model = save_generator(tmp_path / "m.safetensors", build_generator(cfg).eval(),
                           {"effect": "x", "generator": cfg.to_dict(),
                            "region": region_spec("eyes", (64, 32)).to_dict()})
    return tmp_path / "ds", model


def test_eval_cli_reports_model_and_identity(scored, tmp_path):
    ds, model = scored
    res = CliRunner().invoke(cli, ["eval", str(model), str(ds), "--json", "-o", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert set(report["results"]) == {"model", "identity"} and report["pairs"] == 3
    assert report["results"]["identity"]["psnr_mask"] < report["results"]["identity"]["psnr"]
    assert (tmp_path / "e" / "index.html").is_file() and (tmp_path / "e" / "metrics.json").is_file()
    bad = CliRunner().invoke(cli, ["eval", str(tmp_path / "nope.safetensors"), str(ds)])
    assert bad.exit_code == 1 and "nope.safetensors" in bad.output


def _one_line(res, code, *needles):
    assert res.exit_code == code and "Traceback" not in res.output, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    for needle in needles:
        assert needle in res.output, res.output


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_eval_refuses_a_report_inside_the_dataset(scored):
    ds, model = scored
    before = _files(ds)
    _one_line(CliRunner().invoke(cli, ["eval", str(model), str(ds), "-o", str(ds / "val" / "A")]), 2,
              "is inside PAIRS")
    # PAIRS given as the split folder: the dataset's other split is off limits too
    (ds / "dataset.json").write_text("{}")
    before = _files(ds)
    _one_line(CliRunner().invoke(cli, ["eval", str(model), str(ds / "val"), "-o", str(ds / "train" / "A")]), 2,
              "is inside PAIRS")
    assert _files(ds) == before


@pytest.mark.parametrize("damage", ["text", "size"])
def test_eval_names_a_pair_image_it_cannot_use(scored, damage):
    ds, model = scored
    bad = ds / "val" / "B" / "p1.png"
    if damage == "text":
        bad.write_text("not a png")
    else:
        write_image(bad, np.zeros((16, 16, 3), np.uint8))
    _one_line(CliRunner().invoke(cli, ["eval", str(model), str(ds)]), 1, "p1.png")


def test_eval_names_a_checkpoint_it_cannot_use(scored, tmp_path):
    ds, model = scored
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "step_00000002.safetensors").write_bytes(b"garbage")
    res = CliRunner().invoke(cli, ["eval", str(model), str(ds), "--checkpoints", str(tmp_path / "ck")])
    _one_line(res, 1, "step_00000002.safetensors", "unreadable checkpoint")


def test_eval_writes_all_of_its_report_or_none(scored, tmp_path, monkeypatch):
    import eyeedit.cli.eval as ev

    ds, model = scored
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    _one_line(CliRunner().invoke(cli, ["eval", str(model), str(ds), "-o", str(notes / "e")]), 1,
              "notes.txt")
    assert notes.read_text() == "mine"

    def broken(folder, *args, **kwargs):  # the last part of the report fails to write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ev, "write_text", broken)
    _one_line(CliRunner().invoke(cli, ["eval", str(model), str(ds), "-o", str(tmp_path / "e")]), 1,
              "No space left on device")
    assert not (tmp_path / "e").exists() and not list(tmp_path.glob(".e.*"))


def test_rim_colour_without_real_photos_is_a_usage_error(scored):
    ds, model = scored
    res = CliRunner().invoke(cli, ["eval", str(model), str(ds), "--rim-color", "black"])
    assert res.exit_code == 2 and "give --real DIR too" in res.output


def test_pairs_cropped_for_another_region_get_a_note(scored):
    from eyeedit.data.pairs import DATASET_FORMAT
    from eyeedit.regions import region_spec

    ds, model = scored  # the model edits `eyes` crops
    args = ["eval", str(model), str(ds), "--json"]
    quiet = CliRunner().invoke(cli, args)
    assert quiet.exit_code == 0 and "cropped for" not in quiet.output
    (ds / "dataset.json").write_text(json.dumps({"format": DATASET_FORMAT,
                                                 "region": region_spec("glasses", (64, 32)).to_dict()}))
    noted = CliRunner().invoke(cli, args)
    assert noted.exit_code == 0 and "cropped for the `glasses` region" in " ".join(noted.output.split())
    (ds / "dataset.json").write_text(json.dumps({"format": DATASET_FORMAT,
                                                 "region": region_spec("eyes", (64, 32)).to_dict()}))
    assert "cropped for" not in CliRunner().invoke(cli, args).output


def test_an_empty_checkpoints_folder_is_noted(scored, tmp_path):
    ds, model = scored
    (tmp_path / "none").mkdir()
    res = CliRunner().invoke(cli, ["eval", str(model), str(ds), "--checkpoints", str(tmp_path / "none"), "--json"])
    assert res.exit_code == 0 and "no checkpoints (step_*.safetensors) to score" in " ".join(res.output.split())
