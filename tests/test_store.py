"""Finding model files and reading their metadata: names are names, files are checked once."""

import json

import pytest
from click.testing import CliRunner

from eyeedit.cli.main import cli
from eyeedit.model.store import (
    ModelError,
    find_model,
    install_model,
    list_models,
    open_model,
    read_header,
    resolve,
    with_metadata,
)
from eyeedit.regions import region_spec


def _model(path, effect="tiny", **meta_changes):
    import torch

    from eyeedit.model.networks import GeneratorConfig, build_generator
    from eyeedit.model.weights import save_generator

    torch.manual_seed(0)
    cfg = GeneratorConfig(ngf=4, depth=5)
    spec = region_spec("eyes")
    meta = {"effect": effect, "generator": cfg.to_dict(), "region": spec.to_dict(), "size": list(spec.size)}
    return save_generator(path, build_generator(cfg).eval(), {**meta, **meta_changes})


@pytest.fixture
def store(tmp_path, monkeypatch):
    folder = tmp_path / "store"
    folder.mkdir()
    _model(folder / "tiny.safetensors")
    monkeypatch.setenv("EYEEDIT_MODELS", str(folder))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return folder


def test_names_and_paths_resolve_to_the_same_checked_file(store):
    by_name, by_path = resolve("tiny"), resolve(str(store / "tiny.safetensors"))
    assert by_name.path == by_path.path and by_name.source == "$EYEEDIT_MODELS" and by_path.source == "path"
    assert by_name.effect == "tiny" and by_name.region == region_spec("eyes") and by_name.in_channels == 3


@pytest.mark.parametrize("name", ["../evil/g", "/abs/g", "tiny.safetensors", "a b", ""])
def test_an_effect_name_is_never_a_path(store, name, tmp_path):
    (tmp_path / "evil").mkdir(exist_ok=True)
    _model(tmp_path / "evil" / "g.safetensors")
    with pytest.raises(ModelError, match="is not a name"):
        find_model(name)
    res = CliRunner().invoke(cli, ["apply", str(tmp_path / "x.jpg"), "--effect", name])
    assert res.exit_code == 2 and "not a name" in res.output, res.output


def test_models_env_pointing_to_a_file_warns_and_is_ignored(store, monkeypatch):
    monkeypatch.setenv("EYEEDIT_MODELS", str(store / "tiny.safetensors"))
    with pytest.warns(UserWarning, match="is not a folder"):
        assert "$EYEEDIT_MODELS" not in {e.source for e in list_models()}


def test_a_folder_named_like_a_model_is_not_listed(store):
    (store / "ghost.safetensors").mkdir()
    assert "ghost" not in {e.effect for e in list_models()}


@pytest.mark.parametrize("change, reason", [
    ({"size": [128, 128]}, "does not match its region"),
    ({"region": {"name": "nose"}}, "bad region"),
    ({"generator": {"in_channels": 2}}, "not 1 or 3"),
    ({"data": {"frame_shadow": "dark"}}, "bad frame_shadow"),
    ({"data": {"frame_shadow": {"strength": 3, "angle": 0, "offset": 0.03, "softness": 0.02}}}, "bad frame_shadow"),
])
def test_metadata_that_contradicts_itself_is_refused_with_one_line(tmp_path, change, reason):
    path = tmp_path / "m.safetensors"
    _model(path)
    meta = json.loads(read_header(path)["__metadata__"]["eyeedit"])
    path.write_bytes(with_metadata(path.read_bytes(), {**meta, **change}))
    with pytest.raises(ModelError, match=reason) as err:
        open_model(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_install_renames_the_effect_and_keeps_the_weights_byte_for_byte(store, tmp_path):
    from eyeedit.model.weights import load_model_file

    installed = install_model(store / "tiny.safetensors", "renamed")
    assert open_model(installed).effect == "renamed"
    before, _ = load_model_file(store / "tiny.safetensors")
    after, _ = load_model_file(installed)
    assert before.keys() == after.keys() and all((before[k] == after[k]).all() for k in before)
    with pytest.raises(ModelError, match="not a name"):
        install_model(store / "tiny.safetensors", "../x")
