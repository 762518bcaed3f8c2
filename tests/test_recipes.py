"""Recipes and `eyeedit run`: declarative steps, skip what is done, redo what changed."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SHARED_FACES

from eyeedit.cli.main import cli
from eyeedit.cli.run import _invoke
from eyeedit.recipes import RecipeError, expand, load_recipe, plan, run_recipe, to_args

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"

TINY = """
name = "tiny"
description = "a tiny glasses model for tests"

[data]
command = "synth"
effect = "glasses"
size = "64x32"
variants = 2
val-fraction = 0.3  # astronaut and -rot30 hash below 0.3: two people held out
workers = 1

[train]
epochs = {epochs}
decay-epochs = 0
ngf = 4
ndf = 4
batch-size = 4

[eval]
limit = 4

[publish]
effect = "tiny-glasses"
"""


def test_to_args_and_expand():
    assert to_args({"batch-size": 8, "flip": False, "reverse": True, "x": [1, 2]}) == [
        "--batch-size", "8", "--no-flip", "--reverse", "--x", "1", "--x", "2"]
    assert expand(["{faces}/a.csv", 3], {"faces": "/f"}) == ["/f/a.csv", 3]


@pytest.mark.parametrize("path", sorted(PIPELINES.glob("*.toml")), ids=lambda p: p.stem)
def test_builtin_recipes_parse_and_plan(path, tmp_path):
    recipe = load_recipe(path)
    steps = plan(recipe, tmp_path, faces="/faces")
    assert [s.step for s in steps][:2] == ["data", "train"]
    assert steps[0].argv[0] in ("synth", "prepare")
    # every option in the recipe is one the command accepts
    for step in steps:
        if step.step == "publish":
            continue
        res = CliRunner().invoke(cli, [step.argv[0], "--help"])
        for arg in step.argv:
            if arg.startswith("--") and arg not in ("--resume", "--overwrite"):
                assert arg in res.output or arg.replace("--no-", "--") in res.output, (path.name, arg)


@pytest.mark.parametrize("name", ["glasses", "no-glasses"])
def test_glasses_recipes_train_alpha_and_leave_out_held_out_and_glasses_wearers(name, tmp_path):
    from eyeedit.data.synth import read_exclusion_lists, read_exclusions

    data, train = plan(load_recipe(PIPELINES / f"{name}.toml"), tmp_path, faces="/faces")[:2]
    lists = [data.argv[i + 1] for i, a in enumerate(data.argv) if a == "--exclude"]
    assert sorted(Path(p).name for p in lists) == ["holdout.txt", "wears-glasses.txt"]
    left_out = set(read_exclusion_lists(lists))
    assert left_out == set(read_exclusions(lists[0])) | set(read_exclusions(lists[1]))
    assert {"007.jpg", "118_A000371.jpg"} <= left_out  # held out (London, Congress), no glasses
    assert "--alpha" in train.argv
    faces = SHARED_FACES
    if faces.is_dir():  # the validation split is not emptied by the held-out people
        from eyeedit.data.pairs import split_of
        from eyeedit.data.synth import find_inputs

        fraction = float(data.argv[data.argv.index("--val-fraction") + 1])
        people = {p.person for p in find_inputs(faces, tuple(left_out))}
        assert sum(split_of(p, fraction) == "val" for p in people) >= 20


def test_bad_recipes(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[data]\ncommand = 'paint'\n[train]\n")
    with pytest.raises(RecipeError, match="command must be"):
        load_recipe(bad)
    bad.write_text("[data\n")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(bad)
    bad.write_text("[data]\ncommand = 'synth'\n")
    with pytest.raises(RecipeError, match=r"missing \[train\]"):
        load_recipe(bad)
    res = CliRunner().invoke(cli, ["run", str(bad)])
    assert res.exit_code == 1 and "bad.toml" in res.output


def test_run_end_to_end_skips_and_redoes(tmp_path, monkeypatch):
    from eyeedit.data.samples import write_samples

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    faces = tmp_path / "faces"
    write_samples(faces)
    recipe_path = tmp_path / "tiny.toml"
    recipe_path.write_text(TINY.format(epochs=1))
    runs = tmp_path / "runs"
    res = CliRunner().invoke(cli, ["run", str(recipe_path), "--faces", str(faces), "--out", str(runs)])
    assert res.exit_code == 0, res.output
    assert (runs / "tiny" / "train" / "model.safetensors").is_file()
    metrics = json.loads((runs / "tiny" / "eval" / "metrics.json").read_text())
    assert {"model", "identity"} <= set(metrics["results"])
    installed = tmp_path / "xdg" / "eyeedit" / "models" / "tiny-glasses.safetensors"
    from eyeedit.model.store import read_metadata

    assert read_metadata(installed)["effect"] == "tiny-glasses"  # named as published
    assert "instead of the one shipped" not in res.output
    recipe_path.write_text(TINY.format(epochs=1).replace('"tiny-glasses"', '"glasses"'))
    res = CliRunner().invoke(cli, ["run", str(recipe_path), "--faces", str(faces), "--out", str(runs)])
    assert res.exit_code == 0 and "instead of the one shipped" in " ".join(res.output.split())
    recipe_path.write_text(TINY.format(epochs=1))

    again = run_recipe(load_recipe(recipe_path), runs, _invoke, str(faces))
    assert [(r.step, r.status) for r in again] == [
        ("data", "skipped"), ("train", "skipped"), ("eval", "skipped"), ("publish", "ran")]

    recipe_path.write_text(TINY.format(epochs=2))  # a changed training option
    changed = run_recipe(load_recipe(recipe_path), runs, _invoke, str(faces))
    assert [(r.step, r.status) for r in changed] == [
        ("data", "skipped"), ("train", "ran"), ("eval", "ran"), ("publish", "ran")]


@pytest.mark.parametrize("line, needle", [("bogus-option = 3", "No such option '--bogus-option'"),
                                          ("lr = -1", "--lr")])
def test_a_bad_training_option_is_reported_before_the_data_step(tmp_path, line, needle):
    """The recipe's [train] table is checked when the run starts: nothing is made first."""
    from eyeedit.data.samples import write_samples

    faces = tmp_path / "faces"
    write_samples(faces)
    recipe_path = tmp_path / "tiny.toml"
    recipe_path.write_text(TINY.format(epochs=1).replace("[train]\n", f"[train]\n{line}\n"))
    res = CliRunner().invoke(cli, ["run", str(recipe_path), "--faces", str(faces), "--out", str(tmp_path / "runs")])
    assert res.exit_code == 1 and needle in res.output and "tiny.toml: [train]" in res.output, res.output
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_in_a_step_stops_the_run_and_says_how_to_resume_it(tmp_path, monkeypatch):
    """The steps run inside `eyeedit run`: Ctrl-C in one ends the whole run (130), with the
    run's own advice, not the step's (`run` takes no --resume)."""
    import eyeedit.cli.train as train_cli
    from eyeedit.data.samples import write_samples

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cli, "run_training", interrupted)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    faces = tmp_path / "faces"
    write_samples(faces)
    recipe_path = tmp_path / "tiny.toml"
    recipe_path.write_text(TINY.format(epochs=1))
    res = CliRunner().invoke(cli, ["run", str(recipe_path), "--faces", str(faces), "--out", str(tmp_path / "runs")])
    assert res.exit_code == 130, res.output
    text = " ".join(res.output.split())
    assert "Interrupted. The same command again resumes the step it stopped in." in text
    assert "--resume" not in text and not (tmp_path / "runs" / "tiny" / "eval").exists()  # eval never ran


def test_the_resume_hint_follows_the_command_line(tmp_path, monkeypatch):
    import eyeedit.cli.synth as synth_cli
    from eyeedit.data.samples import write_samples

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synth_cli, "make_dataset", interrupted)
    write_samples(tmp_path / "faces")
    args = ["synth", str(tmp_path / "faces"), str(tmp_path / "pairs"), "--effect", "makeup"]
    plain = CliRunner().invoke(cli, args)
    assert plain.exit_code == 130 and "The same command again resumes where it stopped." in plain.output
    again = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert again.exit_code == 130 and "The same command without --overwrite resumes" in again.output
