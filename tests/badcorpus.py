"""A corpus of bad and awkward inputs, generated on the fly (no binary fixtures).

``make_corpus(folder)`` writes every case and returns {file name: expected outcome}, where the
outcome is "ok" (a valid image that must be processed), or the substring of the one-line reason
the reader must give.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from eyeedit.data.samples import astronaut


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def make_corpus(folder: Path) -> dict[str, str]:
    """Write the corpus into ``folder``; returns {name: "ok" or expected reason substring}."""
    folder.mkdir(parents=True, exist_ok=True)
    face = Image.fromarray(astronaut())
    cases: dict[str, str] = {}

    def put(name: str, data: bytes, expect: str) -> None:
        (folder / name).write_bytes(data)
        cases[name] = expect

    put("zero-byte.jpg", b"", "empty file")
    # distinct stems: synth and prepare key photos by name without the suffix
    put("truncated-jpeg.jpg", _encoded(face, "JPEG")[:5000], "cannot decode")
    put("truncated-png.png", _encoded(face, "PNG")[:5000], "cannot decode")
    put("text.jpg", b"this is not an image\n", "not an image")
    put("bomb.png", _png_header_only(50000, 50000), "too large")
    put("cmyk.jpg", _encoded(face.convert("CMYK"), "JPEG"), "ok")
    put("16bit.png", _encoded(Image.fromarray((np.asarray(face.convert("L")).astype(np.uint16) * 257)), "PNG"), "ok")
    rgba = face.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.where(np.arange(512)[None, :] < 256, 0, 255).astype(np.uint8).repeat(512, 0)))
    put("rgba-transparent-face.png", _encoded(rgba, "PNG"), "ok")
    put("one-pixel.png", _encoded(Image.new("RGB", (1, 1)), "PNG"), "ok")
    put("grayscale.jpg", _encoded(face.convert("L"), "JPEG"), "ok")
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated: the reader must turn it upright
    put("exif-rotated.jpg", _encoded(face.rotate(-90, expand=True), "JPEG", exif=exif), "ok")
    frames = [face, face.transpose(Image.FLIP_LEFT_RIGHT)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    put("animated.gif", buf.getvalue(), "ok")
    (folder / "directory.jpg").mkdir(exist_ok=True)
    cases["directory.jpg"] = "directory"
    os.symlink(folder / "gone.png", folder / "broken-link.png")
    cases["broken-link.png"] = "broken link"
    put("visage-éàü-顔.png", _encoded(face, "PNG"), "ok")
    locked = folder / "locked.png"
    locked.write_bytes(_encoded(face, "PNG"))
    locked.chmod(0)
    # root reads any file whatever its mode, so only expect a refusal for other users
    cases["locked.png"] = "ok" if os.geteuid() == 0 else "permission denied"
    return cases


def checksums(folder: Path) -> dict[str, str]:
    """{relative path: sha256 or link target or 'dir'} for every entry under ``folder``."""
    import hashlib

    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            try:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            except PermissionError:
                out[rel] = f"mode:{p.stat().st_mode:o}"
    return out
