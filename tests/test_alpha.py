"""Generators with an alpha mask: composition, model files, ONNX, synth's masks, the loader,
training supervision, evaluation and the editor's blend.

Tiny networks (ngf 4-8, 5 levels) on 64x32 or 256x128 crops; everything runs in seconds.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from eyeedit.cli.main import cli
from eyeedit.data.loader import augment_all, load_pairs
from eyeedit.data.pairs import DatasetWriter, mask_path, read_manifest, write_pair
from eyeedit.data.synth import Photo, SynthConfig, crop_mask_of, default_region, render_pairs
from eyeedit.editing.backends import load_translator, translate_with_alpha
from eyeedit.editing.editor import EditOptions, Editor
from eyeedit.geometry import fit_crop_from_image, unwarp_from_crop, warp_to_crop
from eyeedit.landmarks import detect_faces
from eyeedit.model.losses import mask_iou
from eyeedit.model.networks import GeneratorConfig, build_generator
from eyeedit.model.store import open_model
from eyeedit.model.tensors import images_to_tensor
from eyeedit.model.weights import load_generator, save_generator
from eyeedit.regions import region_spec

W, H = 64, 32


def _tiny(**kw) -> GeneratorConfig:
    return GeneratorConfig(**{"ngf": 4, "depth": 5, "alpha": True, **kw})


def _alpha_off(net: torch.nn.Module) -> None:
    """Drive the alpha channel's logit to -1e4: sigmoid gives exactly 0 everywhere."""
    with torch.no_grad():
        net.up[0][-2].bias[-1] = -1e4


# ----------------------------------------------------------------------------- the network

@pytest.mark.parametrize("residual", [False, True])
def test_alpha_zero_passes_the_input_through_bit_for_bit(residual):
    torch.manual_seed(0)
    net = build_generator(_tiny(residual=residual)).eval()
    x = torch.rand(2, 3, H, W) * 2 - 1
    image, alpha = net.forward_with_alpha(x)
    assert image.shape == x.shape and alpha.shape == (2, 1, H, W)
    assert alpha.min() >= 0 and alpha.max() <= 1 and not torch.equal(image, x)
    _alpha_off(net)
    image, alpha = net(x, with_alpha=True)
    assert torch.count_nonzero(alpha) == 0 and torch.equal(image, x)
    assert torch.equal(net(x), image)  # the plain call returns the image alone


def test_alpha_mixes_colour_into_the_input():
    torch.manual_seed(1)
    net = build_generator(_tiny()).eval()
    x = torch.rand(1, 3, H, W) * 2 - 1
    with torch.no_grad():
        net.up[0][-2].bias[-1] = 1e4  # alpha exactly 1: the output is the colour head alone
        image, alpha = net.forward_with_alpha(x)
    assert torch.all(alpha == 1) and image.abs().max() <= 1 and not torch.allclose(image, x)


def test_config_checks_and_old_configs_load_without_alpha():
    with pytest.raises(ValueError, match="alpha generator needs"):
        GeneratorConfig(in_channels=1, out_channels=3, alpha=True)
    old = GeneratorConfig().to_dict()
    del old["alpha"]
    assert GeneratorConfig.from_dict(old).alpha is False
    assert GeneratorConfig.from_dict(_tiny().to_dict()) == _tiny()
    plain = build_generator(GeneratorConfig(ngf=4, depth=5))
    assert plain.forward_with_alpha(torch.zeros(1, 3, H, W))[1] is None


def test_dice_loss_scores_overlap_of_thin_masks():
    from eyeedit.model.losses import dice_loss

    m = torch.zeros(1, 1, 8, 8)
    m[0, 0, 3] = 1  # a one-pixel line: 1/8 of the image
    assert dice_loss(m, m).item() == pytest.approx(0.0)
    assert dice_loss(m.roll(4, dims=2), m).item() == pytest.approx(1 - 1 / 17)  # smoothed by 1 px
    assert dice_loss(torch.zeros_like(m), m).item() == pytest.approx(1 - 1 / 9)  # background: no credit
    assert dice_loss(torch.zeros_like(m), torch.zeros_like(m)).item() == 0  # nothing to find, none found
    # per image: a thin frame missed costs as much as a thick one, however few its pixels
    thick = torch.zeros_like(m)
    thick[0, 0, 2:6] = 1
    both = torch.cat([thick, m])
    found = torch.cat([thick, torch.zeros_like(m)])
    assert dice_loss(found, both).item() == pytest.approx((1 - 1 / 9) / 2)


def test_mask_iou():
    a = torch.zeros(2, 1, 4, 4)
    m = torch.zeros(2, 1, 4, 4)
    a[0, :, :2] = 0.9  # 8 pixels
    m[0, :, :1] = 1.0  # 4 of them
    assert mask_iou(a, m).tolist() == [0.5, 1.0]  # both empty counts as a match


# ----------------------------------------------------------------------------- model files

def _save(tmp: Path, cfg: GeneratorConfig, net: torch.nn.Module | None = None, drop_alpha_key: bool = False) -> Path:
    spec = region_spec("eyes", (W * 4, H * 4))
    net = net if net is not None else build_generator(cfg)
    gen = cfg.to_dict()
    if drop_alpha_key:
        del gen["alpha"]
    meta = {"effect": "t", "generator": gen, "region": spec.to_dict(), "size": list(spec.size)}
    return save_generator(tmp / "m.safetensors", net.eval(), meta)


def test_old_model_file_without_the_key_loads_as_plain(tmp_path):
    path = _save(tmp_path, GeneratorConfig(ngf=4, depth=5), drop_alpha_key=True)
    assert "alpha" not in open_model(path).metadata["generator"]
    net, _ = load_generator(path)
    assert net.cfg.alpha is False


@pytest.fixture(scope="module")
def alpha_model(tmp_path_factory) -> Path:
    torch.manual_seed(2)
    cfg = _tiny(upsample="resize", residual=True)
    net = build_generator(cfg)
    net.train()
    with torch.no_grad():  # non-trivial batch-norm statistics, as a trained model has
        for _ in range(2):
            net(torch.rand(4, 3, H * 4, W * 4) * 2 - 1)
    return _save(tmp_path_factory.mktemp("alpha"), cfg, net)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_save_load_export_round_trip(alpha_model, tmp_path, cache):
    import onnx

    from eyeedit.model.export import export_onnx

    net, meta = load_generator(alpha_model)
    assert net.cfg.alpha and meta["generator"]["alpha"] is True
    info = export_onnx(alpha_model, tmp_path / "m.onnx")
    assert info["max_abs_diff"] <= 1e-4  # both outputs, checked against PyTorch
    assert [o.name for o in onnx.load(str(tmp_path / "m.onnx")).graph.output] == ["output", "alpha"]
    crops = np.random.default_rng(0).integers(0, 256, (2, H * 4, W * 4, 3), dtype=np.uint8)
    model = open_model(alpha_model)
    (y_t, a_t), (y_o, a_o) = (translate_with_alpha(load_translator(model, b), crops) for b in ("torch", "onnx"))
    assert a_t.shape == a_o.shape == (2, H * 4, W * 4) and a_t.dtype == np.float32
    assert np.abs(a_t - a_o).max() < 1e-4 and np.abs(y_t.astype(int) - y_o).max() <= 1
    with torch.no_grad():
        ref = net(images_to_tensor(crops), with_alpha=True)[1][:, 0].numpy()
    assert np.abs(a_t - ref).max() < 1e-5  # folding the resize convs keeps alpha


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_torch_path_gives_alpha(alpha_model, precision):
    crops = np.random.default_rng(1).integers(0, 256, (1, H * 4, W * 4, 3), dtype=np.uint8)
    images, alpha = load_translator(open_model(alpha_model), "torch", precision=precision).with_alpha(crops)
    assert images.shape == crops.shape and alpha.dtype == np.float32
    # the same outputs as in fp32, within the reduced precision's rounding
    ref_images, ref_alpha = load_translator(open_model(alpha_model), "torch").with_alpha(crops)
    assert np.abs(alpha - ref_alpha).max() < 0.01  # bf16 measured 0.002, fp16 0.0003
    assert np.abs(images.astype(int) - ref_images).mean() < 0.1 and np.abs(images.astype(int) - ref_images).max() <= 2


# ----------------------------------------------------------------------------- synth's masks

@pytest.fixture(scope="module")
def alice(astronaut):
    head = cv2.resize(astronaut[20:240, 110:340], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    return head, detect_faces(head, max_faces=1)[0]


# Share of mask pixels allowed farther than 2 px from any change: the eyeshadow's soft rim and
# the tail of the glasses' blurred shadow are covered (the renderer's mask and coverage) but
# change the pixels by less than one level there.
STRAY = {"glasses": 0.03, "eye-color": 0.01, "makeup": 0.08}


@pytest.mark.parametrize("effect", sorted(STRAY))
def test_synth_mask_covers_exactly_where_a_and_b_differ(effect, alice):
    image, face = alice
    config = SynthConfig(effect=effect, region=default_region(effect), seed=4, reverse=effect == "glasses")
    pair = render_pairs(image, face, Photo("alice", "alice", Path("alice.png")), config)[0]
    assert pair.mask.shape == pair.a.shape[:2] and pair.mask.dtype == np.uint8
    differs = (pair.a != pair.b).any(axis=2)
    assert differs.any() and not (differs & (pair.mask == 0)).any()  # every changed pixel is masked
    # ...and the mask reaches beyond the change only at the resampled edges (a pixel or two)
    near = cv2.dilate(differs.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert ((pair.mask > 0) & ~near).sum() <= STRAY[effect] * (pair.mask > 0).sum()
    assert pair.record["mask"] == f"{pair.record['split']}/mask/alice__v0.png"


def test_synth_mask_prefers_the_renderers_soft_coverage():
    matrix = np.array([[1.0, 0, 0], [0, 1.0, 0]])

    class Soft:
        mask = np.ones((8, 8), bool)
        coverage = np.full((8, 8), 0.5, np.float32)

    class Hard:
        mask = np.zeros((8, 8), bool)

    assert np.all(crop_mask_of(Soft(), matrix, (8, 8)) == 128)
    assert np.all(crop_mask_of(Hard(), matrix, (8, 8)) == 0)


def test_synth_cli_writes_masks_beside_the_pairs(alice, tmp_path):
    from eyeedit.imageio import read_image, write_image

    write_image(tmp_path / "faces" / "alice.png", alice[0])
    (tmp_path / "one.txt").write_text("bob.png\n")
    (tmp_path / "two.txt").write_text("carol.png\n")
    write_image(tmp_path / "faces" / "bob.png", alice[0][:, ::-1].copy())
    write_image(tmp_path / "faces" / "carol.png", alice[0])
    out = tmp_path / "pairs"
    res = CliRunner().invoke(cli, ["synth", str(tmp_path / "faces"), str(out), "--effect", "glasses",
                                   "--workers", "1", "--exclude", str(tmp_path / "one.txt"),
                                   "--exclude", str(tmp_path / "two.txt")])
    assert res.exit_code == 0, res.output
    (rec,) = read_manifest(out)  # bob and carol left out by the two lists
    a = read_image(out / rec["split"] / "A" / "alice__v0.png")
    mask = read_image(out / rec["mask"])
    assert mask.shape == a.shape and mask.max() >= 240  # the rims are covered (anti-aliased: not quite 255)
    assert np.array_equal(mask[..., 0], mask[..., 2])  # grey


# ----------------------------------------------------------------------------- loader and training

def _band_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth image, the same with a dark band (rows 10-19), and the band's mask."""
    small = rng.integers(0, 256, (4, 8, 3), dtype=np.uint8)
    a = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    b = a.copy()
    b[10:20] //= 4
    mask = np.zeros((H, W), np.uint8)
    mask[10:20] = 255
    return a, b, mask


@pytest.fixture(scope="module")
def masked_pairs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("masked") / "pairs"
    rng = np.random.default_rng(0)
    writer = DatasetWriter(root, {"made_by": "test_alpha"})
    for i in range(8):
        split = "val" if i < 2 else "train"
        write_pair(root, split, f"p{i}", *_band_pair(rng))
        writer.record({"key": f"p{i}", "status": "ok", "split": split})
    writer.finish(region_spec("eyes", (W, H)), effect="band")
    return root


def test_loader_reads_masks_and_augments_them_with_a_and_b(masked_pairs, tmp_path):
    data = load_pairs(masked_pairs)
    assert data.train.mask.shape == (6, H, W) and data.val.mask.dtype == torch.uint8
    a, b = (images_to_tensor(t) for t in (data.train.a, data.train.b))
    m = data.train.mask.unsqueeze(1).float() / 255
    gen = torch.Generator().manual_seed(5)
    a2, b2, m2 = augment_all([a, b, m], gen, jitter=1.2, flip=True)
    assert m2.shape == m.shape and not torch.equal(m2, m)
    # the mask is where A and B still differ after the same jitter and flip
    differs = (a2 - b2).abs().amax(1, keepdim=True) > 0.05
    assert (differs & (m2 < 0.01)).sum() == 0
    # the same random stream with or without the mask: A and B come out the same
    a3, b3 = augment_all([a, b], torch.Generator().manual_seed(5), jitter=1.2, flip=True)
    assert torch.equal(a3, a2) and torch.equal(b3, b2)
    # one missing mask: the split trains without masks, with a warning
    mask_path(masked_pairs, "train", "p2").rename(tmp_path / "kept.png")
    try:
        with pytest.warns(UserWarning, match="1 of 6 pairs have no mask"):
            assert load_pairs(masked_pairs).train.mask is None
    finally:
        (tmp_path / "kept.png").rename(mask_path(masked_pairs, "train", "p2"))


def test_training_with_alpha_logs_the_alpha_loss_and_mask_iou(masked_pairs, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["train", str(masked_pairs), "--out", str(out), "--alpha", "--alpha-weight", "5",
                                   "--ngf", "8", "--ndf", "8", "--depth", "5", "--epochs", "2",
                                   "--decay-epochs", "0", "--batch-size", "2", "--log-every", "1",
                                   "--device", "cpu", "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("G_alpha" in r for r in records if r["kind"] == "train")
    val = [r for r in records if r["kind"] == "val"]
    assert len(val) == 2 and all(0 <= r["mask_iou"] <= 1 for r in val)
    assert all(r["G_alpha"] > 0 for r in records if r["kind"] == "train")  # the masks are learned from
    meta = open_model(out / "model.safetensors").metadata
    assert meta["generator"]["alpha"] is True
    assert meta["metrics"]["mask_iou"] == pytest.approx(val[-1]["mask_iou"])  # the model's own last figure
    assert meta["training"]["config"]["alpha_weight"] == 5
    report = CliRunner().invoke(cli, ["eval", str(out / "model.safetensors"), str(masked_pairs), "--json"])
    assert report.exit_code == 0, report.output
    results = json.loads(report.output)["results"]
    assert 0 <= results["model"]["mask_iou"] <= 1 and "mask_iou" not in results["identity"]


def test_alpha_learns_the_mask_and_steps_under_bf16(masked_pairs):
    from eyeedit.training.config import make_config
    from eyeedit.training.runtime import setup_runtime
    from eyeedit.training.state import build_state
    from eyeedit.training.train import train_step

    data = load_pairs(masked_pairs)
    a, b = (images_to_tensor(t[:4]) for t in (data.train.a, data.train.b))
    mask = data.train.mask[:4].unsqueeze(1).float() / 255
    cfg = make_config(data, ngf=8, ndf=8, depth=5, alpha=True, lr=2e-3, batch_size=4, jitter=1.0,
                      flip=False, epochs=1, decay_epochs=0)
    fp32 = setup_runtime("cpu", "fp32")
    state = build_state(cfg, fp32)
    losses = [train_step(state, a, b, cfg, fp32, mask)["G_alpha"].item() for _ in range(20)]
    assert np.mean(losses[-3:]) < 0.7 * losses[0]  # the mask's cross-entropy falls from ln 2
    rt = setup_runtime("cpu", "bf16")
    step = train_step(build_state(cfg, rt), a[:1], b[:1], cfg, rt, mask[:1])
    assert set(step) == {"G_GAN", "G_L1", "G_alpha", "D_real", "D_fake"}
    assert all(torch.isfinite(v) for v in step.values())


def test_plain_training_on_masked_data_has_no_alpha_terms(masked_pairs, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["train", str(masked_pairs), "--out", str(out), "--ngf", "4", "--ndf", "4",
                                   "--depth", "5", "--epochs", "1", "--decay-epochs", "0", "--batch-size", "3",
                                   "--log-every", "1", "--device", "cpu", "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    text = (out / "metrics.jsonl").read_text()
    assert "G_alpha" not in text and "mask_iou" not in text
    # A checkpoint written before alpha existed (no alpha keys in its config) resumes as plain.
    from eyeedit.model.store import with_metadata
    from eyeedit.training import checkpoints as ckpt
    from eyeedit.training.config import make_config
    from eyeedit.training.run_folder import RunPaths, check_run_folder

    latest = ckpt.latest(out / "checkpoints")
    meta = ckpt._read(latest)[1]
    del meta["config"]["alpha_weight"], meta["config"]["generator"]["alpha"]
    latest.write_bytes(with_metadata(latest.read_bytes(), meta))
    data = load_pairs(masked_pairs)
    cfg = make_config(data, ngf=4, ndf=4, depth=5, epochs=1, decay_epochs=0, batch_size=3, log_every=1)
    assert check_run_folder(RunPaths(out), cfg, True, False, data.fingerprint) == latest
    with pytest.raises(Exception, match="different generator"):
        check_run_folder(RunPaths(out), make_config(data, ngf=4, ndf=4, depth=5, epochs=1, decay_epochs=0,
                                                    batch_size=3, log_every=1, alpha=True),
                         True, False, data.fingerprint)


# ----------------------------------------------------------------------------- the editor

class BoxAlpha:
    """A translator with alpha 1 in one box of the crop and 0 elsewhere; it inverts every pixel
    (so anything the blend lets through where alpha is 0 would show)."""

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self.with_alpha(crops)[0]

    def with_alpha(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha = np.zeros(crops.shape[:3], np.float32)
        alpha[:, 40:90, 60:200] = 1.0
        return 255 - crops, alpha


def test_editor_keeps_the_photo_wherever_alpha_is_zero(astronaut):
    editor = Editor(BoxAlpha(), region_spec("glasses"), EditOptions(adaptive=False))
    res = editor.run(astronaut)
    (fe,) = res.faces
    assert fe.mask[:30].max() == 0 and fe.mask[100:].max() == 0 and fe.mask[65, 130] > 0.9
    blend, coverage, (x0, y0, x1, y1) = unwarp_from_crop(fe.mask, fe.crop_from_image, astronaut.shape)
    outside = np.ones(astronaut.shape[:2], bool)
    outside[y0:y1, x0:x1] = (blend * coverage) == 0
    assert np.array_equal(res.image[outside], astronaut[outside])
    assert (res.image != astronaut).any(axis=2).sum() > 1000  # inside the box the edit shows


def test_a_drawn_frame_casts_its_shadow_on_the_photo_below_it(astronaut):
    shadow = {"strength": 0.21, "angle": 0.0, "offset": 0.035, "softness": 0.022}
    options = EditOptions(adaptive=False)
    plain = Editor(BoxAlpha(), region_spec("glasses"), options).run(astronaut)
    shaded = Editor(BoxAlpha(), region_spec("glasses"), options, frame_shadow=shadow).run(astronaut)
    off = Editor(BoxAlpha(), region_spec("glasses"), replace(options, frame_shadow=False),
                 frame_shadow=shadow).run(astronaut)
    assert np.array_equal(off.image, plain.image)
    to_photo = np.linalg.inv(np.vstack([shaded.faces[0].crop_from_image, [0, 0, 1]]))[:2]
    at = lambda x, y: tuple(np.round(to_photo @ [x, y, 1]).astype(int))  # noqa: E731 (crop -> photo)
    lum = lambda im, p: float(im[p[1], p[0]].astype(float).mean())  # noqa: E731
    below, inside, above = at(130, 91), at(130, 65), at(130, 30)
    assert 0.7 < lum(shaded.image, below) / lum(plain.image, below) < 0.95  # the skin under the frame
    assert lum(shaded.image, inside) == lum(plain.image, inside)  # not on the frame itself
    assert lum(shaded.image, above) == lum(plain.image, above)
    changed = (shaded.image != plain.image).any(axis=2)
    ys = np.nonzero(changed)[0]
    assert changed.sum() > 100 and ys.min() > above[1] and ys.max() < at(130, 110)[1]


def test_alpha_model_with_alpha_zero_leaves_the_photo_untouched(alpha_model, astronaut, tmp_path, cache):
    net, meta = load_generator(alpha_model)
    _alpha_off(net)
    path = save_generator(tmp_path / "off.safetensors", net, meta)
    for backend in ("torch", "onnx"):
        edited = Editor.load(path, backend=backend, options=EditOptions(max_faces=1)).run(astronaut)
        assert edited.faces and np.array_equal(edited.image, astronaut)


def test_a_model_trained_on_one_frame_colour_paints_in_that_hue(alpha_model, astronaut, tmp_path, cache):
    net, meta = load_generator(alpha_model)
    pinned = save_generator(tmp_path / "pinned.safetensors", net, {**meta, "data": {"frame_color": "#2e8b57"}})
    free = Editor.load(alpha_model, backend="torch", options=EditOptions(max_faces=1))
    editor = Editor.load(pinned, backend="torch", options=EditOptions(max_faces=1))
    assert free.frame_color is None and editor.frame_color == "#2e8b57"
    a, b = free.run(astronaut), editor.run(astronaut)
    assert not np.array_equal(a.image, b.image)
    face = b.faces[0]
    lab = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2LAB).astype(float)[..., 1:]  # noqa: E731
    green = lab(np.array([[[0x2e, 0x8b, 0x57]]], np.uint8))[0, 0]
    painted = face.alpha[..., None]  # (about 0.5 everywhere for this untrained model)
    expected = lab(face.crop_in) * (1 - painted) + green * painted  # the paint's hue is the pinned one
    off = np.abs(lab(face.crop_out) - expected).max(axis=2)
    free_off = np.abs(lab(a.faces[0].crop_out) - expected).max(axis=2)
    assert np.median(off) <= 1 and np.percentile(off, 99) <= 6  # (8-bit Lab rounds off a few units)
    assert np.median(free_off) > 5


def test_plain_translators_keep_todays_blend(astronaut):
    spec = region_spec("glasses")
    face = detect_faces(astronaut, max_faces=1)[0]
    crop = warp_to_crop(astronaut, fit_crop_from_image(face.eye_corners, spec), spec.size)
    images, alpha = translate_with_alpha(lambda c: c.copy(), crop[None])
    assert alpha is None and np.array_equal(images[0], crop)


# ----------------------------------------------------------------------------- find, erase, fill

def test_fill_config_needs_alpha_and_old_configs_load_without_fill():
    with pytest.raises(ValueError, match="fill needs alpha"):
        GeneratorConfig(fill=True)
    with pytest.raises(ValueError, match="fill needs alpha"):
        GeneratorConfig(alpha=True, residual=True, fill=True)
    old = _tiny().to_dict()
    del old["fill"]
    assert GeneratorConfig.from_dict(old).fill is False
    # the erase mask is a fourth input channel of the first convolution
    assert build_generator(_tiny(fill=True)).down[0][0].in_channels == 4


def test_frame_hole_thresholds_and_grows():
    from eyeedit.model.networks import frame_hole

    a = torch.zeros(1, 1, 9, 9)
    a[0, 0, 4, 4], a[0, 0, 1, 1] = 0.9, 0.55  # one solid pixel, one lens-like
    hole = frame_hole(a, threshold=0.6, grow=1)
    assert hole.sum() == 9 and torch.all(hole[0, 0, 3:6, 3:6] == 1) and hole[0, 0, 1, 1] == 0
    assert frame_hole(a, threshold=0.6, grow=0).sum() == 1


def test_frame_hole_follows_faint_frame_from_sure_frame():
    from eyeedit.model import networks
    from eyeedit.model.networks import frame_hole

    a = torch.zeros(1, 1, 32, 64)
    a[0, 0, 8:12, 4:20] = 0.9  # sure frame: 64 pixels, 3.1% of the crop
    a[0, 0, 10, 20:50] = 0.2  # a faint rim running on from it
    a[0, 0, 25, 10:40] = 0.2  # a faint line elsewhere (a lid crease)
    hole = frame_hole(a, threshold=0.5, grow=0, low=0.1)[0, 0]
    assert torch.all(hole[8:12, 4:20] == 1) and torch.all(hole[10, 20:50] == 1)
    assert hole[25].sum() == 0 and hole.sum() == 64 + 30
    assert torch.equal(frame_hole(a, 0.5, grow=0), (a > 0.5).float())  # no low threshold: as before
    far = a.clone()
    far[0, 0, 10, 20:] = 0.2  # the rim runs on for 44 pixels: the hole follows it HOLE_REACH far
    assert frame_hole(far, 0.5, grow=0, low=0.1)[0, 0, 10].sum() == 16 + networks.HOLE_REACH
    # A crop where the first pass is sure of too little (a plain face's lid highlight) does not grow.
    few = torch.zeros(1, 1, 32, 64)
    few[0, 0, 10, 10:12] = 0.9
    few[0, 0, 10, 12:40] = 0.2
    assert 2 / few.numel() < networks.HOLE_SEED_SHARE
    assert frame_hole(few, 0.5, grow=0, low=0.1).sum() == 2
    both = torch.cat([a, few])  # decided crop by crop
    assert frame_hole(both, 0.5, grow=0, low=0.1).flatten(1).sum(1).tolist() == [94, 2]


def test_hole_low_threshold_is_checked_and_optional():
    assert GeneratorConfig.from_dict(_tiny(fill=True).to_dict()).hole_low_threshold is None
    assert GeneratorConfig.from_dict(_tiny(fill=True, hole_low_threshold=0.1).to_dict()).hole_low_threshold == 0.1
    with pytest.raises(ValueError, match="hole low threshold must be between 0 and the hole threshold"):
        _tiny(fill=True, hole_low_threshold=0.6)


def test_solid_parts_keep_frames_and_thin_wires_and_drop_lenses():
    from eyeedit.model.networks import solid_parts

    m = torch.zeros(1, 1, 32, 32)
    m[0, 0, 4:20, 4:20] = 0.5  # a lens at its heaviest
    m[0, 0, 2:4, 2:22] = 1.0  # a solid rim along its top
    m[0, 0, 26, 2:30] = 0.45  # a wire blurred below the solid level, on skin
    m[0, 0, 12, 4:20] = 0.75  # a wire across the lens
    solid = solid_parts(m)[0, 0]
    assert torch.all(solid[2:4, 2:22] == 1) and torch.all(solid[26, 4:28] == 1) and torch.all(solid[12, 4:20] == 1)
    assert solid[6:11, 6:18].sum() == 0 and solid[14:20, 6:18].sum() == 0  # the lens stays
    assert solid_parts(torch.zeros(1, 1, 8, 8)).sum() == 0


def test_fill_paints_the_hole_without_looking_inside_it():
    from eyeedit.model.networks import frame_hole

    torch.manual_seed(3)
    net = build_generator(_tiny(fill=True)).eval()
    x = torch.rand(2, 3, H, W) * 2 - 1
    hole = torch.zeros(2, 1, H, W)
    hole[:, :, 10:16, 8:40] = 1
    y, alpha, found = net(x, hole=hole)
    assert torch.all(alpha[hole.bool()] == 1) and alpha.min() >= 0 and found.shape == hole.shape
    x2 = x.clone()
    inside = hole.expand_as(x).bool()
    x2[inside] = -x[inside]  # a different frame in the hole
    y2, _, found2 = net(x2, hole=hole)
    assert torch.equal(y, y2)  # what was in the hole leaves no trace anywhere in the output
    assert not torch.equal(found, found2)  # while the first pass does look at it
    assert torch.allclose(net.find(x), found, atol=1e-5)  # the first pass on its own
    # Without a hole the net finds one first (its first pass), then fills that.
    expected = net(x, hole=frame_hole(found))
    image, alpha = net(x, with_alpha=True)
    assert torch.allclose(image, expected[0], atol=1e-5) and torch.allclose(alpha, expected[1], atol=1e-5)
    assert torch.equal(net.find_hole(x), frame_hole(found))  # the two halves, one at a time
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(net.fill_hole(x, net.find_hole(x)), (image, alpha)))
    with pytest.raises(ValueError, match="only a fill generator"):
        build_generator(_tiny())(x, hole=hole)
    with pytest.raises(ValueError, match="only a fill generator"):
        build_generator(_tiny()).find(x)


def test_fill_never_erases_the_kept_eye_openings(tmp_path):
    from eyeedit.geometry import eye_openings

    torch.manual_seed(5)
    cfg = _tiny(fill=True)
    net = build_generator(cfg).eval()
    net.find = lambda x: torch.ones_like(x[:, :1])  # a first pass that calls everything frame
    seen = []
    unet = net._unet
    net._unet = lambda t: seen.append(t) or unet(t)
    x = torch.rand(1, 3, H, W) * 2 - 1
    kept = torch.zeros(H, W)
    kept[8:20, 10:30] = 1
    net.keep(kept)
    net(x)
    hole, erased = seen[-1][:, 3], seen[-1][:, :3]
    assert torch.equal(hole[0], 1 - kept)  # erased everywhere but the kept pixels
    assert torch.equal(erased[:, :, kept.bool()], x[:, :, kept.bool()])  # which the fill pass sees
    with pytest.raises(ValueError, match="kept pixels are"):
        net(torch.rand(1, 3, H * 2, W * 2))
    with pytest.raises(ValueError, match="only a fill generator"):
        build_generator(_tiny()).keep(kept)
    # A fill model file keeps its region's eye openings; other generators keep nothing.
    path = _save(tmp_path, cfg, build_generator(cfg))
    loaded, meta = load_generator(path)
    assert torch.equal(loaded.kept[0, 0], torch.from_numpy(eye_openings(region_spec("eyes", (W * 4, H * 4)))))
    assert load_generator(_save(tmp_path, _tiny()))[0].kept is None


@pytest.mark.parametrize("low,flip", [(None, False), (0.2, False), (0.2, True)])
def test_fill_model_exports_both_passes_to_onnx(tmp_path, cache, low, flip):
    from eyeedit.model.export import export_onnx

    torch.manual_seed(4)
    cfg = _tiny(fill=True, upsample="resize", hole_low_threshold=low, find_flip=flip)
    net = build_generator(cfg)
    with torch.no_grad():  # a clear hole: alpha far from the threshold everywhere
        net.up[0][-2].bias[-1] = 0.0
        net.up[0][-2].weight.mul_(0.01)
    path = _save(tmp_path, cfg, net)
    info = export_onnx(path, tmp_path / "m.onnx")
    assert info["max_abs_diff"] <= 1e-4
    crops = np.random.default_rng(2).integers(0, 256, (1, H * 4, W * 4, 3), dtype=np.uint8)
    model = open_model(path)
    (y_t, a_t), (y_o, a_o) = (translate_with_alpha(load_translator(model, b), crops) for b in ("torch", "onnx"))
    assert np.abs(a_t - a_o).max() < 1e-4 and np.abs(y_t.astype(int) - y_o).max() <= 1
    # Both backends give the hole they found, and fill a given hole with the second pass alone.
    for backend in ("torch", "onnx"):
        translate = load_translator(model, backend)
        assert translate.fills
        y, a, hole = translate.with_hole(crops)
        assert np.array_equal(y, translate(crops)) and set(np.unique(hole)) <= {0.0, 1.0} and hole.any()
        y2, a2, hole2 = translate.with_hole(crops, hole)
        assert np.array_equal(y2, y) and np.abs(a2 - a).max() < 1e-5 and np.array_equal(hole2, hole)
        other = np.zeros_like(hole)
        other[:, 10:20, 30:90] = 1
        y3, a3, _ = translate.with_hole(crops, other)
        assert np.all(a3[other.astype(bool)] == 1) and not np.array_equal(y3, y)
        # The first pass alone: its alpha, and the same hole as both passes found.
        found, hole4 = translate.find_hole(crops)
        assert found.shape == hole.shape and 0 <= found.min() and found.max() <= 1
        assert np.array_equal(hole4, hole)
    for part in ("fill", "find"):
        info = export_onnx(path, tmp_path / f"{part}.onnx", part=part)
        assert info["max_abs_diff"] <= 1e-4
    with pytest.raises(ValueError, match="only a fill generator"):
        export_onnx(_save(tmp_path, _tiny()), tmp_path / "x.onnx", part="fill")
    with pytest.raises(ValueError, match="only a fill generator"):
        load_translator(open_model(_save(tmp_path, _tiny())), "torch").with_hole(crops)


def test_find_flip_finds_the_frame_alike_in_a_crop_and_its_mirror_image():
    torch.manual_seed(5)
    net = build_generator(_tiny(fill=True, hole_low_threshold=0.2)).eval()
    x = torch.rand(2, 3, H, W) * 2 - 1
    with torch.no_grad():
        plain, plain_mirror = net.find(x), net.find(x.flip(-1)).flip(-1)
        assert not torch.allclose(plain, plain_mirror, atol=1e-3)  # the pass alone is not symmetric
        both = net._find_both_ways(x)
        assert torch.equal(both, torch.maximum(plain, plain_mirror))
        assert torch.equal(net._find_both_ways(x.flip(-1)).flip(-1), both)
        net.cfg = replace(net.cfg, find_flip=True)
        hole = net.find_hole(x)
        assert torch.equal(net.find_hole(x.flip(-1)).flip(-1), hole)  # mirrored crop, mirrored hole
    with pytest.raises(ValueError, match="find-flip needs fill"):
        _tiny(find_flip=True)


def test_fill_holes_erase_the_solid_frame_and_never_the_lens():
    from eyeedit.model.networks import solid_parts
    from eyeedit.training.train import fill_holes, hole_l1

    mask = torch.zeros(16, 1, 18, 16)
    mask[:, :, 9:11, 4:8] = 1.0  # a solid bar
    mask[:, :, 0:5, :] = 0.5  # a lens at its heaviest: not solid
    gen = torch.Generator().manual_seed(0)
    holes = [fill_holes(solid_parts(mask), gen) for _ in range(12)]
    sizes = set()
    for h in holes:
        assert set(h.unique().tolist()) == {0.0, 1.0} and torch.all(h[:, :, 9:11, 4:8] == 1)
        assert h[:, :, :5].max() == 0 and h[:, :, 14:].max() == 0  # grown by 3 px at most
        sizes.add(int(h[0].sum()))
    assert len(sizes) > 1  # the growth varies
    fake, b = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    fake[0, :, 0, 0] = 0.5
    one = torch.zeros(1, 1, 4, 4)
    one[0, 0, 0, :2] = 1
    assert hole_l1(fake, b, one).item() == pytest.approx(0.25) and hole_l1(fake, b, one * 0).item() == 0


def test_fill_training_runs_and_refuses_data_without_masks(masked_pairs, tmp_path):
    args = ["--alpha", "--fill", "--ngf", "8", "--ndf", "8", "--depth", "5", "--epochs", "1",
            "--decay-epochs", "0", "--batch-size", "2", "--log-every", "1", "--device", "cpu"]
    out = tmp_path / "run"
    res = CliRunner().invoke(cli, ["train", str(masked_pairs), "--out", str(out), *args])
    assert res.exit_code == 0, res.output
    meta = open_model(out / "model.safetensors").metadata
    assert meta["generator"]["fill"] is True and 0 <= meta["metrics"]["mask_iou"] <= 1
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    # the hole is painted and scored on every step (its L1 is zero only for a perfect paint)
    assert train and all(r["G_L1_hole"] > 0 and r["G_alpha"] > 0 for r in train)
    val = [r for r in records if r["kind"] == "val"]
    assert val and all(0 <= r["find_iou"] <= 1 for r in val)
    assert meta["metrics"]["find_iou"] == pytest.approx(val[-1]["find_iou"])
    bare = tmp_path / "bare"
    import shutil
    shutil.copytree(masked_pairs, bare)
    for split in ("train", "val"):
        shutil.rmtree(bare / split / "mask")
    res = CliRunner().invoke(cli, ["train", str(bare), "--out", str(tmp_path / "run2"), *args])
    assert res.exit_code != 0 and "has none" in res.output and not (tmp_path / "run2" / "model.safetensors").exists()
