"""Declarative recipes (`pipelines/*.toml`) and `eyeedit run`, which carries them out.

A recipe has four tables, each the options of one eyeedit command written as TOML keys
(``batch-size = 8`` is ``--batch-size 8``; ``true`` is a flag; a list repeats the option):

    [data]     command = "synth" or "prepare", plus that command's options; ``source`` is its input
    [train]    `eyeedit train` options
    [eval]     `eyeedit eval` options (validation pairs come from the data step)
    [publish]  ``effect = NAME``: install the model into the user store under that name

Strings may use ``{faces}`` (the faces folder: ``--faces`` or the recipe's ``faces``) and
``{recipe}`` (the recipe's folder). Each step records what it was run with; a step whose
output exists and whose inputs and options are unchanged is skipped, an interrupted training
run is resumed, and a step whose options changed is redone from scratch.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eyeedit.imageio import write_text
from eyeedit.model.store import install_model

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

STEPS = ("data", "train", "eval", "publish")


class RecipeError(Exception):
    """A recipe cannot be read or run (one-line message naming the file)."""


@dataclass(frozen=True)
class Recipe:
    """A recipe file (pipelines/*.toml): its name, where it lies, and its steps' options."""

    name: str
    path: Path
    description: str = ""
    faces: str | None = None
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def published_as(self) -> str | None:
        """The effect name the publish step installs the model as, or None without one."""
        return self.steps["publish"].get("effect", self.name) if "publish" in self.steps else None


def load_recipe(path: str | Path) -> Recipe:
    """Parse and check a recipe file."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecipeError(f"{p}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{p}: not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - {"name", "description", "faces", *STEPS})
    if unknown:
        raise RecipeError(f"{p}: unknown table or key {', '.join(unknown)}")
    for step in ("data", "train"):
        if not isinstance(doc.get(step), dict):
            raise RecipeError(f"{p}: missing [{step}] table")
    if doc["data"].get("command") not in ("synth", "prepare"):
        raise RecipeError(f"{p}: [data] command must be \"synth\" or \"prepare\"")
    steps = {s: dict(doc[s]) for s in STEPS if isinstance(doc.get(s), dict)}
    return Recipe(doc.get("name", p.stem), p, doc.get("description", ""), doc.get("faces"), steps)


def expand(value: Any, context: dict[str, str]) -> Any:
    """Substitute ``{faces}`` and ``{recipe}`` in strings (recursively in lists)."""
    if isinstance(value, str):
        for key, sub in context.items():
            value = value.replace("{" + key + "}", sub)
        return value
    if isinstance(value, list):
        return [expand(v, context) for v in value]
    return value


def to_args(options: dict[str, Any]) -> list[str]:
    """TOML keys to CLI options: ``{"batch-size": 8, "flip": False}`` -> ``--batch-size 8 --no-flip``."""
    args: list[str] = []
    for key, value in options.items():
        flag = f"--{key.replace('_', '-')}"
        if value is True:
            args.append(flag)
        elif value is False:
            args.append(f"--no-{key.replace('_', '-')}")
        elif isinstance(value, list):
            for v in value:
                args += [flag, str(v)]
        else:
            args += [flag, str(value)]
    return args


def fingerprint(*parts: Any) -> str:
    """A short hash of JSON-able parts and of the contents of any files among them."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            h.update(part.read_bytes() if part.is_file() else str(part).encode())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class StepPlan:
    """One step's command line, where its output goes, and the marker that says it is done."""

    step: str
    argv: list[str]
    output: Path
    done_marker: Path
    fingerprint: str


def plan(recipe: Recipe, out_root: Path, faces: str | None) -> list[StepPlan]:
    """The command lines of every step in the recipe, in order."""
    ctx = {"faces": str(faces or recipe.faces or ""), "recipe": str(recipe.path.parent)}
    if "{faces}" in json.dumps(recipe.steps) and not ctx["faces"]:
        raise RecipeError(f"{recipe.path}: needs a faces folder (--faces DIR or `faces = ...`)")
    run = out_root / recipe.name
    data_opts = {k: expand(v, ctx) for k, v in recipe.steps["data"].items()}
    command, source = data_opts.pop("command"), data_opts.pop("source", "{faces}")
    source = expand(source, ctx)
    data_dir, train_dir, eval_dir = run / "data", run / "train", run / "eval"
    plans = [StepPlan("data", [command, source, str(data_dir), *to_args(data_opts)], data_dir,
                      data_dir / "dataset.json", fingerprint(command, source, data_opts))]
    train_opts = {k: expand(v, ctx) for k, v in recipe.steps["train"].items()}
    plans.append(StepPlan("train", ["train", str(data_dir), "--out", str(train_dir), *to_args(train_opts)],
                          train_dir, train_dir / "model.safetensors", fingerprint(train_opts)))
    model = train_dir / "model.safetensors"
    if "eval" in recipe.steps:
        eval_opts = {k: expand(v, ctx) for k, v in recipe.steps["eval"].items()}
        plans.append(StepPlan("eval", ["eval", str(model), str(data_dir), "--out", str(eval_dir),
                                       "--checkpoints", str(train_dir / "checkpoints"), *to_args(eval_opts)],
                              eval_dir, eval_dir / "metrics.json", fingerprint(eval_opts)))
    if recipe.published_as is not None:
        effect = recipe.published_as
        plans.append(StepPlan("publish", ["publish", str(model), effect], model, model, fingerprint(effect)))
    return plans


@dataclass(frozen=True)
class StepResult:
    step: str
    status: str  # "ran", "resumed", "skipped"
    seconds: float
    output: Path


def _input_fingerprint(step: StepPlan, previous: StepPlan | None) -> str:
    """What a step consumes: the previous step's marker file (its content), or the source path."""
    return fingerprint(previous.done_marker) if previous else fingerprint(step.argv[1])


def _state_path(plans: list[StepPlan]) -> Path:
    return plans[0].output.parent / "steps.json"


def run_recipe(recipe: Recipe, out_root: Path, invoke: Callable[[list[str]], int | None],
               faces: str | None = None) -> list[StepResult]:
    """Carry out every step, skipping or resuming what an earlier run finished.

    A recipe's steps are eyeedit command lines (its tables are their options), so
    ``invoke(argv)`` runs one of them and returns its exit status; `eyeedit run` passes the
    CLI itself. Raises RecipeError when a step fails.
    """
    plans = plan(recipe, out_root, faces)
    state_file = _state_path(plans)
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    results, previous = [], None
    for step in plans:
        key = {"options": step.fingerprint, "input": _input_fingerprint(step, previous)}
        same = state.get(step.step) == key
        t0 = time.perf_counter()
        if same and step.done_marker.is_file() and step.step != "publish":
            status = "skipped"
        else:
            argv, status = _decide(step, same)
            _run_step(step, argv, invoke)
            state[step.step] = key
            _save_state(state_file, state)
        results.append(StepResult(step.step, status, time.perf_counter() - t0, step.output))
        previous = step
    return results


def _decide(step: StepPlan, same: bool) -> tuple[list[str], str]:
    """The command line to run and how: resume what the same options left half-done, else redo."""
    argv = list(step.argv)
    if step.step in ("data", "train") and step.output.exists():
        if same and step.step == "train" and (step.output / "checkpoints").is_dir():
            return argv + ["--resume"], "resumed"
        if same and step.step == "data":
            return argv, "resumed"  # prepare and synth pick up where they stopped
        return argv + ["--overwrite"], "ran"
    return argv, "ran"


def _run_step(step: StepPlan, argv: list[str], invoke: Callable[[list[str]], int | None]) -> None:
    if step.step == "publish":
        install_model(Path(argv[1]), argv[2])
        return
    code = invoke(argv)
    if code not in (0, None):
        raise RecipeError(f"step {step.step} failed (eyeedit {' '.join(argv[:1])} exited {code})")


def _save_state(path: Path, state: dict[str, Any]) -> None:
    write_text(path, json.dumps(state, indent=2, sort_keys=True))
