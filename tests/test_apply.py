"""`eyeedit apply`, `eyeedit models`, the model store and the Python API."""

import hashlib
import pickle

import numpy as np
import pytest
from click.testing import CliRunner

from eyeedit.cli.main import cli
from eyeedit.data.samples import sample_images
from eyeedit.imageio import read_image, write_image
from eyeedit.regions import region_spec


def _model_file(path, effect="tiny", region="eyes"):
    """A tiny random generator saved as a real model file (output is noise, shapes are real)."""
    import torch

    from eyeedit.model.networks import GeneratorConfig, build_generator
    from eyeedit.model.weights import save_generator

    torch.manual_seed(0)
    cfg = GeneratorConfig(ngf=4, depth=5)
    spec = region_spec(region)
    meta = {"effect": effect, "generator": cfg.to_dict(), "region": spec.to_dict(),
            "size": list(spec.size), "metrics": {"val_psnr": 21.5}}
    return save_generator(path, build_generator(cfg).eval(), meta)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    _model_file(d / "tiny.safetensors")
    _model_file(d / "wide.safetensors", effect="wide", region="glasses")
    return d


@pytest.fixture
def env(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EYEEDIT_MODELS", str(model_dir))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return model_dir


@pytest.fixture
def photos(tmp_path):
    imgs = sample_images()
    d = tmp_path / "in"
    write_image(d / "astro.jpg", imgs["astronaut"])
    write_image(d / "sub" / "two.png", imgs["two-faces"])
    write_image(d / "sub" / "empty.png", imgs["no-face"])
    (d / "broken.jpg").write_text("not really a jpeg")
    return d


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def test_single_file_to_named_output(env, photos, tmp_path):
    before = _digest(photos)
    out = tmp_path / "out.jpg"
    res = CliRunner().invoke(cli, ["apply", str(photos / "astro.jpg"), "-e", "tiny", "-o", str(out)])
    assert res.exit_code == 0, res.output
    img, src = read_image(out), read_image(photos / "astro.jpg")
    assert img.shape == src.shape and out.read_bytes()[:2] == b"\xff\xd8"  # still a JPEG
    assert _digest(photos) == before  # inputs untouched


def test_folder_keeps_relative_paths_and_reports_failures(env, photos, tmp_path):
    before = _digest(photos)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["apply", str(photos), "-e", "tiny", "-o", str(out)])
    assert res.exit_code == 1  # the no-face photo and the broken file
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("[!.]*") if p.is_file())
    assert written == ["astro.jpg", "sub/two.png"]
    assert "broken.jpg: cannot decode" in res.output or "broken.jpg: not an image" in res.output
    assert "empty.png: no face found" in res.output
    assert "Traceback" not in res.output
    assert not list(out.rglob("*.tmp")) and _digest(photos) == before


def test_keep_unedited_writes_face_less_photo_unchanged(env, photos, tmp_path):
    out = tmp_path / "o"
    res = CliRunner().invoke(cli, ["apply", str(photos / "sub" / "empty.png"), "-e", "tiny", "-o", str(out),
                                   "--keep-unedited"])
    assert res.exit_code == 0, res.output
    assert np.array_equal(read_image(out / "empty.png"), read_image(photos / "sub" / "empty.png"))


def test_default_output_beside_input_and_side_by_side(env, photos):
    res = CliRunner().invoke(cli, ["apply", str(photos / "astro.jpg"), "-e", "wide", "--side-by-side",
                                   "--save-crops"])
    assert res.exit_code == 0, res.output
    out = photos / "astro_wide.jpg"
    src = read_image(photos / "astro.jpg")
    assert read_image(out).shape == (src.shape[0], src.shape[1] * 2, 3)
    crops = sorted(p.name for p in (photos / "astro_wide_crops").iterdir())
    assert crops == ["face0_in.png", "face0_mask.png", "face0_out.png"]
    assert read_image(photos / "astro_wide_crops" / "face0_in.png").shape == (128, 256, 3)


def test_refuses_to_overwrite_input(env, photos):
    res = CliRunner().invoke(cli, ["apply", str(photos / "astro.jpg"), "-e", "tiny", "-o", str(photos / "astro.jpg")])
    assert res.exit_code == 2 and "overwrite an input" in res.output


def test_usage_errors(env, photos, tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["apply", str(photos / "astro.jpg")]).exit_code == 2
    res = runner.invoke(cli, ["apply", str(photos), "-e", "tiny", "-o", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "exactly one input" in res.output
    res = runner.invoke(cli, ["apply", str(photos / "astro.jpg"), "-e", "tiny", "--strength", "2"])
    assert res.exit_code == 2


def test_unknown_effect_lists_available(env, photos):
    res = CliRunner().invoke(cli, ["apply", str(photos / "astro.jpg"), "-e", "nope"])
    assert res.exit_code == 1
    assert "unknown effect 'nope'" in res.output and "tiny" in res.output and "eyeedit train" in res.output
    slip = CliRunner().invoke(cli, ["apply", str(photos / "astro.jpg"), "-e", "tinny"])
    assert slip.exit_code == 1 and "did you mean 'tiny'?" in slip.output and "eyeedit train" not in slip.output


def test_models_lists_sources(env, tmp_path):
    from eyeedit.model.store import install_model

    install_model(env / "tiny.safetensors", "tiny")  # into the user store: shadowed by $EYEEDIT_MODELS
    res = CliRunner().invoke(cli, ["models", "--json"])
    assert res.exit_code == 0
    import json

    rows = json.loads(res.output)
    tiny = [r for r in rows if r["effect"] == "tiny"]
    assert [r["source"] for r in tiny] == ["$EYEEDIT_MODELS", "user"]
    assert [r["active"] for r in tiny] == [True, False]
    assert tiny[0]["region"] == "eyes 256x128" and tiny[0]["metrics"]["val_psnr"] == 21.5
    # what trained each model, as its file records it
    shipped = next(r for r in rows if r["effect"] == "no-glasses" and r["source"] == "package")
    assert shipped["trained"]["precision"] == "bf16" and shipped["trained"]["steps"] > 0
    table = CliRunner().invoke(cli, ["models"])
    assert table.exit_code == 0 and "wide" in table.output


def test_python_api(env, astronaut):
    from eyeedit import Editor

    edited = Editor.load("tiny").edit(astronaut)
    assert edited.shape == astronaut.shape and edited.dtype == np.uint8
    assert not np.array_equal(edited, astronaut)
    # far from the eyes nothing changes
    assert np.array_equal(edited[400:], astronaut[400:])


@pytest.mark.parametrize("kind", ["pickle", "no-meta", "shapes", "text"])
def test_bad_model_files_are_refused(env, photos, tmp_path, kind):
    import torch
    from safetensors.torch import save_file

    bad = tmp_path / "bad.safetensors"
    if kind == "pickle":
        bad.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    elif kind == "no-meta":
        save_file({"w": torch.zeros(2)}, str(bad))
    elif kind == "shapes":
        from eyeedit.model.networks import GeneratorConfig, build_generator
        from eyeedit.model.weights import save_generator

        meta = {"effect": "x", "generator": GeneratorConfig(ngf=8, depth=5).to_dict(),
                "region": region_spec("eyes").to_dict()}
        save_generator(bad, build_generator(GeneratorConfig(ngf=4, depth=5)), meta)
    else:
        bad.write_text("hello")
    res = CliRunner().invoke(cli, ["apply", str(photos / "astro.jpg"), "-m", str(bad), "-o", str(tmp_path / "o.jpg")])
    assert res.exit_code == 1
    assert str(bad) in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o.jpg").exists()


def test_models_table_summarises_validation_as_masked_psnr_over_identity():
    from eyeedit.cli.models import _validation_summary

    assert _validation_summary({"val_psnr_mask": 22.3, "identity_psnr_mask": 14.5, "val_l1": 0.01}) == \
        "masked PSNR 22.3 dB (+7.8 over identity)"
    assert _validation_summary({"val_psnr": 21.5, "val_l1": 0.04, "val_ssim": 0.8, "x": 1}) == \
        "val_psnr 21.5, val_l1 0.04, val_ssim 0.8"
    assert _validation_summary({}) == "-"


@pytest.mark.parametrize("layout", ["files", "folders"])
def test_two_inputs_never_share_one_output(env, tmp_path, layout):
    """x/p.jpg and y/p.jpg both map to out/p.jpg: refused before anything is written."""
    astro = sample_images()["astronaut"]
    for side in "xy":
        write_image(tmp_path / side / "p.jpg", astro)
    inputs = [tmp_path / "x" / "p.jpg", tmp_path / "y" / "p.jpg"] if layout == "files" else [
        tmp_path / "x", tmp_path / "y"]
    res = CliRunner().invoke(cli, ["apply", *map(str, inputs), "-e", "tiny", "-o", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert str(tmp_path / "x" / "p.jpg") in res.output and str(tmp_path / "y" / "p.jpg") in res.output
    assert not (tmp_path / "out").exists()


def test_the_same_input_twice_is_edited_once(env, photos, tmp_path):
    astro = photos / "astro.jpg"
    res = CliRunner().invoke(cli, ["apply", str(astro), str(photos / ".." / "in" / "astro.jpg"),
                                   "-e", "tiny", "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert [p.name for p in (tmp_path / "out").glob("[!.]*")] == ["astro.jpg"]


def _camera_jpeg(path, image, orientation=1):
    """A JPEG as a camera writes it: EXIF (make, date, orientation), an ICC profile, 4:2:0."""
    from PIL import Image, ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F], exif[0x0132], exif[0x0112] = "TestCam", "2024:05:06 07:08:09", orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=87, subsampling=2, exif=exif.tobytes(), icc_profile=icc)
    return path, icc


def test_jpeg_output_keeps_exif_icc_and_quantisation(env, tmp_path, astronaut):
    from PIL import Image

    rotated = np.ascontiguousarray(np.rot90(astronaut))  # stored sideways, EXIF says turn it
    src, icc = _camera_jpeg(tmp_path / "in" / "cam.jpg", rotated, orientation=6)
    out = tmp_path / "out.jpg"
    res = CliRunner().invoke(cli, ["apply", str(src), "-e", "tiny", "-o", str(out)])
    assert res.exit_code == 0, res.output
    with Image.open(src) as a, Image.open(out) as b:
        exif = b.getexif()
        assert exif[0x010F] == "TestCam" and exif[0x0132] == "2024:05:06 07:08:09"
        assert exif.get(0x0112, 1) == 1 and b.info["icc_profile"] == icc
        assert b.size == (a.size[1], a.size[0])  # written upright
    upright = read_image(out).astype(int)
    assert upright.shape == astronaut.shape and np.abs(upright - astronaut).mean() < 4  # turned back


def test_jpeg_reencoding_outside_the_edit_is_close_to_lossless(env, tmp_path, astronaut):
    """Untouched areas of a JPEG change only by re-encoding with the photo's own tables;
    far less than a default re-encode."""
    from PIL import Image, JpegImagePlugin

    src, _ = _camera_jpeg(tmp_path / "in" / "cam.jpg", astronaut)
    out = tmp_path / "out.jpg"
    assert CliRunner().invoke(cli, ["apply", str(src), "-e", "tiny", "-o", str(out)]).exit_code == 0
    with Image.open(src) as a, Image.open(out) as b:
        assert a.quantization == b.quantization
        assert JpegImagePlugin.get_sampling(a) == JpegImagePlugin.get_sampling(b)
    before, after = read_image(src).astype(int), read_image(out).astype(int)
    outside = np.ones(before.shape[:2], bool)
    outside[40:170, 140:320] = False  # the eye region of the sample face, with margin
    err = np.abs(after - before)[outside]
    plain = tmp_path / "plain.jpg"
    write_image(plain, read_image(src))  # what a default quality-95 re-encode does
    plain_err = np.abs(read_image(plain).astype(int) - before)[outside]
    assert err.mean() < 0.7 * plain_err.mean(), (err.mean(), plain_err.mean())


@pytest.mark.parametrize("how", ["strength-0", "no-face"])
def test_an_unchanged_photo_is_a_copy_of_its_bytes(env, tmp_path, astronaut, how):
    from eyeedit.data.samples import sample_images

    image = astronaut if how == "strength-0" else sample_images()["no-face"]
    src, _ = _camera_jpeg(tmp_path / "in" / "p.jpg", image)
    extra = ["--strength", "0"] if how == "strength-0" else ["--keep-unedited"]
    res = CliRunner().invoke(cli, ["apply", str(src), "-e", "tiny", "-o", str(tmp_path / "o.jpg"), *extra])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o.jpg").read_bytes() == src.read_bytes()


def test_rerun_on_a_folder_skips_existing_outputs_and_never_edits_them(env, tmp_path, astronaut):
    folder = tmp_path / "photos"
    write_image(folder / "a.jpg", astronaut)
    runner = CliRunner()
    assert runner.invoke(cli, ["apply", str(folder), "-e", "tiny"]).exit_code == 0
    first = (folder / "a_tiny.jpg").read_bytes()
    write_image(folder / "b.png", astronaut[:, ::-1])
    again = runner.invoke(cli, ["apply", str(folder), "-e", "tiny"])
    assert again.exit_code == 0, again.output
    assert (folder / "a_tiny.jpg").read_bytes() == first and (folder / "b_tiny.png").exists()
    assert "exists" in again.output
    other = runner.invoke(cli, ["apply", str(folder), "-e", "wide"])
    assert other.exit_code == 0, other.output
    names = sorted(p.name for p in folder.glob("[!.]*"))
    assert names == ["a.jpg", "a_tiny.jpg", "a_wide.jpg", "b.png", "b_tiny.png", "b_wide.png"]
    (folder / "a_tiny.jpg").write_bytes(b"stale")  # an output that must be made again
    redo = runner.invoke(cli, ["apply", str(folder), "-e", "tiny", "--overwrite"])
    assert redo.exit_code == 0 and "exists" not in redo.output, redo.output
    assert (folder / "a_tiny.jpg").read_bytes() == first  # edited again, the same as the first time


def _row(output: str) -> tuple[str, int, int]:
    """(status, faces found, faces edited) from a one-photo summary table."""
    import re

    m = re.search(r"│\s*([a-z-]+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│", output)
    assert m, output
    return m.group(1), int(m.group(2)), int(m.group(3))


@pytest.fixture
def group_file(tmp_path):
    from eyeedit.data.samples import astronaut_head, group_photo

    image, boxes = group_photo([astronaut_head()], [300, 300, 200, 200, 200, 140, 140], size=(1280, 720))
    return write_image(tmp_path / "group.png", image), boxes


def test_every_face_of_a_group_photo_is_edited_by_default(env, group_file, tmp_path):
    path, boxes = group_file
    res = CliRunner().invoke(cli, ["apply", str(path), "-e", "tiny", "-o", str(tmp_path / "out.png")])
    assert res.exit_code == 0, res.output
    assert _row(res.output) == ("edited", len(boxes), len(boxes))
    before, after = read_image(path), read_image(tmp_path / "out.png")
    for x0, y0, x1, y1 in boxes:  # every tile was changed
        assert not np.array_equal(before[y0:y1, x0:x1], after[y0:y1, x0:x1])


def test_max_faces_limits_and_names_the_faces_left(env, group_file, tmp_path):
    path, boxes = group_file
    res = CliRunner().invoke(cli, ["apply", str(path), "-e", "tiny", "-o", str(tmp_path / "out.png"),
                                   "--max-faces", "2"])
    assert res.exit_code == 0, res.output
    assert _row(res.output) == ("edited", len(boxes), 2)
    assert res.output.count("beyond the 2 largest faces, skipped") == len(boxes) - 2


def test_a_photo_whose_faces_cannot_be_edited_is_reported(env, tmp_path):
    from eyeedit.data.samples import turned

    path = write_image(tmp_path / "turned.png", turned(sample_images()["astronaut"], 0.2))
    res = CliRunner().invoke(cli, ["apply", str(path), "-e", "tiny", "-o", str(tmp_path / "o"), "--max-yaw", "10"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "turned.png: 1 face found, none editable (face 0: head turned -1" in res.output
    assert _row(res.output)[0] == "no-editable-face"
    assert not (tmp_path / "o" / "turned.png").exists()
    kept = CliRunner().invoke(cli, ["apply", str(path), "-e", "tiny", "-o", str(tmp_path / "o"), "--max-yaw", "10",
                                    "--keep-unedited"])
    assert kept.exit_code == 0 and "face 0: head turned" in kept.output
    assert np.array_equal(read_image(tmp_path / "o" / "turned.png"), read_image(path))


def test_added_glasses_cast_their_shadow_unless_told_not_to(env, tmp_path, astronaut):
    src = tmp_path / "astro.png"
    write_image(src, astronaut)
    outs = {}
    for flag in ("--frame-shadow", "--no-frame-shadow"):
        out = tmp_path / f"{flag}.png"
        res = CliRunner().invoke(cli, ["apply", str(src), "-e", "glasses", "--backend", "torch", flag, "-o", str(out)])
        assert res.exit_code == 0, res.output
        outs[flag] = read_image(out).astype(int)
    shaded, plain = outs["--frame-shadow"], outs["--no-frame-shadow"]
    darker = (shaded < plain).any(axis=2)
    assert darker.sum() > 300 and not (shaded > plain).any()  # a shadow only darkens
    framed = np.nonzero((plain != astronaut).any(axis=2))[0]  # rows the frame itself changed
    rows = np.nonzero(darker)[0]
    assert rows.min() > framed.min() and rows.max() <= framed.max() + 8  # by the frame, below it


@pytest.mark.parametrize("extra, needle", [
    (["--device", "bogus"], "is not cpu, cuda, cuda:N or mps"),
    (["--device", "cuda", "--backend", "onnx"], "the onnx backend runs on the CPU"),  # either order
    (["--backend", "onnx", "--device", "cuda"], "the onnx backend runs on the CPU"),
    (["--strength", "nan"], "is not a finite number"),
    (["--model", "{models}/tiny.safetensors"], "not both"),
])
def test_options_that_cannot_work_are_usage_errors_before_any_photo(env, model_dir, photos, tmp_path, extra, needle):
    extra = [a.format(models=model_dir) for a in extra]
    res = CliRunner().invoke(cli, ["apply", str(photos / "astro.jpg"), "-e", "tiny", "-o", str(tmp_path / "o"), *extra])
    assert res.exit_code == 2 and needle in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "o").exists()


def test_a_gpu_that_is_not_there_is_a_usage_error(env, photos, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    res = CliRunner().invoke(cli, ["apply", str(photos / "astro.jpg"), "-e", "tiny", "--device", "cuda"])
    assert res.exit_code == 2 and "no CUDA GPU is available here" in res.output


def test_a_face_index_beyond_the_faces_found_says_so(env, photos, tmp_path):
    res = CliRunner().invoke(cli, ["apply", str(photos / "astro.jpg"), "-e", "tiny", "--face-index", "5",
                                   "-o", str(tmp_path / "o")])
    assert res.exit_code == 1, res.output
    assert "face index 5 asked for, faces are numbered 0-0" in " ".join(res.output.split())


def test_a_second_effect_into_one_output_folder_says_whose_files_it_kept(env, photos, tmp_path):
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["apply", str(photos / "astro.jpg"), "-e", "tiny", "-o", str(out)]).exit_code == 0
    again = runner.invoke(cli, ["apply", str(photos / "astro.jpg"), "-e", "wide", "-o", str(out)],
                          env={"COLUMNS": "300"})  # one table row a line
    row = next(line for line in again.output.splitlines() if "astro.jpg" in line and "exists" in line)
    assert again.exit_code == 0 and "exists, made by tiny; --overwrite redoes it" in row, again.output
    assert [c.strip() for c in row.split("│")][3:5] == ["-", "-"]  # not looked at: no face counts
