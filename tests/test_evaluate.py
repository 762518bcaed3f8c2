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


def test_eval_cli_reports_model_and_identity(tmp_path, monkeypatch):
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
    spec = region_spec("eyes", (64, 32))
    model = save_generator(tmp_path / "m.safetensors", build_generator(cfg).eval(),
                           {"effect": "x", "generator": cfg.to_dict(), "region": spec.to_dict()})
    res = CliRunner().invoke(cli, ["eval", str(model), str(tmp_path / "ds"), "--json", "-o", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert set(report["results"]) == {"model", "identity"} and report["pairs"] == 3
    assert report["results"]["identity"]["psnr_mask"] < report["results"]["identity"]["psnr"]
    assert (tmp_path / "e" / "index.html").is_file() and (tmp_path / "e" / "metrics.json").is_file()
    bad = CliRunner().invoke(cli, ["eval", str(tmp_path / "nope.safetensors"), str(tmp_path / "ds")])
    assert bad.exit_code == 1 and "nope.safetensors" in bad.output
