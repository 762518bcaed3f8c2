"""Model files and where effects are found; reads metadata without loading any weights.

A model file is one ``.safetensors`` file: the generator's weights plus a JSON document in the
safetensors header under the key ``eyeedit`` (architecture config, region spec, channels,
normalisation, effect name, data summary, validation metrics). safetensors holds only raw
tensors, so loading a model never unpickles anything. Weights are read and written by
:mod:`eyeedit.model.weights`; this module needs neither torch nor the weights.

Lookup order for an effect NAME: ``$EYEEDIT_MODELS/NAME.safetensors``; the user store
(``$XDG_DATA_HOME/eyeedit/models``, default ``~/.local/share/eyeedit/models``); the models
shipped inside the package (``eyeedit/weights/``). A file is named explicitly instead
(``--model PATH``, or a path where a command takes "a name or a file").
"""

from __future__ import annotations

import difflib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eyeedit.imageio import atomic_write
from eyeedit.regions import RegionSpec

MODEL_FORMAT = "eyeedit-model/1"
META_KEY = "eyeedit"
SUFFIX = ".safetensors"
PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "weights"
# The fields every model's metadata must carry for the editor to rebuild and run it.
REQUIRED_META = ("format", "effect", "generator", "region")
# An effect name is a file name in a store, never a path: letters, digits, '-', '_' and '.'.
EFFECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_HEADER = 100_000_000
# Files in the model folders that are instruments, not effects (the glasses judge,
# eyeedit/weights/judge.safetensors): never listed or looked up as an effect.
NOT_EFFECTS = frozenset({"judge"})


class ModelError(Exception):
    """A model file is missing, malformed or does not match its metadata (one-line message)."""


@dataclass(frozen=True)
class ModelFile:
    """A model file whose metadata has been read and checked once.

    ``source`` says where it was found: "path" (named explicitly), "$EYEEDIT_MODELS", "user" or
    "package".
    """

    path: Path
    metadata: dict[str, Any]
    source: str = "path"

    @property
    def effect(self) -> str:
        return str(self.metadata["effect"])

    @property
    def region(self) -> RegionSpec:
        return RegionSpec.from_dict(self.metadata["region"])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the crops the generator takes."""
        w, h = self.metadata.get("size") or (self.region.width, self.region.height)
        return int(w), int(h)

    @property
    def in_channels(self) -> int:
        return int(self.metadata["generator"].get("in_channels", 3))


@dataclass(frozen=True)
class StoreEntry:
    """A file in one of the stores, not read yet (``eyeedit models`` lists these)."""

    effect: str
    path: Path
    source: str


def user_store() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "eyeedit" / "models"


def store_dirs() -> list[tuple[str, Path]]:
    """(source, folder) pairs in lookup order."""
    dirs = []
    env = os.environ.get("EYEEDIT_MODELS")
    if env:
        if Path(env).is_dir() or not Path(env).exists():
            dirs.append(("$EYEEDIT_MODELS", Path(env)))
        else:
            warnings.warn(f"EYEEDIT_MODELS={env} is not a folder; ignored", stacklevel=2)
    dirs.append(("user", user_store()))
    dirs.append(("package", PACKAGE_MODELS))
    return dirs


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor table and ``__metadata__``), no weights."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: no such model file")
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ModelError(f"{p}: not a safetensors file (too short)")
            n = int.from_bytes(head, "little")
            if n <= 0 or n > MAX_HEADER or n > p.stat().st_size - 8:
                raise ModelError(f"{p}: not a safetensors file (bad header length)")
            header = json.loads(fh.read(n))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelError(f"{p}: not a safetensors file (header is not JSON)") from None
    except OSError as exc:
        raise ModelError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if not isinstance(header, dict):
        raise ModelError(f"{p}: not a safetensors file (header is not a JSON object)")
    # A cut-off download keeps its header: the tensor table says how many bytes must follow.
    ends = [v["data_offsets"][1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and isinstance(v.get("data_offsets"), list)
            and len(v["data_offsets"]) == 2 and isinstance(v["data_offsets"][1], int)]
    held = p.stat().st_size - 8 - n
    if ends and max(ends) > held:
        raise ModelError(f"{p}: truncated (its weights need {max(ends):,} bytes, the file holds {held:,})")
    return header


def read_metadata(path: str | os.PathLike, required: tuple[str, ...] = REQUIRED_META,
                  key: str = META_KEY, fmt: str = MODEL_FORMAT) -> dict[str, Any]:
    """The eyeedit metadata of a model file, read from its header only (no weights loaded).

    ``required`` names the fields it must carry (an effect model's by default).
    """
    p = Path(path)
    raw = (read_header(p).get("__metadata__") or {}).get(key)
    if raw is None:
        raise ModelError(f"{p}: safetensors file without eyeedit metadata (not an eyeedit model)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise ModelError(f"{p}: eyeedit metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ModelError(f"{p}: unsupported model format {found!r} (want {fmt})")
    missing = [k for k in required if k not in meta]
    if missing:
        raise ModelError(f"{p}: model metadata lacks {', '.join(missing)}")
    return meta


def open_model(path: str | os.PathLike, source: str = "path") -> ModelFile:
    """Read and check a model file's metadata: region, crop size and channels must agree.

    Raises ModelError naming the file and the mismatch; the weights are checked against the
    generator config when they are loaded (:func:`eyeedit.model.weights.load_generator`).
    """
    p = Path(path)
    meta = read_metadata(p)
    try:
        region = RegionSpec.from_dict(meta["region"])
        gen = meta["generator"]
        size = meta.get("size") or [region.width, region.height]
        channels = int(gen.get("in_channels", 3)), int(gen.get("out_channels", 3))
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # hand-edited or foreign
        raise ModelError(f"{p}: bad region or generator in metadata ({exc})") from None
    if [int(v) for v in size] != [region.width, region.height]:
        raise ModelError(f"{p}: metadata size {size[0]}x{size[1]} does not match its region "
                         f"{region.name} {region.width}x{region.height}")
    if channels[0] not in (1, 3) or channels[1] not in (1, 3):
        raise ModelError(f"{p}: generator channels {channels} are not 1 or 3")
    data = meta.get("data")
    shadow = data.get("frame_shadow") if isinstance(data, dict) else None
    if shadow is not None and not _is_shadow(shadow):
        raise ModelError(f"{p}: bad frame_shadow in metadata (want numbers strength 0-1, angle, "
                         f"offset and softness 0-0.5)")
    return ModelFile(p, meta, source)


def _is_shadow(value: Any) -> bool:
    """A frame's shadow as a model records it (see ``eyeedit.editing.blending.frame_shadow``)."""
    keys = ("strength", "angle", "offset", "softness")
    numbers = isinstance(value, dict) and all(
        isinstance(value.get(k), (int, float)) and not isinstance(value.get(k), bool) for k in keys)
    if not numbers:
        return False
    return (0 <= value["strength"] <= 1 and abs(value["angle"]) <= 180
            and 0 <= value["offset"] <= 0.5 and 0 <= value["softness"] <= 0.5)


def find_model(effect: str) -> ModelFile:
    """The model of an effect NAME, in lookup order. Names are names: a path is refused."""
    if not EFFECT_NAME.match(effect) or effect.endswith(SUFFIX):
        raise ModelError(f"effect {effect!r} is not a name (letters, digits, '-', '_'); "
                         f"give a model file with --model PATH")
    if effect in NOT_EFFECTS:
        raise ModelError(f"{effect!r} is an instrument for `eyeedit eval --real`, not an effect")
    for source, folder in store_dirs():
        candidate = folder / f"{effect}{SUFFIX}"
        if candidate.is_file():
            return open_model(candidate, source)
    available = sorted({e.effect for e in list_models()})
    listing = ", ".join(available) if available else "none installed"
    close = difflib.get_close_matches(effect, available, n=1)
    if close:  # a slip of the keyboard, not a model to train
        raise ModelError(f"unknown effect {effect!r}: did you mean {close[0]!r}? (available: {listing})")
    raise ModelError(
        f"unknown effect {effect!r} (available: {listing}); train one with "
        f"`eyeedit train PAIRS --out runs/{effect} --effect {effect}`"
    )


def resolve(name_or_path: str | os.PathLike) -> ModelFile:
    """A model file path (anything ending in .safetensors or holding a folder) or an effect name."""
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, os.PathLike) or text.endswith(SUFFIX) or os.sep in text or "/" in text:
        return open_model(text)
    return find_model(text)


def list_models() -> list[StoreEntry]:
    """Every model file in every store, in lookup order (a name may appear in several stores)."""
    entries = []
    for source, folder in store_dirs():
        if folder.is_dir():
            for f in sorted(folder.glob(f"*{SUFFIX}")):
                if f.is_file() and f.stem not in NOT_EFFECTS:  # a folder named X.safetensors is not a model
                    entries.append(StoreEntry(f.stem, f, source))
    return entries


def install_model(path: str | os.PathLike, effect: str) -> Path:
    """Copy a model file into the user store as ``<effect>.safetensors`` (atomically).

    The copy's metadata names the effect it is installed as, so the editor reports that name.
    The weights are copied byte for byte; only the header's metadata changes.
    """
    if not EFFECT_NAME.match(effect):
        raise ModelError(f"effect {effect!r} is not a name (letters, digits, '-', '_')")
    model = open_model(path)  # refuses anything that is not a model
    dest = user_model_path(effect)
    blob = Path(path).read_bytes()
    if model.effect != effect:
        blob = with_metadata(blob, {**model.metadata, "effect": effect})
    with atomic_write(dest, durable=True) as fh:
        fh.write(blob)
    return dest


def user_model_path(effect: str) -> Path:
    """Where :func:`install_model` puts the model it installs as ``effect``."""
    return user_store() / f"{effect}{SUFFIX}"


def shipped_model(effect: str) -> Path | None:
    """The model shipped with eyeedit under ``effect``, or None: a user model of that name is
    used instead of it (see :func:`store_dirs`)."""
    path = PACKAGE_MODELS / f"{effect}{SUFFIX}"
    return path if path.is_file() else None


def with_metadata(blob: bytes, metadata: dict[str, Any], key: str = META_KEY) -> bytes:
    """A safetensors file's bytes with its ``__metadata__[key]`` replaced (tensors untouched).

    Tensor offsets are relative to the end of the header, so only the header is rewritten;
    it is padded with spaces to a multiple of 8 bytes, as safetensors writes it.
    """
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    header.setdefault("__metadata__", {})[key] = json.dumps(metadata, sort_keys=True)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + blob[8 + n :]
