"""`eyeedit synth`: parse options, build a SynthConfig, run the library, render the result."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click
from click.core import ParameterSource

from eyeedit.cli.options import Finite, crop_spec, make_dataset
from eyeedit.cli.ui import console
from eyeedit.data.effects import EFFECTS
from eyeedit.data.effects.eye_color import parse_target
from eyeedit.data.effects.glasses import MATERIALS as GLASSES_MATERIALS
from eyeedit.data.effects.glasses import STYLES as GLASSES_STYLES
from eyeedit.data.effects.glasses import check_pins
from eyeedit.data.effects.makeup import check_pins as check_makeup
from eyeedit.data.real_frames import RealFrames
from eyeedit.data.synth import (
    DEFAULT_MIN_EYE_DISTANCE,
    InputError,
    SynthConfig,
    default_region,
    find_donors,
    read_exclusion_lists,
    read_exclusions,
)
from eyeedit.data.synth import synth as run_synth
from eyeedit.data.workers import default_workers


@click.command()
@click.argument("faces", type=click.Path(exists=True, path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--effect", type=click.Choice(list(EFFECTS)), required=True,
              help="What to draw on each face.")
@click.option("--reverse", is_flag=True,
              help="Swap the sides: A is the edited face, B the original (e.g. glasses removal).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed; the same seed gives the same dataset.")
@click.option("--variants", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Pairs per face, each with different random effect parameters.")
@click.option("--plain-pairs", type=click.IntRange(0, 100), default=0, show_default=True,
              help="Also this many pairs per face with nothing drawn (A = B, an empty mask): with "
                   "--reverse, a removal model then also learns to leave faces without the "
                   "effect alone.")
@click.option("--variation/--no-variation", default=True, show_default=True,
              help="Vary what is not pinned (sizes, strengths, reflections) at random. Off: every "
                   "range at its middle, one deterministic look per face, which a model can "
                   "learn exactly (needs --variants 1).")
@click.option("--style", type=click.Choice(GLASSES_STYLES), default=None,
              help="Glasses only: use this frame shape for every face [default: random].")
@click.option("--color", default=None, metavar="NAME|HEX",
              help="Eye-color: the iris colour, blue, green, brown, grey, hazel or a hex value like "
                   "#3a6ea5. Glasses: the rim colour, a frame colour name (black, tortoise, gold, "
                   "silver, ...) or a hex value. Makeup: the eyeshadow (taupe, bronze, plum, mauve, "
                   "smoky, ...) or a hex value [default: random].")
@click.option("--liner", default=None, metavar="NAME|HEX",
              help="Makeup only: the eyeliner colour (black, brown, navy, plum or hex) [default: random].")
@click.option("--material", type=click.Choice(GLASSES_MATERIALS), default=None,
              help="Glasses only: the frame material [default: random].")
@click.option("--tint", default=None, metavar="clear|grey|brown|green|blue|rose",
              help="Glasses only: the lens tint [default: mostly clear, sometimes tinted].")
@click.option("--size", default=None, metavar="WxH",
              help="Crop size, e.g. 256x128 (default: the effect's region size).")
@click.option("--val-fraction", type=Finite(0, 1, max_open=True), default=0.1,
              show_default=True,
              help="Share of people held out for validation (split by file stem, so all variants "
                   "and photos of one person land in the same split).")
@click.option("--min-eye-distance", type=Finite(1), default=DEFAULT_MIN_EYE_DISTANCE, show_default=True,
              help="Skip faces whose eye centres are closer than this many pixels.")
@click.option("--exclude", "exclude_specs", multiple=True, metavar="FILE[:COLUMN=V1,V2]",
              help="Leave out the photos named in FILE (one name per line), or in the first column "
                   "of a CSV's rows whose COLUMN is one of the values, e.g. "
                   "congress/glasses.csv:glasses=1,? to skip people already wearing glasses. "
                   "Repeat it to leave out the photos of several lists.")
@click.option("--real-frames", type=click.IntRange(0, 100), default=0, show_default=True,
              help="With --effect glasses --reverse: also this many pairs per face with a real "
                   "frame pasted on, one that --frame-model's first pass finds on a photo named "
                   "in --frame-donors.")
@click.option("--frame-donors", "donor_spec", default=None, metavar="FILE[:COLUMN=V1,V2]",
              help="Photos in FACES of people who wear glasses (a list as --exclude reads it) "
                   "whose frames --real-frames pastes; they are never used as plain faces.")
@click.option("--frame-model", default="no-glasses", show_default=True, metavar="NAME|PATH",
              help="The removal model (trained with --fill) whose first pass finds the donors' "
                   "frames.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Worker processes [default: all cores].")
@click.option("--overwrite", is_flag=True,
              help="Rebuild OUT from scratch (needed when it was made with other options).")
def synth(faces: Path, out: Path, effect: str, reverse: bool, seed: int, variants: int, plain_pairs: int,
          variation: bool,
          style: str | None, color: str | None, material: str | None, tint: str | None, liner: str | None,
          size: str | None, val_fraction: float,
          min_eye_distance: float, exclude_specs: tuple[str, ...], real_frames: int,
          donor_spec: str | None, frame_model: str, workers: int | None, overwrite: bool) -> None:
    """Draw an effect on the plain face photos in FACES and write before/after pairs to OUT.

    \b
    Effects (drawn from the Face Mesh landmarks at full resolution, then cropped):
      glasses    full-rim, browline, semi-rimless or rimless frames in metal,
                 plastic, tortoiseshell or two-tone, refracting lenses with tint
                 and reflections, a shadow, arms to the ears; crops use the
                 wider `glasses` region
      eye-color  iris recoloured in Lab, keeping its texture, pupil and highlights
      makeup     eyeshadow toward the crease and eyeliner with a small wing
    \b
    FACES is a folder (searched recursively) or one image. OUT gets
    {train,val}/{A,B}/<name>__v<k>.png crops (A = original, B = edited, swapped by
    --reverse), dataset.json, manifest.jsonl (one line per pair with the render
    parameters, or per skipped photo with the reason) and report.csv. Photos are
    skipped as unreadable, no-face, multiple-faces, eyes-closed or face-too-small.
    An interrupted run resumes where it stopped. Exits 0 if the dataset has at
    least one pair; 1 if none, or if OUT stops taking writes (disk full: what was
    finished is kept for resuming); 2 for bad options or a FACES/OUT that cannot
    be used.
    """
    model_given = click.get_current_context().get_parameter_source("frame_model") == ParameterSource.COMMANDLINE
    if not real_frames and (model_given or donor_spec):
        raise click.UsageError("--frame-model and --frame-donors are used only with --real-frames N")
    try:
        if effect == "glasses":
            check_pins(style, material, color, tint)
        elif effect == "makeup":
            check_makeup(color, liner)
        elif color is not None:
            parse_target(color)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    spec = crop_spec(partial(default_region, effect), size, dataset=True)
    try:
        exclude = read_exclusion_lists(exclude_specs)
        donors = read_exclusions(donor_spec) if donor_spec else ()
        config = SynthConfig(effect=effect, region=spec, reverse=reverse, seed=seed,
                             variants=variants, plain_pairs=plain_pairs, variation=variation,
                             val_fraction=val_fraction,
                             style=style,
                             color=color, material=material, tint=tint, liner=liner,
                             min_eye_distance=min_eye_distance, exclude=exclude,
                             real_frames=real_frames, frame_donors=donors, frame_model=frame_model)
    except (ValueError, InputError) as exc:
        raise click.UsageError(str(exc)) from None
    frames = donor_frames(faces, config) if real_frames else None
    make_dataset(partial(run_synth, faces, out, config, workers or default_workers(), overwrite, frames=frames),
                 faces, out, label=f"Synthesizing {effect}", title="Synthesized", unit="faces", verb="synthesized",
                 resume_note="{done} records done earlier, {todo} photos to go.")


def donor_frames(faces: Path, config: SynthConfig) -> RealFrames:
    """The frames ``config.frame_model`` finds on the donor photos in ``faces``, with a line a
    donor that gave none; a usage error when none gives a frame."""
    from eyeedit.editing.frames import find_frames  # loads torch and the model: only when asked
    from eyeedit.model.store import ModelError

    donors = find_donors(faces, config.frame_donors)
    if not donors:
        raise click.UsageError(f"--frame-donors: none of the {len(config.frame_donors)} donors is in {faces}")

    def tell(path: Path, problem: str) -> None:
        if problem:
            console.print(f"[yellow]frame donor {path}: {problem}; left out[/]")

    with console.status(f"Finding the frames on {len(donors)} donor photos"):
        try:
            found = find_frames(donors, config.frame_model, on_photo=tell)
        except (ModelError, ValueError) as exc:
            raise click.UsageError(f"--frame-model: {exc}") from None
    if not found.names:
        raise click.UsageError("--frame-donors: no frame was found on any donor photo")
    console.print(f"{len(found.names)} real frames found on {len(donors)} donor photos")
    return RealFrames(found.crops, found.weights, found.names, found.model)
