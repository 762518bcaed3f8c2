"""Write the README's synth gallery from the public-domain astronaut only.

Usage: python scripts/gallery_synth.py [OUT_DIR]   (default: docs/gallery)

One image per effect, docs/gallery/synth_<effect>.png: the original crop (A) followed by three
synthesized B crops (variants 0-2 of seed 0;
blue, green and grey for eye-color). The astronaut's head is upscaled 2x first, so that the effects are
drawn at a resolution closer to a real portrait's (her eyes are only ~42 px apart).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2

from eyeedit.data.effects import EFFECTS
from eyeedit.data.samples import astronaut
from eyeedit.data.synth import Photo, SynthConfig, default_region, render_pairs
from eyeedit.imageio import write_image
from eyeedit.landmarks import detect_faces
from eyeedit.training.plots import image_grid


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/gallery")
    head = cv2.resize(astronaut()[20:240, 110:340], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    face = detect_faces(head, max_faces=1)[0]
    photo = Photo("astronaut", "astronaut", Path("astronaut.png"))
    for effect in EFFECTS:
        if effect == "eye-color":  # her irises are brown: show three colours that differ from it
            pairs = [render_pairs(head, face, photo, SynthConfig(effect=effect, color=c))[0]
                     for c in ("blue", "green", "grey")]
        else:
            config = SynthConfig(effect=effect, region=default_region(effect), variants=3)
            pairs = render_pairs(head, face, photo, config)
        path = write_image(out / f"synth_{effect}.png", image_grid([[pairs[0].a] + [p.b for p in pairs]]))
        print(path, path.stat().st_size // 1024, "KB")


if __name__ == "__main__":
    main()
