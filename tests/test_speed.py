"""Training speed-ups compute the same step; the bench and profile tools report sane figures."""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.util
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from eyeedit.bench import (
    TrainCase,
    bench_training,
    ceiling_probe,
    ceilings,
    step_flops,
    with_shares,
)
from eyeedit.cli.main import cli
from eyeedit.model.networks import (
    DiscriminatorConfig,
    GeneratorConfig,
    build_discriminator,
    build_generator,
)
from eyeedit.training import speed
from eyeedit.training.config import TrainConfig
from eyeedit.training.runtime import plain_runtime, setup_runtime
from eyeedit.training.state import build_state
from eyeedit.training.train import train_step

ROOT = Path(__file__).resolve().parents[1]
TINY = TrainCase("tiny", (64, 32), 5, 2, ngf=8, ndf=8)


def _assert_same_outputs_and_gradients(eager: torch.nn.Module, fast: torch.nn.Module, x: torch.Tensor) -> None:
    torch.manual_seed(1)
    y0 = eager(x)
    torch.manual_seed(1)  # the same dropout masks
    y1 = fast(x)
    torch.testing.assert_close(y1, y0, rtol=1e-4, atol=1e-5)
    y0.square().sum().backward()
    y1.square().sum().backward()
    for (name, p0), p1 in zip(eager.named_parameters(), fast.parameters()):
        # float sums in another order: equal to ~1e-6 of the gradient's largest entry
        assert (p1.grad - p0.grad).abs().max() <= 1e-4 * p0.grad.abs().max() + 1e-7, name
    assert list(fast.state_dict()) == list(eager.state_dict())


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
def test_small_convs_as_gemm_give_the_same_outputs_and_gradients(upsample):
    torch.manual_seed(0)
    eager = build_generator(GeneratorConfig(ngf=8, depth=6, upsample=upsample, residual=upsample == "resize"))
    fast = copy.deepcopy(eager)
    assert speed.small_convs_as_gemm(fast) == 12  # 6 down + 6 up convolutions
    _assert_same_outputs_and_gradients(eager, fast, torch.rand(3, 3, 64, 128) * 2 - 1)


@pytest.mark.parametrize("channels_last", [False, True])
def test_a_small_conv_keeps_its_inputs_memory_format(channels_last):
    torch.manual_seed(0)
    eager = torch.nn.Conv2d(16, 32, 4, stride=2, padding=1)
    fast = copy.deepcopy(eager)
    speed.small_convs_as_gemm(fast)
    x = torch.rand(1, 16, 8, 8)  # 64 positions: the matrix product
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = fast(x)
    torch.testing.assert_close(y, eager(x), rtol=1e-4, atol=1e-5)
    assert y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_folded_resize_levels_give_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    eager = build_generator(GeneratorConfig(ngf=8, depth=5, upsample="resize", residual=True))
    fast = copy.deepcopy(eager)
    assert speed.fold_resize_levels(fast) == 5
    # level inputs from 4x1x2 = 8 positions (not folded) to 4x16x32 (folded)
    _assert_same_outputs_and_gradients(eager, fast, torch.rand(4, 3, 32, 64) * 2 - 1)
    assert speed.fold_resize_levels(build_generator(GeneratorConfig(ngf=8, depth=5))) == 0  # transposed: none


def test_skip_gradients_made_dense_give_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    eager = build_generator(GeneratorConfig(ngf=8, depth=5, upsample="resize", residual=True))
    fast = copy.deepcopy(eager)
    assert speed.dense_skip_grads(fast) == 4  # every decoder level but the output layer
    x = (torch.rand(2, 3, 32, 64) * 2 - 1).contiguous(memory_format=torch.channels_last)
    _assert_same_outputs_and_gradients(eager, fast, x)
    # the gradient each level's last layer (its batch norm) gets back is dense channels_last,
    # where the concatenation's backward alone hands it a strided channel slice
    layouts = {}
    for model in (eager, fast):
        grads = []

        def catch_grad(module, inputs, out, grads=grads):
            out.register_hook(grads.append)

        for level in model.up[1:]:
            level[-1].register_forward_hook(catch_grad)
        model(x).sum().backward()
        layouts[model is fast] = [g.is_contiguous(memory_format=torch.channels_last) for g in grads]
    assert all(layouts[True]) and not any(layouts[False])
    assert speed.dense_skip_grads(build_discriminator(DiscriminatorConfig(ndf=8))) == 0


def test_discriminator_with_narrow_last_conv_gives_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    eager = build_discriminator(DiscriminatorConfig(ndf=8))
    fast = copy.deepcopy(eager)
    assert speed.small_convs_as_gemm(fast) == 5  # 4 convs + the 1-channel last one
    assert isinstance(fast.net[-1].forward, functools.partial) and fast.net[-1].forward.func is speed._narrow_conv
    _assert_same_outputs_and_gradients(eager, fast, torch.rand(2, 6, 64, 96) * 2 - 1)


def test_only_small_inputs_take_the_matrix_product(monkeypatch):
    conv = torch.nn.Conv2d(4, 8, 3, padding=1)  # 8 outputs: more than the narrow path takes
    speed.small_convs_as_gemm(conv)
    calls = []
    unfold = speed.F.unfold
    monkeypatch.setattr(speed.F, "unfold", lambda *a, **k: calls.append(a[0].shape) or unfold(*a, **k))
    conv(torch.rand(1, 4, 16, 16))  # 256 positions: oneDNN's convolution
    conv(torch.rand(8, 4, 4, 4))  # 128 positions over the batch: the same
    assert calls == []
    conv(torch.rand(1, 4, 8, 8))  # 64 positions: the matrix product
    assert calls == [(1, 4, 8, 8)]


@pytest.mark.parametrize("kind", speed.OPTIMIZERS)
def test_every_adam_kind_takes_the_same_step(kind):
    torch.manual_seed(0)
    ref = torch.nn.Parameter(torch.randn(5, 7))
    p = torch.nn.Parameter(ref.detach().clone())
    for param, k in ((ref, "plain"), (p, kind)):
        opt = speed.adam([param], 2e-4, (0.5, 0.999), k)
        for _ in range(3):
            param.grad = torch.ones_like(param)
            opt.step()
    torch.testing.assert_close(p, ref)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        speed.adam([p], 2e-4, (0.5, 0.999), "sgd")


def test_compile_choice_is_checked_and_recorded():
    assert setup_runtime("cpu", "fp32", "on").compile
    assert not setup_runtime("cpu", "fp32", "off").compile
    with pytest.raises(ValueError, match="compile must be one of auto, on, off"):
        setup_runtime("cpu", "fp32", "sometimes")
    rt = setup_runtime("cpu", "fp32")
    assert rt.optimizer == "fused" and rt.small_convs and rt.fold_resize and "fused Adam" in rt.describe()
    plain = plain_runtime()
    assert (plain.optimizer, plain.compile, plain.small_convs, plain.fold_resize, plain.dense_grads,
            plain.reuse_memory, plain.channels_last) == ("plain", False, False, False, False, False, False)
    assert rt.dense_grads and "dense skip gradients" in rt.describe()
    # folding applies to resize levels: a transposed-convolution generator has none to fold
    assert "resize levels folded" in rt.describe("resize") and "resize levels folded" not in rt.describe("transpose")


def test_auto_compiles_only_long_runs_where_it_measured_faster():
    from eyeedit.training.runtime import COMPILE_AUTO, _pick_compile

    cpu = torch.device("cpu")
    min_steps = COMPILE_AUTO[("cpu", "bf16")]
    assert _pick_compile("auto", cpu, "bf16", min_steps)
    assert not _pick_compile("auto", cpu, "bf16", min_steps - 1)
    assert not _pick_compile("auto", cpu, "bf16")  # length unknown (bench, scripts): eager
    assert not _pick_compile("auto", cpu, "fp32", 10**9)  # measured slower there
    assert _pick_compile("on", cpu, "fp32", 1) and not _pick_compile("off", cpu, "bf16", 10**9)


@pytest.mark.parametrize("pairs,world", [(1, 1), (8, 1), (76, 1), (81, 2), (81, 3)])
def test_planned_steps_count_the_steps_the_loop_takes(pairs, world):
    from eyeedit.training.runtime import Runtime
    from eyeedit.training.train import _epoch_batches, planned_steps

    cfg = TrainConfig(size=TINY.size, generator=GeneratorConfig(ngf=8, depth=5), batch_size=8, epochs=3,
                      decay_epochs=2)
    rt = Runtime(torch.device("cpu"), "fp32", False, rank=world - 1, world_size=world)
    assert planned_steps(pairs, cfg, world) == 5 * len(_epoch_batches(pairs, cfg, rt, 0))
    # compiled, every batch has the full size (one graph): the last is filled from the epoch's start
    eager_batches = _epoch_batches(pairs, cfg, rt, 1)
    full = _epoch_batches(pairs, cfg, dataclasses.replace(rt, compile=True), 1)
    assert len(full) == len(eager_batches) and {len(b) for b in full} == {8}
    flat = [i for b in eager_batches for i in b]
    assert [i for b in full for i in b] == (flat * 8)[: 8 * len(full)]


def test_train_cli_refuses_an_unknown_compile_choice(tmp_path):
    res = CliRunner().invoke(cli, ["train", str(tmp_path), "--out", str(tmp_path / "run"), "--compile", "maybe"])
    assert res.exit_code == 2
    assert "--compile" in res.output and "maybe" in res.output


def test_compile_falls_back_to_eager_when_unavailable(monkeypatch):
    monkeypatch.setattr(speed, "compile_available", lambda: "torch.compile does not work here (no compiler)")
    cfg = TrainConfig(size=TINY.size, generator=GeneratorConfig(ngf=8, depth=5),
                      discriminator=DiscriminatorConfig(ndf=8), batch_size=2)
    rt = dataclasses.replace(setup_runtime("cpu", "fp32", "off"), compile=True)
    with pytest.warns(UserWarning, match="--compile: torch.compile does not work here.*runs eagerly"):
        state = build_state(cfg, rt)
    assert not hasattr(state.g, "_compiled_call_impl") or state.g._compiled_call_impl is None
    a = torch.rand(2, 3, 32, 64) * 2 - 1
    losses = train_step(state, a, a.clone(), cfg, rt)
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.slow  # compiles G, D and the losses with inductor: ~2 min on two cores
def test_a_compiled_step_computes_what_the_eager_step_does():
    # no dropout: compiled code draws its random numbers from another stream
    cfg = TrainConfig(size=TINY.size, generator=GeneratorConfig(ngf=8, depth=5, dropout=False),
                      discriminator=DiscriminatorConfig(ndf=8), batch_size=2)
    a = torch.rand(2, 3, 32, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    losses = {}
    for compile_ in ("off", "on"):
        rt = setup_runtime("cpu", "fp32", compile_)
        state = build_state(cfg, rt)
        losses[compile_] = [train_step(state, a, a.flip(-1), cfg, rt) for _ in range(3)]
    for eager, compiled in zip(losses["off"], losses["on"]):
        for name, value in eager.items():
            assert torch.allclose(compiled[name], value, rtol=1e-3, atol=1e-4), name


@pytest.mark.slow  # compiles a one-line function with inductor: ~15 s on two cores
def test_compile_available_reports_a_reason_or_none():
    reason = speed.compile_available()
    assert reason is None or reason.startswith(("torch.compile does not work here", "this torch has no"))


def test_checkpoint_keeps_this_runs_optimizer_kind(tmp_path):
    from eyeedit.training import checkpoints as ckpt

    cfg = TrainConfig(size=TINY.size, generator=GeneratorConfig(ngf=8, depth=5),
                      discriminator=DiscriminatorConfig(ndf=8), batch_size=2)
    old_rt = dataclasses.replace(setup_runtime("cpu", "fp32", "off"), optimizer="foreach")
    old = build_state(cfg, old_rt)
    a = torch.rand(2, 3, 32, 64) * 2 - 1
    train_step(old, a, a.clone(), cfg, old_rt)
    old.step = 1
    path = ckpt.save(tmp_path, old, cfg, ckpt.gather_rng(old, old_rt), 1)
    new_rt = setup_runtime("cpu", "fp32", "off")
    new = build_state(cfg, new_rt)
    ckpt.load(path, new, new_rt)
    group = new.opt_g.param_groups[0]
    assert group["fused"] and not group["foreach"]
    train_step(new, a, a.clone(), cfg, new_rt)  # the fused step runs on the restored moments


def test_bench_training_reports_side_by_side_figures():
    sides = {"plain": plain_runtime(), "chosen": setup_runtime("cpu", "fp32", "off")}
    result = bench_training(TINY, sides, rounds=2, probes={"fp32": ceiling_probe()})
    assert result["rounds"] == 2 and result["baseline"] == "plain" and len(result["load_average"]) == 2
    assert result["ceilings"]["fp32"] > 0 and result["threads"] == torch.get_num_threads()
    assert 0.001 < result["gflop_per_image"] < 10
    for side in result["sides"].values():
        assert side["images_per_s"] > 0 and side["first_step_s"] > 0
        assert side["p10_step_s"] <= side["median_step_s"] <= side["p90_step_s"]
        assert side["gflop_per_s"] == pytest.approx(result["gflop_per_image"] * TINY.batch / side["median_step_s"])
    assert result["sides"]["plain"]["ratio"] == 1.0
    ceils = ceilings()
    assert set(ceils) <= {"fp32", "bf16"} and "fp32" in ceils
    assert ceils["fp32"]["gflop_per_s"] == max(r["gflop_per_s"] for r in ceils["fp32"]["convs"]) > 0
    shares = with_shares(result, ceils)["sides"]
    for side in shares.values():  # against the ceiling measured in the same rounds
        assert side["share_of_ceiling"] == pytest.approx(side["gflop_per_s"] / result["ceilings"]["fp32"])
        assert 0 < side["share_of_ceiling"] < 1
    no_probe = {**result, "ceilings": {}}
    assert with_shares(no_probe, {})["sides"]["plain"]["share_of_ceiling"] is None


def test_step_flops_count_the_convolutions():
    # Conv FLOPs alone, by hand, for G's first layer: 2 * out positions * Cout * Cin * k * k,
    # forward only. The whole step (G and D, forward and backward) counts many times more.
    first_layer = 2 * (32 * 16) * 8 * 3 * 4 * 4
    total = step_flops(TINY)
    assert total > 10 * first_layer


def test_profile_script_prints_the_op_table(capsys, tmp_path):
    module = _script("profile_train")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = module.main(["--size", "64x32", "--depth", "5", "--ngf", "8", "--batch", "2", "--steps", "1",
                              "--compile", "off", "--json", str(tmp_path / "p.json")])
    out = capsys.readouterr().out
    assert "Self CPU" in out and "per step:" in out
    assert result["groups_ms"]["conv backward"] > 0 and result["rows"][0]["self_ms"] >= result["rows"][-1]["self_ms"]
    assert (tmp_path / "p.json").is_file()


def test_discriminator_convolutions_keep_their_names():
    d = build_discriminator(DiscriminatorConfig(ndf=8))
    names = list(d.state_dict())
    speed.small_convs_as_gemm(d)
    assert list(d.state_dict()) == names


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ablation_adds_one_speed_up_at_a_time():
    module = _script("bench_train")
    fp32 = module.ablation_sides(False)
    assert next(iter(fp32)) == "plain" and fp32["+ freed memory reused"].reuse_memory
    assert fp32["+ channels_last"].channels_last and not fp32["+ freed memory reused"].channels_last
    bf16 = module.ablation_sides(True, "bf16")
    names = list(bf16)
    assert names[:3] == ["plain", "bf16 autocast", "+ channels_last activations"] and "+ channels_last" not in bf16
    assert all(bf16[n].precision == "bf16" for n in names[1:]) and bf16["+ torch.compile"].compile
    last = bf16["+ freed memory reused"]  # everything the chosen bf16 CPU step has
    assert (last.channels_last, last.optimizer, last.small_convs, last.fold_resize, last.dense_grads) == (
        True, "fused", True, True, True)


def test_precision_check_runs_fp32_against_fp32_where_nothing_else_is_native(capsys):
    module = _script("bench_train")
    result = module.main(["--quick", "--device", "cpu", "--precision", "fp32"])
    q = result["quality"]
    assert q["precisions"] == ["fp32", "fp32"]
    assert q["l1_relative_difference"] == 0.0 and q["within_tolerance"]  # seeded CPU runs reproduce
    assert "fp32 against fp32" in capsys.readouterr().out


def test_generated_faces_are_deterministic_and_varied(tmp_path):
    from eyeedit.bench_quality import synthetic_faces
    from eyeedit.imageio import read_image

    first = [read_image(p) for p in synthetic_faces(tmp_path / "a", count=3)]
    again = [read_image(p) for p in synthetic_faces(tmp_path / "b", count=3)]
    assert all((x == y).all() for x, y in zip(first, again))
    assert not (first[0] == first[1]).all() and first[0].shape == (512, 512, 3)


def test_time_to_quality_trains_both_sides_and_scores_them():
    from eyeedit.bench_quality import time_to_quality

    sides = {"plain": plain_runtime(), "chosen": setup_runtime("cpu", "fp32", "off")}
    q = time_to_quality(sides, minutes=0.005, count=12)
    assert q["train_pairs"] + q["val_pairs"] == 12 and q["val_pairs"] >= 1
    for side in q["sides"].values():
        assert side["steps"] >= 1 and side["seconds"] >= 0.3
        assert side["gain_db"] == pytest.approx(side["psnr_mask"] - side["identity_psnr_mask"])
        assert 5 < side["identity_psnr_mask"] < 40  # glasses were drawn: the mask is not empty


def test_bench_cli_reports_the_machine_without_timing_anything():
    import json

    res = CliRunner().invoke(cli, ["bench", "--no-inference", "--no-group", "--no-train", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    m = report["machine"]
    assert m["cpu"] and m["cores"] >= 1 and m["threads"] >= 1 and isinstance(m["flags"], list)
    assert m["bf16"] == ("avx512_bf16" in m["flags"] or "amx_bf16" in m["flags"]) or not m["flags"]
    assert report["training"] == [] and report["ceilings"] is None and report["quality"] is None


def test_bench_cli_refuses_an_unknown_case():
    res = CliRunner().invoke(cli, ["bench", "--no-inference", "--no-group", "--case", "unet_1024"])
    assert res.exit_code == 2 and "unet_1024" in res.output
