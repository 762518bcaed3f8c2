"""Safe image reading and atomic writing.

Every image enters eyeedit through :func:`read_image` as (H, W, 3) uint8 RGB with EXIF
orientation applied, and leaves through :func:`write_image`, which never leaves a half-written
file behind. Errors are :class:`ImageError` with a one-line message naming the file.
Colours given as text (``#rrggbb``) are read and written here too, for every layer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

# Larger than any camera sensor we expect (~100 MP) and small enough to refuse decompression
# bombs before any pixel is decoded.
MAX_PIXELS = 120_000_000
# GIFs are read (first frame) so a folder of them is edited or reported, never silently skipped.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
_PIL_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
                ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF"}


class ImageError(Exception):
    """An image could not be read or written; ``str()`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self) -> tuple:
        # Rebuilt from both fields, so the error survives the trip back from a worker process.
        return type(self), (str(self.path), self.reason)


def write_failure(path: str | os.PathLike, exc: OSError) -> str:
    """A one-line reason for an OSError raised while creating ``path`` (or its folders)."""
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        # mkdir(parents=True) met a file where a folder of the path should be
        # (the folder it was making, when the error names that, or one above it)
        blocker = next((q for q in (Path(path), *Path(path).parents) if q.exists() and not q.is_dir()), None)
        if blocker is not None:
            return f"cannot write: {blocker} is a file, not a folder"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot write: permission denied"
    return f"cannot write: {exc.strerror or exc}"


def is_image_path(path: Path) -> bool:
    """Whether ``path`` names an image by its suffix (the formats eyeedit reads)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def image_format(path: str | os.PathLike) -> str | None:
    """Pillow's format name for a path's suffix ("JPEG" for .jpg and .jpeg), None if unknown."""
    return _PIL_FORMATS.get(Path(path).suffix.lower())


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Any PIL mode to (H, W, 3) uint8 RGB; alpha is composited over white, 16-bit is scaled."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 or img.mode.startswith("I;16") else 255.0
        arr8 = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr8[:, :, None], 3, axis=2)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 if arr.max() <= 1.0 else 1.0
        arr8 = np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr8[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


@dataclass(frozen=True)
class SourceInfo:
    """What a photo's own file says about writing an edit of it back (see :func:`write_image`)."""

    format: str | None = None  # Pillow's name for the source format ("JPEG", "PNG", ...)
    exif: bytes | None = None  # the camera's EXIF, orientation reset to 1 (pixels are upright)
    icc_profile: bytes | None = None  # the colour space the pixel values mean
    qtables: dict[int, list[int]] | None = None  # JPEG quantisation tables
    subsampling: int | None = None  # JPEG chroma subsampling: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0


def _source_info(img: Image.Image) -> SourceInfo:
    exif = Image.Exif()
    exif.load(img.getexif().tobytes())  # a copy: the source image's own stays as it was
    if ExifTags.Base.Orientation in exif:
        exif[ExifTags.Base.Orientation] = 1  # the pixels have been turned upright
    jpeg = img.format == "JPEG"
    return SourceInfo(img.format, exif.tobytes() if len(exif) else None, img.info.get("icc_profile"),
                      getattr(img, "quantization", None) if jpeg else None,
                      JpegImagePlugin.get_sampling(img) if jpeg else None)


# Stored pixels to upright ones for each EXIF orientation (the operations Pillow's exif_transpose
# performs, on an (H, W, C) array).
_UPRIGHT = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1),
}


def _decode_jpeg(path: Path, img: Image.Image) -> np.ndarray | None:
    """An RGB or greyscale JPEG decoded by OpenCV, upright; None to leave it to Pillow.

    Both use libjpeg-turbo and give the same pixels, but OpenCV's decode and colour conversion
    took 45-60% of Pillow's time on a 1920x1080 photo (9.9 vs 16.3 and 19.8 vs 44.2 ms with
    Pillow's orientation and RGB copies, two runs of `scripts/bench_detection.py`), which a
    photo sent to the web app waits for. Only complete files come this way (ending in the JPEG end marker):
    OpenCV fills a truncated file with grey where Pillow reports it.
    """
    if img.format != "JPEG" or img.mode not in ("RGB", "L"):
        return None
    data = np.fromfile(path, np.uint8)
    if data[-2:].tobytes() != b"\xff\xd9":
        return None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None or bgr.shape[:2] != (img.height, img.width):
        return None
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    turn = _UPRIGHT.get(img.getexif().get(ExifTags.Base.Orientation, 1))
    return np.ascontiguousarray(turn(rgb)) if turn else rgb


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB.

    Applies EXIF orientation; converts grayscale, palette, CMYK, RGBA (over white) and 16-bit
    images to 8-bit RGB; takes the first frame of animations. Raises :class:`ImageError` for a
    missing, unreadable, truncated, oversized or non-image file.
    """
    return read_photo(path, max_pixels)[0]


def read_photo(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, SourceInfo]:
    """:func:`read_image`, plus what is needed to write an edit back like the original."""
    p = Path(path)
    if p.is_dir():
        raise ImageError(p, "is a directory, not an image")
    if not p.exists():
        raise ImageError(p, "no such file" + (" (broken link)" if p.is_symlink() else ""))
    try:
        if p.stat().st_size == 0:
            raise ImageError(p, "empty file")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageError(p, f"too large ({w}x{h} pixels, limit {max_pixels:,})")
                if w < 1 or h < 1:
                    raise ImageError(p, f"has no pixels ({w}x{h})")
                fast = _decode_jpeg(p, img)
                if fast is not None:
                    return fast, _source_info(img)
                img.seek(0)
                img.load()
                upright = ImageOps.exif_transpose(img)
                return np.ascontiguousarray(_to_rgb8(upright)), _source_info(img)
    except ImageError:
        raise
    except PermissionError:
        raise ImageError(p, "permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(p, "not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(p, "too large (decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "truncated" in reason.lower():
            reason = "truncated or corrupt image data"
        raise ImageError(p, f"cannot decode: {reason}") from None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", durable: bool = False) -> Iterator:
    """Open a temp file beside ``path`` and rename it over ``path`` only if the block succeeds.

    Readers never see a partial file, and a killed process leaves at most a hidden
    ``.NAME.*.tmp`` file, which the next run removes with :func:`remove_temp_files`.
    ``durable`` also flushes the data to disk before the rename (survives a power cut); it
    costs ~4 ms a file here, so it is kept for model files and checkpoints rather than every
    crop.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def staged_folder(out_dir: str | os.PathLike) -> Iterator[Path]:
    """A hidden temp folder beside ``out_dir`` to write a set of outputs into; only if the block
    succeeds are its files moved into ``out_dir`` (same-named files replaced, nothing else
    touched), so a failure halfway (a full disk, a bad input) leaves no half of a report."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield stage
        for path in sorted(stage.rglob("*")):
            if path.is_file():
                target = out / path.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def remove_temp_files(*folders: Path, recursive: bool = True) -> None:
    """Delete the ``.NAME.*.tmp`` files that atomic writes in flight left in ``folders`` when
    their process was killed."""
    for folder in folders:
        if folder.is_dir():
            for tmp in folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def write_image(
    path: str | os.PathLike, image: np.ndarray, *, quality: int = 95, overwrite: bool = True,
    like: SourceInfo | None = None,
) -> Path:
    """Atomically write an (H, W, 3) or (H, W) uint8 image; the format follows the suffix.

    ``like`` (from :func:`read_photo`) keeps the source's EXIF (orientation 1) and ICC profile,
    and a JPEG written from a JPEG reuses its quantisation tables and chroma subsampling, so
    unedited areas change as little as JPEG allows.
    """
    p = Path(path)
    fmt = _PIL_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise ImageError(p, f"unsupported output format {p.suffix!r} (use {', '.join(IMAGE_SUFFIXES)})")
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W[, 3]) uint8 image, got {image.shape} {image.dtype}")
    if not overwrite and p.exists():
        raise ImageError(p, "exists already (pass overwrite to replace it)")
    options = _save_options(fmt, quality, like or SourceInfo())
    try:
        with atomic_write(p) as fh:
            Image.fromarray(np.ascontiguousarray(image)).save(fh, format=fmt, **options)
    except OSError as exc:
        raise ImageError(p, write_failure(p, exc)) from None
    return p


def _save_options(fmt: str, quality: int, like: SourceInfo) -> dict[str, Any]:
    options: dict[str, Any] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "PNG":
        options = {"compress_level": 1}  # fast; PNG stays lossless at any level
    if fmt == "JPEG" and like.qtables:
        options = {"qtables": like.qtables, "subsampling": like.subsampling}
    if like.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["exif"] = like.exif
    if like.icc_profile and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["icc_profile"] = like.icc_profile
    return options


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Atomically copy a file's bytes (an output that is, exactly, its input)."""
    t = Path(target)
    try:
        with open(source, "rb") as src, atomic_write(t) as fh:
            shutil.copyfileobj(src, fh)
    except OSError as exc:
        raise ImageError(t, write_failure(t, exc)) from None
    return t


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write a UTF-8 text file."""
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name the same existing file (through links or relative parts)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def find_images(root: str | os.PathLike) -> list[Path]:
    """Image-suffixed paths under ``root`` (recursive, sorted, hidden files skipped).

    Directories and broken links whose names look like images are included on purpose, so the
    caller reports them as unreadable instead of silently ignoring them.
    """
    base = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames + [d for d in dirnames if is_image_path(Path(d))]:
            if not name.startswith(".") and is_image_path(Path(name)):
                found.append(Path(dirpath) / name)
    return sorted(set(found))


def parse_color(text: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` or ``"rrggbb"`` to an (r, g, b) tuple; raises ValueError otherwise."""
    s = text.strip().lstrip("#")
    if len(s) != 6 or any(c not in "0123456789abcdefABCDEF" for c in s):
        raise ValueError(f"colour {text!r} is not a hex value like #3a6ea5")
    return int(s[0:2], 16), int(s[2:4], 16), int(s[4:6], 16)


def hex_color(rgb: tuple[int, int, int]) -> str:
    """(r, g, b) -> ``"#rrggbb"``."""
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb))
