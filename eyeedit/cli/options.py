"""Options shared by the commands that run an effect model (apply, preview)."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from eyeedit.cli.ui import console, dataset_summary, fail, progress, warn
from eyeedit.data.pairs import BuildReport, DatasetError, InputError, OutputError
from eyeedit.data.workers import stop_cleanly_on_sigterm
from eyeedit.editing.backends import BACKENDS, choose_backend
from eyeedit.imageio import ImageError, write_failure
from eyeedit.model.store import EFFECT_NAME, ModelError, ModelFile, find_model, open_model, resolve
from eyeedit.regions import RegionSpec, parse_size


class Finite(click.FloatRange):
    """A float option in a range, refusing nan and inf: Python's comparisons with nan are all
    false, so a plain range lets ``--strength nan`` through to fail deep inside."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


# A U-Net halves the crop at each level and `train` needs at least two levels: a dataset's
# crop sides must be multiples of 4, or no model can be trained on it.
DATASET_MULTIPLE = 4


def crop_spec(region: Callable[[tuple[int, int] | None], RegionSpec], size: str | None,
              dataset: bool = False) -> RegionSpec:
    """The crop --size asks for (``region`` makes the spec from a (width, height), or from None
    for its own size), a usage error naming --size when it cannot be one; for a ``dataset``,
    also when no U-Net could train on it."""
    try:
        spec = region(parse_size(size) if size else None)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--size") from None
    m = DATASET_MULTIPLE
    if dataset and (spec.width % m or spec.height % m):
        near = f"{m * max(1, round(spec.width / m))}x{m * max(1, round(spec.height / m))}"
        raise click.BadParameter(f"{spec.width}x{spec.height}: a dataset's crop sides must be multiples of {m} "
                                 f"for a U-Net to train on it (e.g. {near}; 256x128 is the default)",
                                 param_hint="--size")
    return spec


@contextlib.contextmanager
def write_failures(path: Path) -> Iterator[None]:
    """Stop the command with one line (exit 1) when writing its outputs under ``path`` fails (a
    file in the way, a read-only folder, a full disk): an image write names its own file, any
    other write its file or ``path``, with :func:`eyeedit.imageio.write_failure`'s reason."""
    try:
        yield
    except ImageError as exc:
        fail(str(exc))
    except OSError as exc:
        where = exc.filename or path
        fail(f"{where}: {write_failure(where, exc)}")


def _stack(*decorators: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--effect NAME or --model PATH."""
    return _stack(
        click.option("-e", "--effect", default=None, callback=_check_effect_name,
                     help="Effect name, looked up in the model stores (see `eyeedit models`)."),
        click.option("-m", "--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Use this model file instead of looking the effect up."),
    )(f)


def _check_effect_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Effect names are names, never paths: a file is given with --model."""
    if value is not None and not (EFFECT_NAME.match(value) and not value.endswith(".safetensors")):
        raise click.BadParameter(f"{value!r} is not a name (letters, digits, '-', '_'); "
                                 "give a model file with --model PATH")
    return value


def runtime_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--adaptive-mask, --frame-shadow, --backend and --device."""
    return _stack(
        click.option("--adaptive-mask/--no-adaptive-mask", default=True, show_default=True,
                     help="Keep the photo's own pixels wherever the generator changed nothing (sharper)."),
        click.option("--frame-shadow/--no-frame-shadow", default=True, show_default=True,
                     help="With a model that adds a frame (glasses): the frame casts a soft shadow "
                          "on the skin below it, like the frames it learned from."),
        backend_options,
    )(f)


def backend_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--backend and --device, checked together when parsed (see :func:`check_device`)."""
    return _stack(
        # eager: parsed before --device, whose check needs it
        click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
                     is_eager=True, help="Generator runtime: auto = ONNX Runtime on a CPU, PyTorch on a GPU."),
        click.option("--device", default="cpu", show_default=True, callback=check_device,
                     help="Torch device for the generator (cpu, cuda, cuda:N, mps)."),
    )(f)


DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")


def check_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A device this machine has, and one the chosen --backend runs on: asking for a GPU that is
    not there is a usage error here, not a torch error halfway through the first photo."""
    if not DEVICE.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not cpu, cuda, cuda:N or mps")
    try:
        choose_backend(ctx.params.get("backend", "auto"), value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if value == "cpu":
        return value
    import torch  # only for a GPU, which runs PyTorch anyway

    if value == "mps":
        if not torch.backends.mps.is_available():
            raise click.BadParameter("no Apple GPU (MPS) is available here")
    elif not torch.cuda.is_available():
        raise click.BadParameter("no CUDA GPU is available here")
    elif ":" in value and int(value.split(":")[1]) >= torch.cuda.device_count():
        raise click.BadParameter(f"{value}: there are {torch.cuda.device_count()} CUDA GPUs")
    return value


def require_model(effect: str | None, model_path: Path | None) -> None:
    """A usage error unless exactly one of --effect and --model is given (with both, one of
    them would be ignored without a word)."""
    if effect is None and model_path is None:
        raise click.UsageError("give an effect with --effect NAME (see `eyeedit models`) or a file with --model")
    if effect is not None and model_path is not None:
        raise click.UsageError(f"give --effect {effect} or --model {model_path}, not both")


def chosen_model(effect: str | None, model_path: Path | None) -> ModelFile:
    """The model of --effect NAME or --model PATH, read and checked once (one line and exit
    status 1 when it cannot be used)."""
    require_model(effect, model_path)
    try:
        return open_model(model_path) if model_path is not None else find_model(effect)
    except ModelError as exc:
        fail(str(exc))


def model_or_name(model: str) -> ModelFile:
    """A MODEL argument that may be an effect name or a .safetensors file (export, eval)."""
    try:
        return resolve(model)
    except ModelError as exc:
        fail(str(exc))


def make_dataset(build: Callable[..., BuildReport], source: Path, out: Path, *, label: str,
                 title: str, unit: str, resume_note: str, verb: str) -> BuildReport:
    """Run the library's `prepare` or `synth` (``build(on_start=..., on_item=...)``) with a
    progress bar and a warning line per skipped record, then the summary table.

    Unusable folders are usage errors (exit 2); a write failure mid-run keeps what was
    finished (exit 1); a dataset without a single pair exits 1. ``resume_note`` is formatted
    with ``done`` and ``todo``.
    """
    with stop_cleanly_on_sigterm(), progress(unit) as bar:
        task = bar.add_task(label, total=None)

        def on_start(done: int, todo: int) -> None:
            if done:
                console.print(f"Resuming {out}: " + resume_note.format(done=done, todo=todo))
            bar.update(task, total=todo)

        def on_item(records: list[dict[str, Any]]) -> None:
            for rec in records:
                if rec["status"] != "ok":
                    warn(rec["reason"])
            bar.advance(task)

        try:
            report = build(on_start=on_start, on_item=on_item)
        except OutputError as exc:
            fail(f"{exc}; the pairs finished so far are kept: run again to resume")
        except (InputError, DatasetError) as exc:
            raise click.UsageError(str(exc)) from None
    dataset_summary(f"{title} {report.root}{_effect_note(report.info)}", report.statuses,
                    unit if unit == "pairs" else "records", report.root, report.info["counts"])
    if not dict(report.statuses).get("ok"):
        fail(f"{source}: no pair could be {verb} (reasons in {out / 'report.csv'})")
    return report


def _effect_note(info: dict[str, Any]) -> str:
    return f" ({info['effect']})" if info.get("effect") else ""
