"""Reliability: bad inputs, kills, unwritable outputs and hostile model files.

Every command that takes images is run over the generated bad-input corpus (tests/badcorpus.py):
each bad file must get a one-line reason naming it, the run must finish with the exit code its
--help documents, no traceback, no half-written output, and the inputs must be byte-identical.
`prepare`, `synth` and `train` are killed with SIGKILL at random moments and run again; the
result must equal an uninterrupted run. The machine running the tests is root, which ignores
file permissions, so an unwritable output is made by putting a file where a folder must be
(ENOTDIR, honest for any user) and a full disk by a file-size limit (RLIMIT_FSIZE: the kernel
refuses every write past it, as a full disk does).
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from badcorpus import checksums, make_corpus
from click.testing import CliRunner
from test_apply import _model_file

from eyeedit.cli.main import cli
from eyeedit.data.samples import astronaut, moving_face_video, rotate, write_video
from eyeedit.imageio import ImageError, read_image, write_image

# ---------------------------------------------------------------------------------------------
# Shared checks


def _env(tmp: Path) -> dict[str, str]:
    """Environment for eyeedit runs: caches and stores inside ``tmp`` (never the user's)."""
    return {"XDG_CACHE_HOME": str(tmp / "cache"), "XDG_DATA_HOME": str(tmp / "data"),
            "EYEEDIT_MODELS": str(tmp / "no-models")}


@pytest.fixture
def env(tmp_path, monkeypatch):
    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)
    return tmp_path


def _invoke(args: list[str]):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    # A bug shows as an exception other than SystemExit (click's normal way out).
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    assert "Traceback" not in res.output
    return res


def assert_one_line_reason(output: str, path: Path, reason: str) -> None:
    """Some single line of ``output`` names ``path`` and gives ``reason``."""
    lines = [line for line in output.splitlines() if str(path) in line]
    assert any(reason in line for line in lines), f"no line names {path} with {reason!r}:\n{output}"


def assert_no_partial_files(root: Path) -> None:
    """No temporary leftovers, and every image written under ``root`` decodes."""
    names = [p.name for p in root.rglob("*")]
    assert not [n for n in names if n.endswith(".tmp") or ".partial" in n], names
    for p in root.rglob("*.png"):
        assert read_image(p).size > 0


def _bad(cases: dict[str, str]) -> dict[str, str]:
    return {name: why for name, why in cases.items() if why != "ok"}


# ---------------------------------------------------------------------------------------------
# 1. The bad-input corpus through every image-taking command


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus") / "faces"
    return folder, make_corpus(folder)


def _records(root: Path) -> dict[str, dict]:
    return {r["key"]: r for r in map(json.loads, (root / "manifest.jsonl").read_text().splitlines())}


def _check_dataset(root: Path, records: dict[str, dict]) -> None:
    """Every ok record has its two crops; nothing else was written; nothing half-written."""
    assert_no_partial_files(root)
    crops = sorted(p.relative_to(root).as_posix() for p in root.glob("*/[AB]/**/*.png"))
    ok = [r for r in records.values() if r["status"] == "ok"]
    assert crops == sorted(f"{r['split']}/{side}/{r['key']}.png" for r in ok for side in "AB")


@pytest.mark.parametrize("bad_side", ["before", "after"])
def test_prepare_over_corpus(env, corpus, bad_side):
    _, cases = corpus
    raw = env / "raw"
    good_side = "after" if bad_side == "before" else "before"
    make_corpus(raw / bad_side)
    face = astronaut()
    for name in cases:  # a readable partner for every corpus file, so each bad file is reached
        write_image((raw / good_side / name).with_suffix(".png"), face)
    before = checksums(raw)
    res = _invoke(["prepare", raw, env / "out", "--workers", "1"])
    assert res.exit_code == 0  # documented: 0 when at least one pair was prepared
    records = _records(env / "out")
    for name, why in cases.items():
        rec = records[Path(name).stem]
        if why == "ok":
            assert rec["status"] != "unreadable", rec
        else:
            assert rec["status"] == "unreadable" and why in rec["reason"], rec
            assert_one_line_reason(res.output, raw / bad_side / name, why)
    assert sum(r["status"] == "ok" for r in records.values()) >= 5
    _check_dataset(env / "out", records)
    assert checksums(raw) == before


def test_synth_over_corpus(env, corpus):
    folder, cases = corpus
    before = checksums(folder)
    res = _invoke(["synth", folder, env / "out", "--effect", "eye-color", "--workers", "1"])
    assert res.exit_code == 0
    records = _records(env / "out")
    for name, why in cases.items():
        key = Path(name).stem
        if why == "ok":
            assert key not in records or records[key]["status"] != "unreadable"
        else:
            assert records[key]["status"] == "unreadable" and why in records[key]["reason"]
            assert_one_line_reason(res.output, folder / name, why)
    # the readable faces are all synthesized, whatever their encoding
    made = {r["source"] for r in records.values() if r["status"] == "ok"}
    for name in ("cmyk.jpg", "16bit.png", "grayscale.jpg", "exif-rotated.jpg", "animated.gif",
                 "visage-éàü-顔.png", "locked.png"):
        if cases[name] == "ok":
            assert (folder / name).as_posix() in made, name
    _check_dataset(env / "out", records)
    assert checksums(folder) == before


@pytest.mark.parametrize("command", ["prepare", "synth"])
def test_dataset_commands_exit_1_when_nothing_is_usable(env, command):
    """Only bad files: every one is reported, and the documented exit code for no pair is 1."""
    folders = [env / "raw" / "before", env / "raw" / "after"] if command == "prepare" else [env / "all"]
    for folder in folders:
        cases = _bad(make_corpus(folder))
        for name in set(os.listdir(folder)) - set(cases):
            (folder / name).unlink()
    if command == "prepare":
        args = ["prepare", env / "raw", env / "out", "--workers", "1"]
    else:
        args = ["synth", env / "all", env / "out", "--effect", "makeup", "--workers", "1"]
    res = _invoke(args)
    assert res.exit_code == 1
    assert "no pair could be" in res.output and "report.csv" in res.output
    for name, why in cases.items():
        assert_one_line_reason(res.output, folders[0] / name, why)
    assert not list((env / "out").glob("*/[AB]/*.png"))


def test_apply_over_corpus(env, corpus):
    folder, cases = corpus
    model = _model_file(env / "tiny.safetensors")
    before = checksums(folder)
    out = env / "out"
    res = _invoke(["apply", folder, "-m", model, "-o", out])
    assert res.exit_code == 1  # documented: 1 when some inputs failed
    for name, why in _bad(cases).items():
        assert_one_line_reason(res.output, folder / name, why)
    written = {p.relative_to(out).as_posix() for p in out.rglob("[!.]*") if p.is_file()}
    readable = {n for n, why in cases.items() if why == "ok"}
    # faceless images (one pixel, a face made transparent) are reported, every other is edited
    faceless = readable - written
    assert written <= readable and len(written) >= 7
    for name in faceless:
        assert_one_line_reason(res.output, folder / name, "no face found")
    for name in written:
        assert read_image(out / name).shape == read_image(folder / name).shape
    assert_no_partial_files(out)
    assert checksums(folder) == before


def test_apply_single_missing_or_bad_file_exits_1(env, corpus):
    folder, _ = corpus
    model = _model_file(env / "tiny.safetensors")
    for path, why in ((env / "missing.jpg", "no such file"), (folder / "text.jpg", "not an image")):
        res = _invoke(["apply", path, "-m", model, "-o", env / "out.jpg"])
        assert res.exit_code == 1
        assert_one_line_reason(res.output, path, why)
        assert not (env / "out.jpg").exists()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A good short clip and its broken relatives."""
    root = tmp_path_factory.mktemp("videos")
    frames, _ = moving_face_video(astronaut(), 8, size=(320, 240), seed=1)
    good = write_video(root / "good.mp4", frames, fps=30)
    data = good.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 3])  # the index (moov) is at the end
    (root / "text.mp4").write_text("this is not a video\n")
    (root / "zero-byte.mp4").write_bytes(b"")
    (root / "directory.mp4").mkdir()
    return root


@pytest.mark.parametrize("name, reason", [
    ("truncated.mp4", "cannot read video"),
    ("text.mp4", "cannot read video"),
    ("zero-byte.mp4", "cannot read video"),
    ("directory.mp4", "is a directory"),
    ("missing.mp4", "no such video file"),
])
def test_preview_refuses_bad_videos(env, videos, name, reason):
    model = _model_file(env / "tiny.safetensors")
    before = checksums(videos)
    out = env / "rec" / "out.avi"
    res = _invoke(["preview", "--video", videos / name, "-m", model, "--headless", "--no-sync",
                   "--output", out])
    assert res.exit_code == 1  # documented: 1 when the video cannot be used
    assert_one_line_reason(res.output, videos / name, reason)
    assert not out.exists() and not list(env.rglob("*.partial*"))
    assert checksums(videos) == before


def test_preview_garbled_video_finishes_cleanly(env, videos):
    """Corrupt bytes in the middle of a clip: frames that decode are processed, no traceback,
    and the recording is complete (renamed into place) or absent."""
    data = bytearray((videos / "good.mp4").read_bytes())
    rng = np.random.default_rng(0)
    data[len(data) // 4: len(data) // 2] = rng.integers(0, 256, len(data) // 2 - len(data) // 4, np.uint8).tobytes()
    garbled = env / "garbled.mp4"
    garbled.write_bytes(bytes(data))
    out = env / "out.avi"
    res = _invoke(["preview", "--video", garbled, "-m", _model_file(env / "tiny.safetensors"),
                   "--headless", "--no-sync", "--output", out])
    assert res.exit_code in (0, 1)
    if out.exists():
        cap = cv2.VideoCapture(str(out))
        assert cap.read()[0]
        cap.release()
    assert not list(env.rglob("*.partial*"))


def test_cli_subprocess_prints_only_reasons(env, corpus):
    """The real console script: stderr holds one line per bad file and no native log noise."""
    folder, cases = corpus
    res = subprocess.run([sys.executable, "-m", "eyeedit", "synth", str(folder), str(env / "out"),
                          "--effect", "makeup", "--workers", "1"], capture_output=True, text=True,
                         env={**os.environ, **_env(env), "COLUMNS": "300"}, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("skipped ")]
    for name, why in _bad(cases).items():
        assert_one_line_reason("\n".join(warnings), folder / name, why)
    # anything else on stderr is ours: the progress bar and the summary line
    other = [line for line in res.stderr.splitlines() if line.strip() and not line.startswith("skipped ")]
    assert all("Synthesizing" in line or "train +" in line for line in other), other


# ---------------------------------------------------------------------------------------------
# 2. Killed at random moments, run again: same result as an uninterrupted run

N_FACES = 10


@pytest.fixture(scope="module")
def kill_data(tmp_path_factory):
    """Ten small distinct faces (plus a face-less and an unreadable file) as RAW and FACES."""
    root = tmp_path_factory.mktemp("killdata")
    base = cv2.resize(astronaut(), (320, 320), interpolation=cv2.INTER_AREA)
    for i in range(N_FACES):
        img = rotate(base, -12 + 24 * i / (N_FACES - 1), (160, 140))
        for folder in ("raw/before", "raw/after", "faces"):
            write_image(root / folder / f"p{i:02d}.png", img)
    for folder in ("raw/before", "raw/after", "faces"):
        write_image(root / folder / "zz-noface.png", np.full((64, 64, 3), 128, np.uint8))
        (root / folder / "zz-broken.jpg").write_bytes(b"\xff\xd8 not really")
    return root


def _cmd(kind: str, data: Path, out: Path) -> list[str]:
    if kind == "prepare":
        return ["prepare", str(data / "raw"), str(out), "--val-fraction", "0.3", "--workers", "2"]
    return ["synth", str(data / "faces"), str(out), "--effect", "glasses", "--variants", "2",
            "--min-eye-distance", "16", "--val-fraction", "0.3", "--workers", "2"]


def _spawn(args: list[str], tmp: Path, **kw) -> subprocess.Popen:
    # Own session, so the whole group (pool workers, fork server) can be killed at once.
    # One OpenMP thread: on a loaded 2-core machine torch's spinning threads make a tiny
    # training step ~20x slower, and thread count does not change what a kill can break.
    env = {**os.environ, **_env(tmp), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "eyeedit", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kw)


def _finish(args: list[str], tmp: Path, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    proc = _spawn(args, tmp, **kw)
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        _kill_group(proc)
    return subprocess.CompletedProcess(args, proc.returncode, "", err)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _kill_when(proc: subprocess.Popen, ready, delay: float, timeout: float = 120) -> None:
    """SIGKILL the process group ``delay`` seconds after ``ready()`` first holds."""
    end = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.01)
    time.sleep(delay)
    _kill_group(proc)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def uninterrupted(kill_data, tmp_path_factory):
    """{command: checksums of an uninterrupted run's output}."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    sums = {}
    for kind in ("prepare", "synth"):
        res = _finish(_cmd(kind, kill_data, tmp / kind), tmp)
        assert res.returncode == 0, res.stderr
        sums[kind] = checksums(tmp / kind)
    return sums


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["prepare", "synth"])
def test_killed_dataset_run_resumes_to_the_same_result(kind, seed, kill_data, uninterrupted, tmp_path):
    rng = np.random.default_rng(seed + (10 if kind == "synth" else 0))
    out = tmp_path / "out"
    inputs = checksums(kill_data)
    # kill once the manifest has a random number of lines (0: during start-up), a little later
    target, delay = int(rng.integers(0, N_FACES - 2)), float(rng.uniform(0, 0.25))
    # A fast machine can finish the last faces within the delay: then start again from scratch
    # and kill earlier (the last try kills during start-up, which always lands).
    for target, delay in ((target, delay), (target // 2, 0.0), (0, 0.0)):
        shutil.rmtree(out, ignore_errors=True)
        proc = _spawn(_cmd(kind, kill_data, out), tmp_path)
        _kill_when(proc, lambda t=target: _lines(out / "manifest.jsonl") >= t, delay)
        if proc.returncode == -signal.SIGKILL:
            break
    assert proc.returncode == -signal.SIGKILL, "the run ended before the kill: nothing was tested"
    res = _finish(_cmd(kind, kill_data, out), tmp_path)
    assert res.returncode == 0, res.stderr
    assert checksums(out) == uninterrupted[kind]  # same files, same bytes (manifest included)
    assert checksums(kill_data) == inputs


def _tiny_pairs(root: Path, n_train: int = 6, n_val: int = 1) -> Path:
    """A 64x32 paired dataset of random crops, made with the dataset API (no face detection)."""
    from eyeedit.data.pairs import DatasetWriter, write_pair
    from eyeedit.regions import region_spec

    spec = region_spec("eyes", (64, 32))
    writer = DatasetWriter(root, {"command": "test"})
    rng = np.random.default_rng(0)
    for i in range(n_train + n_val):
        split = "train" if i < n_train else "val"
        a = rng.integers(0, 256, (32, 64, 3), np.uint8)
        write_pair(root, split, f"p{i}", a, 255 - a)
        writer.record({"key": f"p{i}", "status": "ok", "split": split})
    writer.finish(spec)
    return root


TRAIN_ARGS = ["--epochs", "2", "--decay-epochs", "1", "--ngf", "4", "--ndf", "4", "--n-layers", "1",
              "--checkpoint-every", "1", "--keep-checkpoints", "2", "--device", "cpu",
              "--precision", "fp32", "--log-every", "1", "--jitter", "1"]
TRAIN_STEPS = 18  # 6 train pairs x 3 epochs at batch size 1


def _train_kill_and_resume(tmp: Path, seed: int) -> Path:
    pairs, run = _tiny_pairs(tmp / "pairs"), tmp / "run"
    rng = np.random.default_rng(seed)
    # kill after a random number of checkpoints: --resume needs at least one
    target, delay = int(rng.integers(1, TRAIN_STEPS - 6)), float(rng.uniform(0, 0.1))
    proc = _spawn(["train", str(pairs), "--out", str(run), *TRAIN_ARGS], tmp)
    _kill_when(proc, lambda: _checkpoint_steps(run) and max(_checkpoint_steps(run)) >= target, delay)
    assert proc.returncode == -signal.SIGKILL, "training ended before the kill: nothing was tested"
    res = _finish(["train", str(pairs), "--out", str(run), *TRAIN_ARGS, "--resume"], tmp)
    assert res.returncode == 0, res.stderr
    return run


def _checkpoint_steps(run: Path) -> list[int]:
    folder = run / "checkpoints"
    names = os.listdir(folder) if folder.is_dir() else []
    return [int(n[5:13]) for n in names if n.startswith("step_") and n.endswith(".safetensors")]


def _check_trained(run: Path) -> None:
    from eyeedit.model.weights import load_generator

    _, meta = load_generator(run / "model.safetensors")
    assert meta["training"]["steps"] == TRAIN_STEPS
    assert max(_checkpoint_steps(run)) == TRAIN_STEPS
    steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
             if r.get("kind") == "train"]
    assert steps == list(range(1, TRAIN_STEPS + 1))  # no step lost or logged twice
    assert_no_partial_files(run)


def test_killed_training_resumes_to_the_final_step(tmp_path):
    _check_trained(_train_kill_and_resume(tmp_path, seed=0))


@pytest.mark.slow  # ~15 s each; the same path as the test above with other kill points
@pytest.mark.parametrize("seed", [1, 2])
def test_killed_training_resumes_more_kill_points(tmp_path, seed):
    """...and on CPU the resumed model is bit-identical to an uninterrupted run's."""
    import torch
    from safetensors.torch import load_file

    run = _train_kill_and_resume(tmp_path, seed)
    _check_trained(run)
    res = _finish(["train", str(tmp_path / "pairs"), "--out", str(tmp_path / "whole"), *TRAIN_ARGS], tmp_path)
    assert res.returncode == 0, res.stderr
    resumed, whole = (load_file(str(r / "model.safetensors")) for r in (run, tmp_path / "whole"))
    assert resumed.keys() == whole.keys()
    assert all(torch.equal(resumed[k], whole[k]) for k in whole)


@pytest.mark.slow  # ~10 s
def test_training_killed_before_its_first_checkpoint_can_be_run_again(tmp_path):
    pairs, run = _tiny_pairs(tmp_path / "pairs"), tmp_path / "run"
    args = ["train", str(pairs), "--out", str(run), *TRAIN_ARGS, "--checkpoint-every", "0"]
    proc = _spawn(args, tmp_path)
    _kill_when(proc, lambda: _lines(run / "metrics.jsonl") >= 1, 0.0)
    assert proc.returncode == -signal.SIGKILL and not _checkpoint_steps(run)
    res = _finish([*args, "--resume"], tmp_path)
    assert res.returncode == 0, res.stderr


# ---------------------------------------------------------------------------------------------
# 3. Outputs that cannot be written: a file in the way, a full disk


@pytest.fixture
def blocked(env):
    """A regular file where the output folder's parent should be (ENOTDIR even for root)."""
    blocker = env / "blocker"
    blocker.write_text("a file, not a folder\n")
    return blocker


def test_output_under_a_file_is_refused(env, blocked, kill_data):
    model = _model_file(env / "tiny.safetensors")
    frames, _ = moving_face_video(astronaut(), 3, size=(320, 240))
    video = write_video(env / "clip.avi", frames)
    face = kill_data / "faces" / "p00.png"
    runs = {
        "prepare": (["prepare", kill_data / "raw", blocked / "out", "--workers", "1"], 2),
        "synth": (["synth", kill_data / "faces", blocked / "out", "--effect", "makeup"], 2),
        "apply-folder": (["apply", face, "-m", model, "-o", blocked / "out"], 1),
        "apply-file": (["apply", face, "-m", model, "-o", blocked / "out.png"], 1),
        "preview": (["preview", "--video", video, "-m", model, "--headless", "--no-sync",
                     "--output", blocked / "out.avi"], 1),
    }
    for name, (args, code) in runs.items():
        res = _invoke(args)
        assert res.exit_code == code, (name, res.output)
        assert f"{blocked} is a file, not a folder" in res.output, (name, res.output)
        assert blocked.read_text() == "a file, not a folder\n"
    assert not list(env.rglob("*.tmp")) and not list(env.rglob("*.partial*"))


def _file_size_limit(limit: int):
    def apply_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply_limit


@pytest.mark.parametrize("kind", ["prepare", pytest.param("synth", marks=pytest.mark.slow)])
def test_full_disk_stops_cleanly_and_resumes(kind, kill_data, uninterrupted, tmp_path):
    """Writes past 40 kB fail (the first crop does): one clear line, exit 1, nothing partial,
    and once there is room again the run resumes to the uninterrupted result."""
    out = tmp_path / "out"
    res = _finish(_cmd(kind, kill_data, out), tmp_path, preexec_fn=_file_size_limit(40_000))
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "File too large" in errors[0] and "run again to resume" in errors[0]
    assert str(out) in errors[0]
    assert_no_partial_files(out)
    res = _finish(_cmd(kind, kill_data, out), tmp_path)
    assert res.returncode == 0, res.stderr
    assert checksums(out) == uninterrupted[kind]


def test_write_image_on_a_full_disk_leaves_nothing(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), np.uint8)  # ~270 kB as PNG
    target = tmp_path / "big.png"
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
    try:
        with pytest.raises(ImageError, match="big.png: cannot write: File too large"):
            write_image(target, noise)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert os.listdir(tmp_path) == []


def test_image_error_survives_a_worker_process():
    err = pickle.loads(pickle.dumps(ImageError("/x/a.png", "empty file")))
    assert str(err) == "/x/a.png: empty file" and err.reason == "empty file"


# ---------------------------------------------------------------------------------------------
# 4. Model files: refuse anything malformed, never unpickle


class _Trap:
    """Unpickling this creates the marker file: proof that something was unpickled."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _safetensors(path: Path, tensors: dict, meta: dict | str | None) -> Path:
    from safetensors.torch import save_file

    text = meta if isinstance(meta, str) or meta is None else json.dumps(meta)
    save_file(tensors, str(path), metadata=None if text is None else {"eyeedit": text})
    return path


def _hostile(kind: str, tmp: Path, marker: Path) -> Path:
    """A model file of one kind of wrongness."""
    import torch

    from eyeedit.model.weights import load_model_file

    path = tmp / f"{kind}.safetensors"
    good = _model_file(tmp / "good.safetensors")
    tensors, meta = load_model_file(good)
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"weights": _Trap(marker)}))
    elif kind == "torch-save":
        torch.save({"state_dict": tensors, "hook": _Trap(marker)}, path)
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
    elif kind == "header-too-long":
        path.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "format":
        _safetensors(path, tensors, {**meta, "format": "eyeedit-model/99"})
    elif kind == "meta-not-json":
        _safetensors(path, tensors, "{not json")
    elif kind == "no-generator":
        _safetensors(path, tensors, {k: v for k, v in meta.items() if k != "generator"})
    elif kind == "bad-generator":
        _safetensors(path, tensors, {**meta, "generator": {**meta["generator"], "ngf": "wide"}})
    elif kind == "bad-region":
        _safetensors(path, tensors, {**meta, "region": {"name": "eyes", "width": "wide"}})
    elif kind == "missing-tensors":
        _safetensors(path, dict(list(tensors.items())[::2]), meta)
    elif kind == "wrong-shapes":
        _safetensors(path, {k: torch.zeros(tuple(s + 1 for s in v.shape)) for k, v in tensors.items()}, meta)
    return path


HOSTILE = ["pickle", "torch-save", "truncated", "header-too-long", "empty", "format", "meta-not-json",
           "no-generator", "bad-generator", "bad-region", "missing-tensors", "wrong-shapes"]


@pytest.mark.parametrize("backend", ["torch", "auto"])
@pytest.mark.parametrize("kind", HOSTILE)
def test_malformed_model_is_refused_in_one_line(env, kind, backend):
    marker = env / "unpickled"
    bad = _hostile(kind, env, marker)
    photo = write_image(env / "in.png", astronaut())
    res = _invoke(["apply", photo, "-m", bad, "-o", env / "out.png", "--backend", backend])
    assert res.exit_code == 1
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and str(bad) in errors[0], res.output
    assert not (env / "out.png").exists()
    assert not marker.exists(), "a model file was unpickled"


@pytest.mark.parametrize("kind", ["pickle", "torch-save", "truncated", "bad-generator", "wrong-shapes"])
def test_malformed_model_in_store_export_and_library(env, kind, monkeypatch):
    from eyeedit import Editor
    from eyeedit.model.store import ModelError
    from eyeedit.model.weights import load_generator

    marker = env / "unpickled"
    store = env / "store"
    store.mkdir()
    bad = _hostile(kind, store, marker)
    monkeypatch.setenv("EYEEDIT_MODELS", str(store))
    listing = _invoke(["models", "--json"])
    assert listing.exit_code == 0  # a broken file does not hide the others
    rows = json.loads(listing.stdout)
    assert "good" in {r["effect"] for r in rows}
    # a file whose header or metadata is unusable is listed as what its name finds, with the
    # reason (weights that do not fit their metadata show only when loaded)
    listed = [r for r in rows if r["path"] == str(bad)]
    if kind in ("bad-generator", "wrong-shapes"):  # header and metadata readable: found when loaded
        assert len(listed) == 1 and "broken" not in listed[0]
    else:
        assert len(listed) == 1 and listed[0]["active"] and str(bad) in listed[0]["broken"]
    exported = _invoke(["export", bad, "--onnx", env / "x.onnx"])
    assert exported.exit_code == 1 and str(bad) in exported.output and not (env / "x.onnx").exists()
    with pytest.raises(ModelError, match=str(bad)):
        load_generator(bad)
    with pytest.raises(ModelError, match=str(bad)):
        Editor.load(bad.stem)
    assert not marker.exists(), "a model file was unpickled"
