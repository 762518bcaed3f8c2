import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from eyeedit.cli.main import cli
from eyeedit.imageio import read_image


def test_help_lists_every_command_once_without_loading_them():
    from eyeedit.cli.main import COMMANDS

    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.splitlines() if line.startswith("  ") and line.split()]
    listed = [name for name in listed if name in COMMANDS]
    assert sorted(listed) == sorted(COMMANDS), result.output
    for section in ("Use an effect:", "Make an effect:", "Tools:"):
        assert section in result.output
    # a fresh interpreter: listing the commands imports none of them (and so no torch)
    code = ("import sys; from click.testing import CliRunner; from eyeedit.cli.main import cli; "
            "CliRunner().invoke(cli, ['--help']); "
            "print(sorted(m for m in sys.modules if m.startswith(('torch', 'eyeedit.cli.', 'mediapipe'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['eyeedit.cli.main']", loaded


def test_every_command_loads_and_has_help():
    from eyeedit.cli.main import COMMANDS

    for name in COMMANDS:
        res = CliRunner().invoke(cli, [name, "--help"])
        assert res.exit_code == 0 and "Usage: " in res.output and name in res.output, (name, res.output)


def test_python_dash_m_works():
    proc = subprocess.run([sys.executable, "-m", "eyeedit", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "eyeedit" in proc.stdout


def test_samples_and_crop(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["samples", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert {f"{n}.png" for n in ("astronaut", "astronaut-rot30", "astronaut-small", "astronaut-flip",
                                 "astronaut-edge", "two-faces", "no-face")} | {"moving-face.avi"} == set(names)
    # the clip plays: 60 frames of 640x480, the face in them
    import cv2

    video = cv2.VideoCapture(str(tmp_path / "s" / "moving-face.avi"))
    count, ok, frame = 0, True, None
    while ok:
        ok, got = video.read()
        if ok:
            count, frame = count + 1, got
    video.release()
    assert count == 60 and frame.shape == (480, 640, 3)
    res = runner.invoke(cli, ["crop", str(tmp_path / "s" / "two-faces.png"), str(tmp_path / "s" / "no-face.png"),
                              "-o", str(tmp_path / "c"), "--size", "128x64"])
    assert res.exit_code == 1  # one image had no face
    assert "no-face.png: no face found" in res.output
    crops = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert crops == ["two-faces_face0.png", "two-faces_face1.png", "two-faces_landmarks.png"]
    assert read_image(tmp_path / "c" / "two-faces_face0.png").shape == (64, 128, 3)


def test_crop_never_writes_over_an_input_or_into_a_file(tmp_path, astronaut):
    """An earlier crop given again among the inputs is never overwritten by the new one, and an
    output folder that cannot be made is one line, not a traceback."""
    from eyeedit.imageio import write_image

    write_image(tmp_path / "a.png", astronaut)
    earlier = tmp_path / "a_face0.png"
    write_image(earlier, np.zeros((8, 8, 3), np.uint8))
    before = earlier.read_bytes()
    res = CliRunner().invoke(cli, ["crop", str(tmp_path / "a.png"), str(earlier), "-o", str(tmp_path)])
    assert res.exit_code == 1 and "is one of the inputs, not overwritten" in res.output
    assert earlier.read_bytes() == before and (tmp_path / "a_landmarks.png").is_file()
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    res = CliRunner().invoke(cli, ["crop", str(tmp_path / "a.png"), "-o", str(notes / "out")])
    assert res.exit_code == 1 and "Traceback" not in res.output and str(notes) in res.output
    assert notes.read_text() == "mine"


def test_crop_bad_size_is_usage_error(tmp_path):
    res = CliRunner().invoke(cli, ["crop", "x.png", "--size", "big"])
    assert res.exit_code == 2 and "WIDTHxHEIGHT" in res.output
    for size in ("100000x100000", "4x4"):  # beyond memory, or nothing left to see
        res = CliRunner().invoke(cli, ["crop", "x.png", "--size", size])
        assert res.exit_code == 2 and "each side must be 16-2048 pixels" in res.output


def test_demo_writes_aligned_crop(tmp_path, monkeypatch):
    from eyeedit.model.store import NOT_EFFECTS, PACKAGE_MODELS

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # only the shipped models
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("EYEEDIT_MODELS", raising=False)
    res = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    crop = read_image(tmp_path / "astronaut_crop-eyes.png")
    # every output has a name of its own: the `glasses` region's crop and the `glasses`
    # effect's photo once shared one, and the photo replaced the crop
    assert read_image(tmp_path / "astronaut_crop-glasses.png").shape == (128, 256, 3)
    assert crop.shape == (128, 256, 3)
    overlay = read_image(tmp_path / "astronaut_landmarks.png")
    assert overlay.shape == (512, 512, 3)
    # the eyes sit on the template row: darker iris pixels near y = 0.58 * 128
    row_dark = crop[60:90].mean() < crop[100:].mean()
    assert row_dark
    shipped = sorted(p.stem for p in PACKAGE_MODELS.glob("*.safetensors") if p.stem not in NOT_EFFECTS)
    from eyeedit.data.samples import astronaut
    from eyeedit.geometry import fit_crop_from_image, warp_to_crop
    from eyeedit.landmarks import detect_faces
    from eyeedit.model.store import open_model
    from eyeedit.regions import REGIONS
    from eyeedit.training.real_photos import REMOVAL, effect_kind, psnr

    original = astronaut()
    spec = REGIONS["glasses"]
    m = fit_crop_from_image(detect_faces(original, max_faces=1)[0].eye_corners, spec)
    for effect in shipped:
        edited = read_image(tmp_path / f"astronaut_{effect}.png")
        assert edited.shape == (512, 512, 3)
        removal = effect_kind(open_model(PACKAGE_MODELS / f"{effect}.safetensors").metadata) == REMOVAL
        # She wears no glasses: a removal effect has next to nothing to remove (the eye region's
        # crop at least 35 dB from the original, the bar for faces without glasses), every
        # other effect makes a visible edit (some pixel moves by more than 24 levels).
        crop_psnr = psnr(warp_to_crop(original, m, spec.size), warp_to_crop(edited, m, spec.size))
        change = np.abs(edited.astype(int) - original).max(axis=2)
        if removal:
            assert crop_psnr >= 35, (effect, crop_psnr)
        else:
            assert change.max() > 24, (effect, change.max())
    page = (tmp_path / "index.html").read_text()
    assert all(f"astronaut_{e}.png" in page for e in shipped)
    grid = read_image(tmp_path / "grid.png")  # the original, then one 256-px-high tile per effect
    assert grid.shape[0] >= 256 and (1 + len(shipped)) * 240 <= grid.shape[1] < (2 + len(shipped)) * 240


def test_demo_names_a_model_that_replaces_a_shipped_one(tmp_path, monkeypatch):
    from eyeedit.model.store import PACKAGE_MODELS, install_model

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("EYEEDIT_MODELS", raising=False)
    install_model(PACKAGE_MODELS / "makeup.safetensors", "glasses")  # a user's own "glasses"
    res = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path / "demo")])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "demo" / "index.html").read_text()
    assert "<figcaption>glasses (user)</figcaption>" in page
    assert "<figcaption>makeup</figcaption>" in page


@pytest.mark.parametrize("command", [["samples", "{out}"], ["demo", "-o", "{out}"]])
def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path, monkeypatch, command):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    args = [a.format(out=notes / "out") for a in command]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1 and "Traceback" not in res.output and "is a file, not a folder" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert notes.read_text() == "mine"


@pytest.mark.parametrize("command", ["prepare", "synth"])
def test_a_dataset_size_no_unet_can_take_is_refused_before_any_photo(tmp_path, command):
    (tmp_path / "raw").mkdir()
    extra = ["--effect", "glasses"] if command == "synth" else []
    res = CliRunner().invoke(cli, [command, str(tmp_path / "raw"), str(tmp_path / "out"), "--size", "255x127", *extra])
    assert res.exit_code == 2 and "multiples of 4" in res.output and "e.g. 256x128" in res.output
    assert not (tmp_path / "out").exists()
