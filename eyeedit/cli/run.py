"""`eyeedit run`: carry out a recipe (pipelines/*.toml) end to end."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from eyeedit.cli.main import cli
from eyeedit.cli.ui import console, fail, note_shadowing, out
from eyeedit.model.store import user_model_path
from eyeedit.recipes import RecipeError, StepPlan, load_recipe, plan, run_recipe


@click.command("run")
@click.argument("recipe", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--faces", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of face photos the recipe's data step reads (overrides its `faces`).")
@click.option("-o", "--out", "out_root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs"), show_default=True, help="Runs folder; the recipe works in OUT/<name>/.")
def run_command(recipe: Path, faces: str | None, out_root: Path) -> None:
    """Run RECIPE: make the data, train, evaluate and publish the model.

    Steps whose outputs exist and whose inputs and options have not changed are skipped;
    an interrupted training run is resumed; a step whose options changed is redone. Ends with
    a table of what each step did.
    """
    try:
        rec = load_recipe(recipe)
        _check_steps(recipe, plan(rec, out_root, faces))
        console.print(f"[bold]{rec.name}[/]: {rec.description}")
        results = run_recipe(rec, out_root, _invoke, faces)
    except RecipeError as exc:
        fail(str(exc))
    table = Table(title=f"eyeedit run {rec.name}")
    for col in ("step", "status", "seconds", "output"):
        table.add_column(col)
    for r in results:
        table.add_row(r.step, r.status, f"{r.seconds:.1f}", str(r.output))
    out.print(table)
    if rec.published_as is not None:
        note_shadowing(user_model_path(rec.published_as))


def _check_steps(recipe: Path, plans: list[StepPlan]) -> None:
    """Parse every step's command line before the first runs, so that a misspelt option or a
    bad value in the recipe's last table is reported at once, naming the recipe, rather than
    after the data step's minutes. Files and folders are not checked: earlier steps make them."""
    for step in plans:
        command = cli.get_command(click.Context(cli), step.argv[0])
        if command is None:  # publishing is done by `run` itself, not by a command line
            continue
        try:
            command.make_context(step.argv[0], list(step.argv[1:]), resilient_parsing=False).close()
        except click.BadParameter as exc:
            if not isinstance(getattr(exc.param, "type", None), click.Path):
                raise RecipeError(f"{recipe}: [{step.step}] {exc.format_message()}") from None
        except click.UsageError as exc:
            raise RecipeError(f"{recipe}: [{step.step}] {exc.format_message()}") from None


def _invoke(argv: list[str]) -> int:
    """Run one recipe step as an eyeedit command line in this process; returns its exit status."""
    try:
        status = cli.main(args=argv, prog_name="eyeedit", standalone_mode=False)
    except click.ClickException as exc:
        raise RecipeError(f"eyeedit {argv[0]}: {exc.format_message()}") from None
    except click.exceptions.Abort:  # Ctrl-C in the step (click turns it into Abort): stop the run
        raise KeyboardInterrupt from None
    except SystemExit as exc:
        return int(exc.code or 0)
    return status if isinstance(status, int) else 0
