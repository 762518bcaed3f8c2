"""A contact sheet of an effect applied to real photos: before | after, cropped to the face.

    python scripts/contact_sheet.py no-glasses ../shared/faces/congress /tmp/no-glasses-real.png \
        --only ../shared/faces/congress/glasses.csv:glasses=1 --limit 24

For looking at a model on photos it was not trained on (e.g. `no-glasses` on portraits of people
who really wear glasses). The sheet is for people to look at; it is written outside the
repository because it shows third-party photos.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from eyeedit.data.synth import read_exclusions
from eyeedit.editing.editor import Editor
from eyeedit.imageio import find_images, read_image, write_image
from eyeedit.training.plots import image_grid
from eyeedit.viz import fit_height


def face_box(image: np.ndarray, face) -> np.ndarray:  # noqa: ANN001 - a landmarks.Face
    x0, y0, x1, y1 = (int(v) for v in face.bbox)
    pad = (x1 - x0) // 4
    return image[max(y0 - pad, 0) : (y0 + y1) // 2 + pad, max(x0 - pad, 0) : x1 + pad]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("effect")
    parser.add_argument("photos", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--only", default=None, help="FILE[:COLUMN=VALUES]: only these photos (see synth --exclude)")
    parser.add_argument("--limit", type=int, default=24)
    args = parser.parse_args()
    keep = set(read_exclusions(args.only)) if args.only else None
    editor = Editor.load(args.effect)
    rows = []
    for path in find_images(args.photos):
        if keep is not None and path.name not in keep:
            continue
        image = read_image(path)
        result = editor.run(image)
        if not result.faces:
            continue
        face = result.faces[0].face
        rows.append([fit_height(face_box(image, face), 160), fit_height(face_box(result.image, face), 160)])
        if len(rows) >= args.limit:
            break
    pairs = [rows[i] + rows[i + 1] for i in range(0, len(rows) - 1, 2)]
    write_image(args.out, image_grid(pairs))
    print(f"{args.out}: {len(rows)} photos")


if __name__ == "__main__":
    main()
