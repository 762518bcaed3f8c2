"""`eyeedit train` refuses what it cannot use with one line and exit status 1, before writing:
run folders it cannot write, datasets whose dataset.json contradicts their images, and a
resume on other data. Model files whose metadata contradicts itself are refused when loaded."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_train import TINY, make_dataset

from eyeedit.cli.main import cli
from eyeedit.model.store import read_header, with_metadata


def _train(pairs, out, *extra):
    return CliRunner().invoke(cli, ["train", str(pairs), "--out", str(out), *TINY, *extra])


def _one_line_error(res, *needles):
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, res.output
    for needle in needles:
        assert needle in lines[0], res.output


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("guards") / "pairs")


@pytest.fixture(scope="module")
def finished_run(pairs, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert _train(pairs, out).exit_code == 0
    return out


def _snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_run_folder_under_a_file(pairs, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    _one_line_error(_train(pairs, notes / "run"), f"{notes} is a file, not a folder")
    assert notes.read_text() == "mine\n"


@pytest.mark.parametrize("flag", [None, "--resume", "--overwrite"])
def test_a_file_where_the_checkpoints_folder_goes(pairs, finished_run, tmp_path, flag):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").write_text("not a folder\n")
    before = _snapshot(run)
    _one_line_error(_train(pairs, run, *([flag] if flag else [])), "checkpoints is a file, not a folder")
    assert _snapshot(run) == before


@pytest.fixture
def read_only(tmp_path):
    """A tmpfs mounted read-only once ``fill`` has put files in it (needs root and mount)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root and the mount capability)")

    def seal():
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)

    yield mount, seal
    subprocess.run(["umount", "--lazy", str(mount)], capture_output=True)


@pytest.mark.parametrize("flag", [None, "--resume", "--overwrite"])
def test_read_only_run_folder(pairs, finished_run, read_only, flag):
    mount, seal = read_only
    run = mount / "run"
    if flag:
        shutil.copytree(finished_run, run)
    seal()
    before = _snapshot(mount)
    _one_line_error(_train(pairs, run, *([flag] if flag else [])), "cannot write")
    assert _snapshot(mount) == before


def test_resuming_a_finished_run_on_other_data_is_refused(finished_run, tmp_path):
    other = make_dataset(tmp_path / "other", n_train=7)
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = _snapshot(run)
    _one_line_error(_train(other, run, "--resume"), "different dataset")
    assert _snapshot(run) == before


def _edit_info(pairs, tmp_path, **changes):
    copy = tmp_path / "pairs"
    shutil.copytree(pairs, copy)
    info = json.loads((copy / "dataset.json").read_text())
    for key, value in changes.items():
        if key == "region_width":
            info["region"]["width"] = value
        else:
            info[key] = value
    (copy / "dataset.json").write_text(json.dumps(info))
    return copy


def test_dataset_json_saying_grey_for_colour_crops(pairs, tmp_path):
    _one_line_error(_train(_edit_info(pairs, tmp_path, channels=1), tmp_path / "run"), "in colour")
    assert not (tmp_path / "run").exists()


def test_dataset_json_region_disagreeing_with_its_size(pairs, tmp_path):
    _one_line_error(_train(_edit_info(pairs, tmp_path, region_width=32), tmp_path / "run"),
                    "region eyes is 32x", "crop size is")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_apply_refuses_a_model_whose_region_contradicts_its_size(finished_run, tmp_path, backend,
                                                                 monkeypatch, astronaut):
    from eyeedit.imageio import write_image

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "bad.safetensors"
    blob = (finished_run / "model.safetensors").read_bytes()
    meta = json.loads(read_header(finished_run / "model.safetensors")["__metadata__"]["eyeedit"])
    meta["region"]["width"] = meta["region"]["width"] // 2
    model.write_bytes(with_metadata(blob, meta))
    photo = write_image(tmp_path / "in" / "a.png", astronaut)
    res = CliRunner().invoke(cli, ["apply", str(photo), "-m", str(model), "--backend", backend,
                                   "-o", str(tmp_path / "out")])
    _one_line_error(res, str(model), "does not match its region")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option, value", [("--lr", "nan"), ("--lr", "-1"), ("--lambda-l1", "inf"),
                                           ("--log-every", "0"), ("--batch-size", "0"),
                                           ("--effect", "judge")])
def test_numbers_out_of_range_are_refused_before_anything_is_written(pairs, tmp_path, option, value):
    res = _train(pairs, tmp_path / "run", option, value)
    assert res.exit_code == 2 and "Invalid value for" in res.output and option in res.output, res.output
    assert "Traceback" not in res.output and not (tmp_path / "run").exists()


def test_a_run_that_diverges_writes_no_model(pairs, tmp_path):
    """A learning rate far too large makes every weight nan: one line, exit 1, and no model
    file that would paint black patches into photos."""
    _one_line_error(_train(pairs, tmp_path / "run", "--lr", "1e30"), "training diverged", "no model written")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_resume_and_overwrite_together_are_refused(pairs, tmp_path):
    res = _train(pairs, tmp_path / "run", "--resume", "--overwrite")
    assert res.exit_code == 2 and "give one" in res.output and not (tmp_path / "run").exists()


def test_a_run_shorter_than_log_every_still_logs_its_last_losses(pairs, tmp_path):
    assert _train(pairs, tmp_path / "run", "--log-every", "100").exit_code == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert len(train) == 1 and train[0]["step"] == 9 and train[0]["G_L1"] > 0  # 3 epochs x 3 steps
