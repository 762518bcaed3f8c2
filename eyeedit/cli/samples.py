"""`eyeedit samples`: sample faces made from the bundled public-domain astronaut."""

from __future__ import annotations

from pathlib import Path

import click

from eyeedit.cli.options import write_failures
from eyeedit.cli.ui import files_table
from eyeedit.data.samples import astronaut, moving_face_video, write_samples, write_video

CLIP_FRAMES = 60  # 2 s at 30 FPS


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def samples(folder: Path) -> None:
    """Write a small set of sample faces into FOLDER, and a clip to preview.

    The base image is scikit-image's public-domain astronaut portrait; the variants (rotated,
    scaled, mirrored, at the frame edge, two faces, no face) and moving-face.avi (2 s at 30 FPS,
    640x480, the face drifting: `eyeedit preview --video FOLDER/moving-face.avi`) are made from it.
    """
    with write_failures(folder):
        written = write_samples(folder)
        # a clip to try `eyeedit preview --video` on: 2 s of the face drifting
        frames, _ = moving_face_video(astronaut(), CLIP_FRAMES, (640, 480), seed=1)
        written.append(write_video(folder / "moving-face.avi", frames))
    files_table("Samples", written)
