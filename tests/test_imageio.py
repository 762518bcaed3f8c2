import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from eyeedit.imageio import (
    ImageError,
    atomic_write,
    find_images,
    read_image,
    same_file,
    write_image,
)


def _save(path, img: Image.Image, **kw):
    img.save(path, **kw)
    return path


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_lossless_round_trip(tmp_path, rgb, suffix):
    path = tmp_path / f"a{suffix}"
    kw = {"lossless": True} if suffix == ".webp" else {}
    _save(path, Image.fromarray(rgb), **kw)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)
    assert np.array_equal(out, rgb)


def test_jpeg_reads_close(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (32, 1, 3))
    path = _save(tmp_path / "a.jpg", Image.fromarray(smooth), quality=95)
    assert np.abs(read_image(path).astype(int) - smooth).mean() < 3


def test_exif_orientation_applied(tmp_path, rgb):
    img = Image.fromarray(rgb)  # 60 wide, 40 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    path = _save(tmp_path / "r.jpg", img, exif=exif, quality=100)
    out = read_image(path)
    assert out.shape == (60, 40, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_jpegs_read_as_pillow_reads_them_upright(tmp_path, rgb, orientation, mode):
    from PIL import ImageOps

    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(tmp_path / "o.jpg", Image.fromarray(rgb).convert(mode), exif=exif, quality=90)
    with Image.open(path) as img:
        expected = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    out = read_image(path)
    assert out.flags["C_CONTIGUOUS"] and np.array_equal(out, expected)


def test_jpeg_with_data_after_its_end_marker_still_reads(tmp_path, rgb):
    path = _save(tmp_path / "t.jpg", Image.fromarray(rgb), quality=90)
    clean = read_image(path)
    path.write_bytes(path.read_bytes() + b"trailing bytes some cameras add")
    assert np.array_equal(read_image(path), clean)


def test_grayscale_16bit_rgba_cmyk_palette(tmp_path):
    gray = _save(tmp_path / "g.png", Image.fromarray(np.full((8, 8), 100, np.uint8)))
    assert read_image(gray).shape == (8, 8, 3) and read_image(gray)[0, 0, 0] == 100

    arr16 = np.full((8, 8), 65535 // 2, np.uint16)
    p16 = _save(tmp_path / "s.png", Image.fromarray(arr16))
    out16 = read_image(p16)
    assert out16.dtype == np.uint8 and abs(int(out16[0, 0, 0]) - 128) <= 1

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:4, :, 3] = 255  # top half opaque red, bottom half transparent
    prgba = _save(tmp_path / "t.png", Image.fromarray(rgba, "RGBA"))
    out = read_image(prgba)
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[7, 0]) == (255, 255, 255)

    cmyk = _save(tmp_path / "c.jpg", Image.new("CMYK", (8, 8), (0, 255, 255, 0)))
    out_c = read_image(cmyk)
    assert out_c.shape == (8, 8, 3) and out_c[0, 0, 0] > 200 and out_c[0, 0, 1] < 60

    pal = _save(tmp_path / "p.gif", Image.new("P", (5, 5), 3))
    assert read_image(pal).shape == (5, 5, 3)


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out = read_image(path)
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 50


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "name,make,reason",
    [
        ("empty.jpg", lambda p: p.write_bytes(b""), "empty file"),
        ("text.jpg", lambda p: p.write_text("hello, not an image"), "not an image"),
        ("bomb.png", lambda p: p.write_bytes(_png_header_only(50000, 50000)), "too large"),
        ("dir.jpg", lambda p: p.mkdir(), "directory"),
        ("missing.png", lambda p: None, "no such file"),
        ("broken.png", lambda p: p.symlink_to(p.parent / "nowhere.png"), "broken link"),
    ],
)
def test_bad_files_get_one_line_reason(tmp_path, name, make, reason):
    path = tmp_path / name
    make(path)
    with pytest.raises(ImageError) as info:
        read_image(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and reason in msg and "\n" not in msg


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png")])
def test_truncated_files(tmp_path, rgb, fmt, suffix):
    buf = io.BytesIO()
    Image.fromarray(np.repeat(np.repeat(rgb, 8, 0), 8, 1)).save(buf, format=fmt)
    path = tmp_path / f"trunc{suffix}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="cannot decode"):
        read_image(path)


def test_unreadable_permissions(tmp_path, rgb, monkeypatch):
    path = _save(tmp_path / "locked.png", Image.fromarray(rgb))
    path.chmod(0)
    if os.geteuid() == 0:  # root reads files whatever their permissions: refuse as the OS would
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(ImageError, match="permission denied") as caught:
        read_image(path)
    assert str(path) in str(caught.value)


def test_pixel_limit_is_configurable(tmp_path, rgb):
    path = _save(tmp_path / "a.png", Image.fromarray(rgb))
    with pytest.raises(ImageError, match="too large"):
        read_image(path, max_pixels=100)


def test_write_is_atomic_and_formats_follow_suffix(tmp_path, rgb):
    for suffix in (".png", ".jpg", ".webp", ".bmp", ".tiff"):
        path = write_image(tmp_path / "sub" / f"o{suffix}", rgb)
        assert read_image(path).shape == rgb.shape
    assert sorted(p.name for p in (tmp_path / "sub").iterdir() if p.name.startswith(".")) == []
    with pytest.raises(ImageError, match="unsupported output format"):
        write_image(tmp_path / "o.xyz", rgb)
    with pytest.raises(ImageError, match="exists already"):
        write_image(tmp_path / "sub" / "o.png", rgb, overwrite=False)


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "x.bin"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write(b"partial")
            raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_non_ascii_names_and_same_file(tmp_path, rgb):
    path = write_image(tmp_path / "fåce ñ 顔.png", rgb)
    assert np.array_equal(read_image(path), rgb)
    link = tmp_path / "link.png"
    link.symlink_to(path)
    assert same_file(link, path) and not same_file(path, tmp_path / "nope.png")


def test_find_images(tmp_path, rgb):
    write_image(tmp_path / "a" / "b" / "x.png", rgb)
    write_image(tmp_path / "y.jpg", rgb)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")
    (tmp_path / "d.jpg").mkdir()
    names = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    assert names == ["a/b/x.png", "d.jpg", "y.jpg"]


def test_written_files_get_the_usual_permissions(tmp_path, rgb):
    old = os.umask(0o022)
    try:
        path = write_image(tmp_path / "perm.png", rgb)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
