"""Training: data in memory, augmentation, the GAN step, the run folder, resume, DDP, the CLI.

Everything runs a tiny U-Net (ngf 8, 5 levels) on 64x32 pairs the test draws itself.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from eyeedit.cli.main import cli
from eyeedit.data.loader import PairSet, augment_all, flip_crops, load_pairs
from eyeedit.data.pairs import DatasetError, DatasetWriter, write_pair
from eyeedit.model.networks import DiscriminatorConfig, GeneratorConfig
from eyeedit.model.store import ModelError, read_metadata
from eyeedit.model.tensors import images_to_tensor, tensor_to_images
from eyeedit.model.weights import load_generator, save_model
from eyeedit.regions import region_spec
from eyeedit.training.config import TrainConfig, make_config
from eyeedit.training.runtime import Runtime, _pick_precision, cpu_supports_bf16, setup_runtime
from eyeedit.training.state import build_state
from eyeedit.training.train import make_batch, train, train_step

W, H = 64, 32
TINY = ["--ngf", "8", "--ndf", "8", "--epochs", "2", "--decay-epochs", "1", "--batch-size", "2",
        "--checkpoint-every", "2", "--log-every", "1", "--device", "cpu", "--precision", "fp32"]
TOTAL_STEPS = 9  # 3 epochs x ceil(6 train pairs / batch 2)


def _pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random image and its edit (colour inversion plus a dark band: learnable)."""
    small = rng.integers(0, 256, (4, 8, 3), dtype=np.uint8)
    a = np.asarray(torch.nn.functional.interpolate(
        torch.from_numpy(small).permute(2, 0, 1)[None].float(), size=(H, W), mode="bilinear",
        align_corners=False)[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8))
    b = 255 - a
    b[12:18] //= 3
    return a, b


def make_dataset(root: Path, n_train: int = 6, n_val: int = 2) -> Path:
    rng = np.random.default_rng(0)
    writer = DatasetWriter(root, {"made_by": "test_train"})
    for i in range(n_train + n_val):
        split = "val" if i < n_val else "train"
        write_pair(root, split, f"p{i}", *_pair(rng))
        writer.record({"key": f"p{i}", "status": "ok", "split": split})
    writer.finish(region_spec("eyes", (W, H)), effect="invert")
    return root


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("pairs") / "pairs")


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, pairs_dir) -> Path:
    """One uninterrupted CLI run that several tests inspect."""
    out = tmp_path_factory.mktemp("runs") / "ref"
    result = CliRunner().invoke(cli, ["train", str(pairs_dir), "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    return out


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def _records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


# ----------------------------------------------------------------------------- data

def test_image_tensor_round_trip():
    images = np.random.default_rng(1).integers(0, 256, (2, H, W, 3), dtype=np.uint8)
    t = images_to_tensor(images)
    assert t.shape == (2, 3, H, W) and t.dtype == torch.float32
    assert t.min() >= -1 and t.max() <= 1
    assert np.array_equal(tensor_to_images(t), images)
    grey = images_to_tensor(images[0], channels=1)
    assert grey.shape == (1, 1, H, W)
    assert tensor_to_images(grey).shape == (1, H, W, 3)
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor(images.astype(np.float32))


def test_augment_moves_a_and_b_together():
    base = images_to_tensor(np.random.default_rng(2).integers(0, 256, (8, H, W, 3), dtype=np.uint8))
    gen = torch.Generator().manual_seed(0)
    a, b = augment_all([base, base.clone()], gen, jitter=1.2, flip=True)
    assert a.shape == base.shape and torch.equal(a, b)
    assert not torch.equal(a, base)
    same = augment_all([base, base.clone()], gen, jitter=1.0, flip=False)
    assert torch.equal(same[0], base)
    a, _ = augment_all([base, base.clone()], torch.Generator().manual_seed(3), jitter=1.0, flip=True)
    flipped = [torch.equal(a[i], base[i].flip(-1)) for i in range(8)]
    assert any(flipped) and not all(flipped)


def test_flipping_uint8_crops_is_augment_all_without_jitter_to_the_bit():
    rng = np.random.default_rng(4)
    crops = [torch.from_numpy(rng.integers(0, 256, (8, H, W, c), dtype=np.uint8)) for c in (3, 3, 1)]
    flipped = flip_crops(crops, torch.Generator().manual_seed(7))
    as_float = [c.permute(0, 3, 1, 2).float() for c in crops]
    expected = augment_all(as_float, torch.Generator().manual_seed(7), jitter=1.0, flip=True)
    assert any(not torch.equal(f, c) for f, c in zip(flipped, crops))  # some samples were mirrored
    for f, e in zip(flipped, expected):
        assert f.dtype == torch.uint8 and torch.equal(f.permute(0, 3, 1, 2).float(), e)


@pytest.mark.parametrize("jitter", [1.0, 1.2])
def test_a_batch_is_the_crops_augmented_alike_in_the_runtime_layout(jitter):
    """make_batch: the same values as images_to_tensor + augment_all (A, B and the mask), from
    the same random stream, as channels-last float maps where the runtime asks for them."""
    rng = np.random.default_rng(5)
    a, b = (torch.from_numpy(rng.integers(0, 256, (6, H, W, 3), dtype=np.uint8)) for _ in range(2))
    mask = torch.from_numpy(rng.integers(0, 256, (6, H, W), dtype=np.uint8))
    pairs, idx = PairSet(a, b, tuple("abcdef"), mask), [4, 1, 3]
    cfg = TrainConfig(size=(W, H), generator=GeneratorConfig(ngf=8, depth=3, alpha=True),
                      discriminator=DiscriminatorConfig(ndf=8), jitter=jitter)
    rt = Runtime(torch.device("cpu"), "fp32", channels_last=True)
    state = build_state(cfg, rt)
    state.aug_rng.manual_seed(11)
    got = make_batch(pairs, idx, state, cfg, rt)
    tensors = [images_to_tensor(a[idx]), images_to_tensor(b[idx]), mask[idx].unsqueeze(1).float() / 255]
    expected = augment_all(tensors, torch.Generator().manual_seed(11), jitter, True)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and torch.equal(g, e)
        assert g.is_contiguous(memory_format=torch.channels_last)
    assert got[0].min() >= -1 and got[0].max() <= 1 and got[2].min() >= 0 and got[2].max() <= 1


def test_load_pairs(pairs_dir):
    data = load_pairs(pairs_dir)
    assert data.train.a.shape == (6, H, W, 3) and data.train.a.dtype == torch.uint8
    assert data.val.b.shape == (2, H, W, 3) and data.size == (W, H) and data.channels == (3, 3)
    assert data.summary()["effect"] == "invert"


def test_load_pairs_names_the_bad_file(tmp_path):
    root = make_dataset(tmp_path / "pairs", n_train=2, n_val=0)
    bad = root / "train" / "B" / "p0.png"
    from eyeedit.imageio import write_image

    write_image(bad, np.zeros((H, W + 2, 3), np.uint8))
    with pytest.raises(DatasetError, match="p0.png: is 66x32"):
        load_pairs(root)


# ----------------------------------------------------------------------------- the step

def _cfg(data, **kw) -> TrainConfig:
    return make_config(data, ngf=8, ndf=8, **{"epochs": 1, "decay_epochs": 0, **kw})


def test_tiny_model_overfits_four_pairs(pairs_dir):
    data = load_pairs(pairs_dir)
    cfg = _cfg(data, lr=2e-3, batch_size=4, jitter=1.0, flip=False)
    rt = setup_runtime("cpu", "fp32")
    state = build_state(cfg, rt)
    a, b = (images_to_tensor(t[:4]) for t in (data.train.a, data.train.b))
    l1 = [train_step(state, a, b, cfg, rt)["G_L1"].item() for _ in range(30)]
    assert all(np.isfinite(l1))
    assert np.mean(l1[-3:]) < 0.35 * l1[0]


@pytest.mark.parametrize("gan_loss", ["lsgan", "hinge"])
def test_other_losses_step(pairs_dir, gan_loss):
    data = load_pairs(pairs_dir)
    cfg = _cfg(data, gan_loss=gan_loss)
    rt = setup_runtime("cpu", "fp32")
    state = build_state(cfg, rt)
    before = [p.clone() for p in state.d.parameters()]
    losses = train_step(state, *(images_to_tensor(t[:2]) for t in (data.train.a, data.train.b)), cfg, rt)
    assert set(losses) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert any(not torch.equal(p, q) for p, q in zip(before, state.d.parameters()))


def test_bf16_autocast_step_on_cpu(pairs_dir):
    data = load_pairs(pairs_dir)
    cfg = _cfg(data)
    rt = setup_runtime("cpu", "bf16")
    assert rt.amp_dtype == torch.bfloat16
    state = build_state(cfg, rt)
    losses = train_step(state, *(images_to_tensor(t[:1]) for t in (data.train.a, data.train.b)), cfg, rt)
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(p.dtype == torch.float32 for p in state.g.parameters())  # weights stay fp32
    # activations channels_last; weights contiguous on a CPU (fused Adam copies any others)
    assert rt.memory_format == torch.channels_last and rt.small_convs and rt.fold_resize
    assert all(p.is_contiguous() for net in (state.g, state.d) for p in net.parameters())


def test_weights_are_channels_last_only_on_gpus():
    from eyeedit.training.runtime import Runtime

    assert Runtime(torch.device("cuda"), "bf16", True).param_memory_format == torch.channels_last
    assert Runtime(torch.device("cpu"), "bf16", True).param_memory_format == torch.contiguous_format
    assert Runtime(torch.device("cuda"), "fp32", False).param_memory_format == torch.contiguous_format


def test_precision_choice():
    cpu = torch.device("cpu")
    assert _pick_precision("auto", cpu) == ("bf16" if cpu_supports_bf16() else "fp32")
    assert _pick_precision("fp32", cpu) == "fp32"
    with pytest.raises(ValueError, match="fp16 training is for GPUs"):
        setup_runtime("cpu", "fp16")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            setup_runtime("cuda", "auto")


def test_train_config_round_trip_and_checks(pairs_dir):
    cfg = _cfg(load_pairs(pairs_dir), gan_loss="hinge")
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="multiples of 2\\*\\*5 = 32"):
        TrainConfig(size=(64, 40), generator=GeneratorConfig(depth=5))
    with pytest.raises(ValueError, match="in_channels must be 6"):
        TrainConfig(size=(64, 32), generator=GeneratorConfig(depth=5),
                    discriminator=DiscriminatorConfig(in_channels=4))


def test_lr_schedule_constant_then_linear():
    cfg = TrainConfig(size=(64, 32), generator=GeneratorConfig(depth=5), epochs=2, decay_epochs=3)
    factors = [cfg.lr_factor(e) for e in range(5)]
    assert factors == pytest.approx([1, 1, 0.75, 0.5, 0.25])


# ----------------------------------------------------------------------------- the run folder

def test_run_writes_everything(reference_run):
    run = reference_run
    meta = read_metadata(run / "model.safetensors")
    for key in ("format", "effect", "generator", "region", "size", "channels", "normalization",
                "data", "metrics", "training"):
        assert key in meta
    assert meta["size"] == [W, H] and meta["channels"] == {"in": 3, "out": 3}
    assert meta["training"]["steps"] == TOTAL_STEPS and meta["training"]["precision"] == "fp32"
    # the model file says what trained it and when (speeds differ widely between CPUs)
    from eyeedit.training.runtime import processor_name
    assert meta["training"]["hardware"] == processor_name() != ""
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", meta["training"]["finished"])
    assert meta["training"]["l1_scale"] == "0-1"  # what its metrics' L1 is measured on
    assert set(meta["metrics"]) == {"l1", "psnr", "ssim"}
    assert [r["epoch"] for r in _records(run, "val")] == [1, 2, 3]
    assert [r["step"] for r in _records(run, "train")] == list(range(1, TOTAL_STEPS + 1))
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"epoch_00{i}.png" for i in (1, 2, 3)]
    from eyeedit.imageio import read_image

    grid = read_image(run / "samples" / "epoch_003.png")
    assert grid.shape[0] > 2 * H and grid.shape[1] > 3 * W  # 2 val rows x (input|output|target)
    assert read_image(run / "curves.png").shape[0] > 100
    assert len(list((run / "checkpoints").iterdir())) == 3  # --keep-checkpoints default
    assert json.loads((run / "config.json").read_text())["generator"]["ngf"] == 8


def test_model_loads_without_training_code(reference_run):
    code = textwrap.dedent(f"""
        import sys, torch
        from eyeedit.model.weights import load_generator
        g, meta = load_generator({str(reference_run / 'model.safetensors')!r})
        with torch.no_grad():
            out = g(torch.zeros(1, 3, {H}, {W}))
        assert out.shape == (1, 3, {H}, {W}) and out.abs().max() <= 1
        assert not any(m in sys.modules for m in ("eyeedit.training.train", "eyeedit.training.checkpoints")), "train imported"
        print(meta["effect"])
    """)
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ref"


def test_load_generator_rejects_mismatched_weights(reference_run, tmp_path):
    meta = read_metadata(reference_run / "model.safetensors")
    tensors = _weights(reference_run)
    wider = dict(meta, generator={**meta["generator"], "ngf": 16})
    save_model(tmp_path / "wider.safetensors", tensors, wider)
    with pytest.raises(ModelError, match="wider.safetensors: weights do not match .*wrong shape"):
        load_generator(tmp_path / "wider.safetensors")
    partial = {k: v for k, v in tensors.items() if not k.startswith("down.0.")}
    save_model(tmp_path / "partial.safetensors", partial, meta)
    with pytest.raises(ModelError, match="missing down.0"):
        load_generator(tmp_path / "partial.safetensors")
    save_model(tmp_path / "badcfg.safetensors", tensors, dict(meta, generator={"norm": "group"}))
    with pytest.raises(ModelError, match="bad generator config"):
        load_generator(tmp_path / "badcfg.safetensors")


def test_seeded_runs_reproduce(pairs_dir, tmp_path):
    data = load_pairs(pairs_dir)
    cfg = _cfg(data, epochs=2, decay_epochs=0, batch_size=2, seed=7)
    rt = setup_runtime("cpu", "fp32")
    runs = [train(pairs_dir, tmp_path / name, cfg, rt, data=data) for name in "ab"]
    wa, wb = (_weights(tmp_path / name) for name in "ab")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    other = train(pairs_dir, tmp_path / "c", _cfg(data, epochs=2, decay_epochs=0, batch_size=2, seed=8),
                  rt, data=data)
    assert runs[0].metrics != other.metrics


KILLER = """
import os, signal, sys
import eyeedit.training.train as T
step_fn = T.train_step
def step_then_die(state, *args, **kwargs):
    if state.step == {kill_at}:
        os.kill(os.getpid(), signal.SIGKILL)
    return step_fn(state, *args, **kwargs)
T.train_step = step_then_die
from eyeedit.cli.main import cli
cli({args!r}, prog_name="eyeedit")
"""


def test_resume_after_sigkill_matches_uninterrupted_run(reference_run, pairs_dir, tmp_path):
    out = tmp_path / "killed"
    args = ["train", str(pairs_dir), "--out", str(out), *TINY]
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(kill_at=5, args=args))
    died = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, timeout=300)
    assert died.returncode == -9
    assert not (out / "model.safetensors").exists()
    assert max(p.name for p in (out / "checkpoints").iterdir()) == "step_00000004.safetensors"
    # what a kill during an atomic write leaves, and a hidden file of the user's nested deeper
    leftovers = [out / "checkpoints" / ".step_00000005.safetensors.k2j4.tmp", out / ".config.json.x1.tmp"]
    for f in leftovers:
        f.write_bytes(b"half a file")
    (out / "notes").mkdir()
    (out / "notes" / ".mine.tmp").write_text("not eyeedit's")
    resumed = CliRunner().invoke(cli, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert not any(f.exists() for f in leftovers) and (out / "notes" / ".mine.tmp").exists()
    assert read_metadata(out / "model.safetensors")["training"]["steps"] == TOTAL_STEPS
    ref, got = _weights(reference_run), _weights(out)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    # The logged curve continues where it stopped: no repeated or missing steps, same losses.
    assert _records(out, "train") == [
        {**r, "images_per_s": s["images_per_s"]} for r, s in zip(_records(reference_run, "train"),
                                                               _records(out, "train"))]


@pytest.mark.skipif(sys.platform == "win32", reason="gloo DDP test runs on Linux/macOS")
def test_ddp_two_processes_stay_in_sync(pairs_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--standalone", "-m", "eyeedit", "train",
           str(pairs_dir), "--out", str(out), *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    training = read_metadata(out / "model.safetensors")["training"]
    sums = training["replica_checksums"]
    assert training["world_size"] == 2 and len(sums) == 2 and sums[0] == sums[1]
    # 6 pairs over 2 ranks with batch 2: 2 steps per epoch, logged once (by rank 0).
    assert [r["step"] for r in _records(out, "train")] == list(range(1, 7))
    assert done.stdout.count("Training outputs") == 1


# ----------------------------------------------------------------------------- the CLI

def _run(args: list[str]):
    return CliRunner().invoke(cli, ["train", *args])


def test_cli_missing_dataset(tmp_path):
    result = _run([str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "not an eyeedit dataset" in result.output
    assert not (tmp_path / "r").exists()


def test_cli_depth_that_does_not_fit(pairs_dir, tmp_path):
    result = _run([str(pairs_dir), "--out", str(tmp_path / "r"), "--depth", "6"])
    assert result.exit_code == 2 and "multiples of 2**6 = 64" in result.output
    assert not (tmp_path / "r").exists()


def test_cli_refuses_to_clobber_or_resume_wrongly(reference_run, pairs_dir, tmp_path):
    again = _run([str(pairs_dir), "--out", str(reference_run), *TINY])
    assert again.exit_code == 1 and "--resume" in again.output
    # no checkpoint yet (e.g. killed before the first one): --resume starts from the beginning
    fresh = _run([str(pairs_dir), "--out", str(tmp_path / "empty"), *TINY, "--resume"])
    assert fresh.exit_code == 0, fresh.output
    assert (tmp_path / "empty" / "model.safetensors").is_file()
    changed = _run([str(pairs_dir), "--out", str(reference_run), *TINY, "--lr", "0.1", "--resume"])
    assert changed.exit_code == 1 and "different lr" in changed.output


def test_cli_effect_installs_into_user_store(pairs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    args = [str(pairs_dir), "--out", str(tmp_path / "r"), "--ngf", "8", "--ndf", "8", "--epochs", "1",
            "--decay-epochs", "0", "--effect", "inverted", "--no-flip", "--device", "cpu"]
    result = _run(args)
    assert result.exit_code == 0, result.output
    installed = tmp_path / "xdg" / "eyeedit" / "models" / "inverted.safetensors"
    assert read_metadata(installed)["effect"] == "inverted"
    assert "instead of the one shipped" not in result.output
    # a name a shipped model has: the user is told which one --effect now uses
    result = _run([*args[:-4], "glasses", "--no-flip", "--device", "cpu", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "glasses now uses this model instead of the one shipped" in " ".join(result.output.split())


def test_cli_help_lists_the_options():
    result = CliRunner().invoke(cli, ["train", "--help"])
    assert result.exit_code == 0
    for opt in ("--epochs", "--decay-epochs", "--precision", "--device", "--resume", "--effect",
                "--gan-loss", "--discriminator", "torchrun"):
        assert opt in result.output


def test_tensorboard_logs_scalars_and_sample_grids(pairs_dir, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(pairs_dir), "--out", str(out), *TINY, "--tensorboard"])
    assert result.exit_code == 0, result.output
    board = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    board.Reload()
    tags = board.Tags()
    for tag in ("train/G_L1", "train/G_GAN", "train/images_per_s", "val/psnr", "val/l1"):
        assert tag in tags["scalars"], tags
    l1 = [e.value for e in board.Scalars("train/G_L1")]
    assert l1 == [r["G_L1"] for r in _records(out, "train")]  # the same numbers as metrics.jsonl
    assert len(board.Images("samples")) == len(list((out / "samples").glob("*.png")))


def test_curves_are_drawn_from_the_metrics(reference_run):
    from eyeedit.imageio import read_image
    from eyeedit.training.plots import PANELS

    curves = read_image(reference_run / "curves.png")
    assert curves.ndim == 3 and curves.shape[0] > 400 and curves.shape[1] > 600
    assert len(PANELS) == 6 and (curves < 250).mean() > 0.01  # axes, ticks and lines were drawn
    # every panel plots its series from metrics.jsonl, and the lines change the picture: the
    # same grid drawn without records ("no data" panels) differs from it
    from eyeedit.training.plots import _series, plot_curves

    records = _records(reference_run, "train") + _records(reference_run, "val")
    for kind, key, _, _ in PANELS:
        steps, values = _series(records, kind, key)
        assert len(steps) > 0 and np.isfinite(values).all(), (kind, key)
    empty = plot_curves([], reference_run.parent / "empty-curves.png")
    assert empty.shape == curves.shape and np.abs(empty.astype(int) - curves).max(axis=2).mean() > 0.005


def test_training_reports_l1_on_the_scale_eval_does(reference_run, pairs_dir):
    """The model's validation L1 and `eyeedit eval`'s on the same pairs are one figure (eval's
    outputs are rounded to 8 bits, so they agree to a few thousandths, not exactly)."""
    meta = read_metadata(reference_run / "model.safetensors")
    res = CliRunner().invoke(cli, ["eval", str(reference_run / "model.safetensors"), str(pairs_dir), "--json"])
    assert res.exit_code == 0, res.output
    evaluated = json.loads(res.stdout)["results"]["model"]
    assert meta["metrics"]["l1"] == pytest.approx(evaluated["l1"], abs=0.005)
    assert meta["metrics"]["psnr"] == pytest.approx(evaluated["psnr"], abs=0.5)


def test_eval_scores_each_checkpoint_of_the_run(reference_run, pairs_dir, tmp_path):
    """`eval --checkpoints` reads the generator out of each training checkpoint: the last one
    holds the final weights, so it scores exactly as the model file; a model of another shape
    is told apart from the run's checkpoints in one line."""
    ckpts = reference_run / "checkpoints"
    res = CliRunner().invoke(cli, ["eval", str(reference_run / "model.safetensors"), str(pairs_dir),
                                   "--checkpoints", str(ckpts), "--json"])
    assert res.exit_code == 0, res.output
    results = json.loads(res.stdout)["results"]
    steps = sorted(k for k in results if k.startswith("checkpoint "))
    assert len(steps) == len(list(ckpts.glob("step_*.safetensors"))) >= 2
    assert results[steps[-1]]["l1"] == pytest.approx(results["model"]["l1"], abs=1e-6)
    assert results[steps[0]]["l1"] != pytest.approx(results["model"]["l1"], abs=1e-6)  # an earlier step
    from eyeedit.model.networks import GeneratorConfig, build_generator
    from eyeedit.model.weights import save_generator

    meta = read_metadata(reference_run / "model.safetensors")
    other = GeneratorConfig.from_dict({**meta["generator"], "ngf": 4})
    wider = save_generator(tmp_path / "other.safetensors", build_generator(other).eval(), {**meta, "generator": other.to_dict()})
    res = CliRunner().invoke(cli, ["eval", str(wider), str(pairs_dir), "--checkpoints", str(ckpts)])
    assert res.exit_code == 1 and "not a checkpoint of this model" in res.output and "Traceback" not in res.output
