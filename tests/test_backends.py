"""ONNX export and the inference backends agree with eager PyTorch."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from eyeedit.cli.main import cli
from eyeedit.editing.backends import OnnxTranslator, choose_backend, load_translator
from eyeedit.editing.torch_backend import TorchTranslator
from eyeedit.model.store import open_model
from eyeedit.regions import region_spec


@pytest.fixture(scope="module", params=["transpose", "resize"])
def model_path(tmp_path_factory, request):
    import torch

    from eyeedit.model.networks import GeneratorConfig, build_generator
    from eyeedit.model.weights import save_generator

    torch.manual_seed(1)
    # resize upsampling is exported folded into transposed convs: same output, checked here
    cfg = GeneratorConfig(ngf=8, depth=5, upsample=request.param, residual=request.param == "resize")
    model = build_generator(cfg)
    # give batch norm non-trivial running statistics, as a trained model has
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 3, 128, 256) * 2 - 1)
    spec = region_spec("eyes")
    meta = {"effect": "t", "generator": cfg.to_dict(), "region": spec.to_dict(), "size": list(spec.size)}
    return save_generator(tmp_path_factory.mktemp("m") / "t.safetensors", model.eval(), meta)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_export_matches_pytorch(model_path, tmp_path):
    import onnx

    from eyeedit.model.export import export_onnx

    info = export_onnx(model_path, tmp_path / "m.onnx")
    assert info["max_abs_diff"] <= 1e-4
    proto = onnx.load(str(tmp_path / "m.onnx"))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["eyeedit"])["effect"] == "t"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_backends_agree_on_crops(model_path, astronaut, astronaut_face):
    from eyeedit.geometry import fit_crop_from_image, warp_to_crop

    spec = region_spec("eyes")
    crop = warp_to_crop(astronaut, fit_crop_from_image(astronaut_face.eye_corners, spec), spec.size)
    batch = np.stack([crop, crop[:, ::-1]])  # two faces in one batch
    torch_tr = load_translator(open_model(model_path), "torch")
    onnx_tr = load_translator(open_model(model_path), "onnx")
    assert isinstance(torch_tr, TorchTranslator) and isinstance(onnx_tr, OnnxTranslator)
    a, b = torch_tr(batch), onnx_tr(batch)
    assert a.shape == b.shape == batch.shape and a.dtype == b.dtype == np.uint8
    mse = ((a.astype(float) - b.astype(float)) ** 2).mean()
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 45


def test_auto_rule():
    assert choose_backend("auto", "cpu") == "onnx"
    assert choose_backend("auto", "cuda") == "torch"
    assert choose_backend("torch", "cpu") == "torch"
    with pytest.raises(ValueError):
        choose_backend("tensorrt", "cpu")
    with pytest.raises(ValueError, match="the onnx backend runs on the CPU"):
        choose_backend("onnx", "cuda")  # it would have run on the CPU while the GPU was asked for


def test_onnx_cache_reused(model_path, tmp_path):
    from eyeedit.editing.backends import cached_onnx
    from eyeedit.model.sessions import cache_dir

    first = cached_onnx(open_model(model_path))
    mtime = first.stat().st_mtime_ns
    assert cached_onnx(open_model(model_path)) == first and first.stat().st_mtime_ns == mtime
    assert first.parent == cache_dir()


def test_onnx_cache_from_an_older_exporter_is_not_used(model_path, monkeypatch):
    from eyeedit.editing.backends import cached_onnx
    from eyeedit.model import sessions

    current = cached_onnx(open_model(model_path))
    monkeypatch.setattr(sessions, "EXPORT_FORMAT", sessions.EXPORT_FORMAT - 1)
    older = sessions.cached_onnx_path(open_model(model_path))
    assert older != current and older.parent == current.parent  # same file, different graph


def test_export_cli(model_path, tmp_path):
    out = tmp_path / "x.onnx"
    res = CliRunner().invoke(cli, ["export", str(model_path), "--onnx", str(out)])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 1000 and "max |PyTorch - ONNX|" in res.output
    bad = CliRunner().invoke(cli, ["export", str(tmp_path / "missing.safetensors"), "--onnx", str(out)])
    assert bad.exit_code == 1 and "missing.safetensors" in bad.output


def test_export_never_writes_over_its_model_or_into_a_folder_it_cannot_write(model_path, tmp_path):
    import hashlib
    import shutil

    model = tmp_path / "m.safetensors"
    shutil.copy(model_path, model)
    before = hashlib.sha256(model.read_bytes()).hexdigest()
    res = CliRunner().invoke(cli, ["export", str(model), "--onnx", str(model)])
    assert res.exit_code == 2 and "is the model file itself" in res.output
    assert hashlib.sha256(model.read_bytes()).hexdigest() == before
    notes = tmp_path / "notes.txt"  # a file where the output's folder should be
    notes.write_text("mine")
    res = CliRunner().invoke(cli, ["export", str(model), "--onnx", str(notes / "x.onnx")])
    assert res.exit_code == 1 and "cannot write" in res.output and "Traceback" not in res.output
    assert f"{notes} is a file, not a folder" in res.output  # the reason, not the errno
    assert notes.read_text() == "mine"


def test_damaged_cache_entry_is_exported_again(model_path):
    from eyeedit.editing.backends import cached_onnx

    entry = cached_onnx(open_model(model_path))
    entry.write_bytes(entry.read_bytes()[:1000])  # truncated, as by a crash mid-write
    translate = load_translator(open_model(model_path), "onnx")
    out = translate(np.zeros((1, 128, 256, 3), np.uint8))
    assert out.shape == (1, 128, 256, 3) and entry.stat().st_size > 1000


def test_bench_reports_every_stage_and_backend_agreement():
    res = CliRunner().invoke(cli, ["bench", "--no-train", "--repeats", "3", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    inf = report["inference"][0]
    names = [r["name"] for r in inf["rows"]]
    for stage in ("detect (eyes >= 20 px)", "align (fit + warp)", "generator torch fp32 eager",
                  "generator torch fp32", "generator onnx fp32", "un-warp + blend", "end to end",
                  "detect: Face Mesh alone (reference)", "end to end: Face Mesh alone (reference)"):
        assert stage in names
    assert inf["vs_single_stage"] > 0
    assert all(r["median_ms"] > 0 and r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] for r in inf["rows"])
    assert inf["backend_psnr_db"]["onnx fp32"] >= 45 and inf["backend_psnr_db"]["torch fp32"] >= 45
    assert inf["fps"] > 0 and inf["speedup_vs_torch_fp32"] > 0
    # the group photo: every one of its 29 faces found and edited, timed against one face
    group = report["group"]
    assert group["faces"] == group["found"] == group["edited"] == 29 and group["skipped"] == []
    assert [r["name"] for r in group["rows"]] == ["detect, 1 face", "detect, 29 faces",
                                                   "end to end, 1 face", "end to end, 29 faces"]
    assert group["per_added_face_ms"] > 0


def test_onnx_runs_large_batches_in_chunks_with_the_same_result(model_path, monkeypatch):
    from eyeedit.editing import backends

    translate = load_translator(open_model(model_path), "onnx")
    crops = np.random.default_rng(3).integers(0, 256, (5, 128, 256, 3), dtype=np.uint8)
    runs = []
    real_run = translate.session.run
    monkeypatch.setattr(translate, "session", type("S", (), {
        "run": lambda self, names, feed: runs.append(len(feed["input"])) or real_run(names, feed)})())
    monkeypatch.setattr(backends, "MAX_BATCH", 2)
    together = translate(crops)
    assert runs == [2, 2, 1]
    alone = np.concatenate([translate(crops[i:i + 1]) for i in range(5)])
    assert together.shape == crops.shape and np.array_equal(together, alone)
