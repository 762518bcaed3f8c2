"""The `eyeedit` command line: a click group that imports a command's module only when it runs.

Each command lives in its own module of this package and imports the library at its top. The
group knows the commands by name, section and one-line summary, so `eyeedit --help` lists them
without importing torch, MediaPipe or OpenCV (click's documented lazy-group pattern).
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import click

from eyeedit import __version__
from eyeedit.landmarks import silence_native_logs


@dataclass(frozen=True)
class CommandEntry:
    name: str
    module: str  # eyeedit.cli.<module> holds the click command ...
    attr: str  # ... under this name
    summary: str  # the line shown by `eyeedit --help`


SECTIONS: dict[str, tuple[CommandEntry, ...]] = {
    "Use an effect": (
        CommandEntry("apply", "apply", "apply", "edit photos with an effect model (detect, align, translate, blend)"),
        CommandEntry("preview", "preview", "preview", "live webcam (or video file) preview of an effect"),
        CommandEntry("models", "models", "models", "list the effect models found in the model stores"),
        CommandEntry("serve", "serve", "serve", "the web app: photos and webcam in a browser (eyeedit[web])"),
    ),
    "Make an effect": (
        CommandEntry("prepare", "prepare", "prepare", "turn real before/after photos into an aligned paired dataset"),
        CommandEntry("synth", "synth", "synth", "draw glasses, eye colour or makeup on plain faces: paired data"),
        CommandEntry("train", "train", "train", "train a pix2pix model (CPU, GPU, or several GPUs via torchrun)"),
        CommandEntry("eval", "eval", "eval_command", "score a model on validation pairs beside baselines, with a gallery"),
        CommandEntry("run", "run", "run_command", "carry out a recipe (pipelines/*.toml): data, train, eval, publish"),
        CommandEntry("export", "export", "export", "export a model to ONNX"),
    ),
    "Tools": (
        CommandEntry("bench", "bench", "bench", "time every stage on this machine"),
        CommandEntry("samples", "samples", "samples", "write sample faces made from the bundled public-domain astronaut"),
        CommandEntry("crop", "crop", "crop", "aligned eye-region crops of photos, with landmark overlays"),
        CommandEntry("demo", "demo", "demo", "apply every effect to the sample face; write a grid and a web page"),
    ),
}
COMMANDS = {entry.name: entry for entries in SECTIONS.values() for entry in entries}


# What picks up an interrupted command where it stopped, said when Ctrl-C stops it: the hint
# for its command line without --overwrite, then with it (--overwrite clears what was made, so
# the same command again would start over).
RESUME_HINTS = {
    "train": ("The same command with --resume continues from the last checkpoint",
              "The same command with --resume in place of --overwrite continues from the last checkpoint"),
    "prepare": ("The same command again resumes where it stopped",
                "The same command without --overwrite resumes where it stopped"),
    "synth": ("The same command again resumes where it stopped",
              "The same command without --overwrite resumes where it stopped"),
    "run": ("The same command again resumes the step it stopped in",) * 2,
}
ARGS_KEY = "eyeedit.args"  # the command line as given, in the context's shared meta


# Whether a command is already running in this process: `eyeedit run` runs its steps as
# command lines of their own, inside its own.
_running = [False]


class LazyGroup(click.Group):
    """Commands are imported on first use; the help lists them by section from ``SECTIONS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module = importlib.import_module(f"eyeedit.cli.{entry.module}")
        return getattr(module, entry.attr)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta.setdefault(ARGS_KEY, list(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> object:
        nested = _running[0]
        _running[0] = True
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            if nested:  # a step of `eyeedit run`: the run itself says what to do
                raise
            # Ctrl-C: the with-blocks on the way up have cleaned up (temporary files, workers);
            # exit as shells expect for SIGINT (128 + 2) rather than click's 1.
            hints = RESUME_HINTS.get(ctx.invoked_subcommand or "")
            hint = hints[int("--overwrite" in ctx.meta.get(ARGS_KEY, []))] if hints else ""
            click.echo("\nInterrupted." + (f" {hint}." if hint else ""), err=True)
            ctx.exit(130)
        finally:
            _running[0] = nested

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for section, entries in SECTIONS.items():
            with formatter.section(section):
                formatter.write_dl([(e.name, e.summary) for e in entries])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="eyeedit")
def cli() -> None:
    """Edit the eye region of faces with a conditional GAN (pix2pix).

    Run `eyeedit COMMAND --help` for the options of each command.
    """


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    """The library reports notes through :mod:`warnings`; the CLI prints eyeedit's as one line."""
    if "eyeedit" in Path(filename).parts:
        click.echo(f"note: {message}", err=True)
    else:
        _default_show_warning(message, category, filename, lineno, file, line)


_default_show_warning = warnings.showwarning


def main() -> None:
    """Console-script entry point."""
    silence_native_logs()
    warnings.showwarning = show_warning
    cli(prog_name="eyeedit")
