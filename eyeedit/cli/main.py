"""The `eyeedit` command line: parse options, build a config, call the library, render results.

Heavy libraries (torch, mediapipe) are imported inside the commands that need them, so that
`eyeedit --help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from eyeedit import __version__
from eyeedit.cli.ui import console, fail, files_table, warn


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="eyeedit")
def cli() -> None:
    """Edit the eye region of faces with a conditional GAN (pix2pix).

    \b
    Use an effect:
      apply     edit photos with an effect model (detect, align, translate, blend)
      preview   live webcam (or video file) preview of an effect
      models    list the effect models found in the model stores
      serve     the web app: photos and webcam in a browser (needs eyeedit[web])
    \b
    Make an effect:
      prepare   turn real before/after photos into an aligned paired dataset
      synth     draw glasses, eye colour or makeup on plain faces to make paired data
      train     train a pix2pix model on a paired dataset (CPU, GPU, or several via torchrun)
      eval      score a model on validation pairs beside baselines, with a gallery
      run       carry out a recipe (pipelines/*.toml): data, train, eval, publish
      export    export a model to ONNX
    \b
    Tools:
      bench     time every stage on this machine
      samples   write sample faces made from the bundled public-domain astronaut
      crop      detect faces and write aligned eye-region crops with landmark overlays
      demo      apply every effect to the sample face; write a grid and a web page

    Run `eyeedit COMMAND --help` for the options of each command.
    """


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def samples(folder: Path) -> None:
    """Write a small set of sample faces into FOLDER.

    The base image is scikit-image's public-domain astronaut portrait; the variants (rotated,
    scaled, mirrored, at the frame edge, two faces, no face) are generated from it.
    """
    from eyeedit.data.samples import write_samples

    files_table("Sample images", write_samples(folder))


@cli.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("crops"), show_default=True, help="Folder for crops and overlays.")
@click.option("--region", type=click.Choice(["eyes", "glasses", "left-eye", "right-eye"]),
              default="eyes", show_default=True, help="Which eye region to crop.")
@click.option("--size", default=None, metavar="WxH", help="Crop size, e.g. 256x128 (default: the region's).")
@click.option("--max-faces", default=4, show_default=True, help="Most faces to look for per image.")
def crop(images: tuple[Path, ...], out_dir: Path, region: str, size: str | None, max_faces: int) -> None:
    """Detect faces in IMAGES and write each face's aligned crop and a landmark overlay.

    Outputs go to OUT as <name>_face<i>.png (the crop) and <name>_landmarks.png.
    Exits 1 if any image could not be read or had no face.
    """
    from eyeedit.regions import parse_size, region_spec
    from eyeedit.data.crops import crop_images

    try:
        spec = region_spec(region, parse_size(size) if size else None)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--size") from None
    written, problems = crop_images(images, out_dir, spec, max_faces)
    files_table("Crops", written)
    for problem in problems:
        warn(problem)
    if problems:
        sys.exit(1)


@cli.command()
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo"), show_default=True, help="Folder for the demo outputs.")
def demo(out_dir: Path) -> None:
    """Run the pipeline on the bundled sample face (the astronaut) and write the results.

    Writes the aligned crops of each region, a landmark overlay, the photo edited by every
    available effect model, a grid of them (grid.png) and a page showing it all (index.html).
    """
    from eyeedit.demo import run_demo

    try:
        result = run_demo(out_dir)
    except RuntimeError as exc:
        fail(str(exc))
    files_table("Demo outputs", result.files)
    shown = ", ".join(result.effects) if result.effects else "no effect models installed yet"
    console.print(f"Effects: {shown}. Open [bold]{result.index}[/] to see everything "
                  f"(grid: {result.grid}).")


from eyeedit.cli.apply import apply  # noqa: E402
from eyeedit.cli.models import models  # noqa: E402
from eyeedit.cli.bench import bench  # noqa: E402
from eyeedit.cli.eval import eval_command  # noqa: E402
from eyeedit.cli.export import export  # noqa: E402
from eyeedit.cli.preview import preview  # noqa: E402
from eyeedit.cli.run import run_command  # noqa: E402

cli.add_command(apply)
cli.add_command(models)
cli.add_command(preview)
cli.add_command(export)
cli.add_command(eval_command)
cli.add_command(run_command)
cli.add_command(bench)

from eyeedit.cli.prepare import prepare  # noqa: E402

cli.add_command(prepare)

from eyeedit.cli.synth import synth  # noqa: E402

cli.add_command(synth)

from eyeedit.cli.train import train  # noqa: E402

cli.add_command(train)

from eyeedit.cli.serve import serve  # noqa: E402

cli.add_command(serve)


def main() -> None:
    """Console-script entry point."""
    from eyeedit.landmarks import silence_native_logs

    silence_native_logs()
    cli(prog_name="eyeedit")


if __name__ == "__main__":
    main()
