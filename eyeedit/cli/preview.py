"""`eyeedit preview`: live webcam or video preview of an effect."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from eyeedit.cli.options import (
    Finite,
    chosen_model,
    model_options,
    require_model,
    runtime_options,
)
from eyeedit.cli.ui import console, fail
from eyeedit.editing.editor import EditOptions, Editor
from eyeedit.editing.preview import PreviewConfig, SourceError, check_output, run_preview
from eyeedit.editing.tracking import SmoothingConfig
from eyeedit.model.store import ModelError


@click.command()
@model_options
@click.option("--camera", type=int, default=0, show_default=True, help="Camera index to open.")
@click.option("--video", type=click.Path(path_type=Path), default=None, help="Replay this video file instead of a camera.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Record the processed stream to this file (.mp4 or .avi).")
@click.option("--headless", is_flag=True, help="No window (servers, tests); use with --video and --output.")
@click.option("--no-sync", is_flag=True, help="Process every frame of --video as fast as possible instead of in real time.")
@click.option("--view", type=click.Choice(["side-by-side", "single"]), default="side-by-side", show_default=True,
              help="Window layout (key v switches).")
@click.option("--strength", type=Finite(0, 1), default=1.0, show_default=True, help="Edit strength (keys [ and ]).")
@click.option("--blend", type=click.Choice(["feather", "laplacian"]), default="feather", show_default=True,
              help="Blend mode (Poisson is for stills: too slow for video).")
@click.option("--max-faces", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Most faces tracked and edited (the largest).")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="Stop after this many frames.")
@click.option("--min-cutoff", type=Finite(min=0.001), default=0.2, show_default=True,
              help="One Euro filter: cutoff (Hz) for a still face; lower is steadier.")
@click.option("--beta", type=Finite(min=0), default=2.0, show_default=True,
              help="One Euro filter: speed coefficient (per eye distance/s); higher follows motion faster.")
@click.option("--no-smooth", is_flag=True, help="Turn smoothing off (for comparison).")
@runtime_options
def preview(effect: str | None, model_path: Path | None, camera: int, video: Path | None,
            output: Path | None, headless: bool, no_sync: bool, view: str, strength: float, blend: str,
            max_faces: int, max_frames: int | None, min_cutoff: float, beta: float, no_smooth: bool,
            adaptive_mask: bool, frame_shadow: bool, backend: str, device: str) -> None:
    """Show an effect live on a webcam, or replay a video file through it.

    \b
    Keys: q or Esc quit, space toggles the effect, s saves a snapshot,
          [ and ] lower and raise the strength, v switches the view.

    Frames without a face pass through unchanged. Faces are found by the full-range detector
    every 10 frames (and whenever one is lost) and followed in between; each face's crop is
    smoothed with its own One Euro filter on the eye corners, so the edit holds still on a still
    face and blinks do not move it.

    Exit status: 0 when the stream ended or you quit; 1 when the model, camera or video cannot be
    used or the recording cannot be written (one line says which file and why; a recording is
    only renamed into place when complete); 2 on usage errors.
    """
    require_model(effect, model_path)
    if not headless and not _has_display():  # OpenCV's window would abort the process, silently
        raise click.UsageError("no display to show the preview on ($DISPLAY is not set); "
                               "use --headless with --output FILE or --max-frames N")
    if headless and output is None and max_frames is None and video is None:
        raise click.UsageError("--headless from a camera needs --output or --max-frames (nothing to show)")
    options = EditOptions(blend=blend, strength=strength, max_faces=max_faces, adaptive=adaptive_mask,
                          frame_shadow=frame_shadow)
    cfg = PreviewConfig(camera=camera, video=video, output=output, headless=headless, sync=not no_sync,
                        view=view, max_frames=max_frames,
                        smoothing=SmoothingConfig(min_cutoff=min_cutoff, beta=beta), smooth=not no_smooth)
    try:
        check_output(cfg)
    except SourceError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        editor = Editor.load(chosen_model(effect, model_path), backend=backend, device=device, options=options)
        stats = run_preview(editor, cfg)
    except (ModelError, SourceError) as exc:
        fail(str(exc))
    stages = ", ".join(f"{k} {v / max(stats.frames, 1):.1f} ms" for k, v in stats.stage_ms.items())
    console.print(f"{stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} FPS); per frame: {stages}")
    if output is not None and stats.frames:
        console.print(f"Recorded [bold]{output}[/]")


def _has_display() -> bool:
    """Whether a window can be opened: on Linux (X11 or Wayland) a display must be named."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
