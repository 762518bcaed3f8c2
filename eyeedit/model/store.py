"""Model files and where effects are found.

A model file is one ``.safetensors`` file: the generator's weights plus a JSON document in the
safetensors header under the key ``eyeedit`` (architecture config, region spec, channels,
normalisation, effect name, data summary, validation metrics). safetensors holds only raw
tensors, so loading a model never unpickles anything.

Lookup order for ``--effect NAME``: an explicit ``--model PATH``; ``$EYEEDIT_MODELS/NAME.safetensors``;
the user store (``$XDG_DATA_HOME/eyeedit/models``, default ``~/.local/share/eyeedit/models``);
the models shipped inside the package (``eyeedit/weights/``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_FORMAT = "eyeedit-model/1"
META_KEY = "eyeedit"
PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "weights"
# The fields every model's metadata must carry for the editor to rebuild and run it.
REQUIRED_META = ("format", "effect", "generator", "region")
# Files in the model folders that are instruments, not effects (the glasses judge,
# eyeedit/weights/judge.safetensors): never listed or looked up as an effect.
NOT_EFFECTS = frozenset({"judge"})


class ModelError(Exception):
    """A model file is missing, malformed or does not match its metadata (one-line message)."""


@dataclass(frozen=True)
class ModelEntry:
    """An effect model found in one of the stores."""

    effect: str
    path: Path
    source: str  # "path", "$EYEEDIT_MODELS", "user", "package"


def user_store() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "eyeedit" / "models"


def store_dirs() -> list[tuple[str, Path]]:
    """(source, folder) pairs in lookup order."""
    dirs = []
    if os.environ.get("EYEEDIT_MODELS"):
        dirs.append(("$EYEEDIT_MODELS", Path(os.environ["EYEEDIT_MODELS"])))
    dirs.append(("user", user_store()))
    dirs.append(("package", PACKAGE_MODELS))
    return dirs


def save_model(path: str | os.PathLike, tensors: dict[str, Any], metadata: dict[str, Any],
               required: tuple[str, ...] = REQUIRED_META) -> Path:
    """Atomically write ``tensors`` (name -> torch.Tensor) with ``metadata`` to a .safetensors file.

    ``required`` names the metadata fields the file must carry (an effect model's by default).
    """
    from safetensors.torch import save

    from eyeedit.imageio import atomic_write

    meta = {"format": MODEL_FORMAT, **metadata}
    missing = [k for k in required if k not in meta]
    if missing:
        raise ValueError(f"model metadata lacks {', '.join(missing)}")
    blob = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
                metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    with atomic_write(path, durable=True) as fh:
        fh.write(blob)
    return Path(path)


def read_metadata(path: str | os.PathLike,
                  required: tuple[str, ...] = REQUIRED_META) -> dict[str, Any]:
    """The eyeedit metadata of a model file, read from its header only (no weights loaded).

    ``required`` names the fields it must carry (an effect model's by default).
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: no such model file")
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ModelError(f"{p}: not a safetensors file (too short)")
            n = int.from_bytes(head, "little")
            if n <= 0 or n > 100_000_000 or n > p.stat().st_size - 8:
                raise ModelError(f"{p}: not a safetensors file (bad header length)")
            header = json.loads(fh.read(n))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelError(f"{p}: not a safetensors file (header is not JSON)") from None
    except OSError as exc:
        raise ModelError(f"{p}: cannot read ({exc.strerror or exc})") from None
    raw = (header.get("__metadata__") or {}).get(META_KEY)
    if raw is None:
        raise ModelError(f"{p}: safetensors file without eyeedit metadata (not an eyeedit model)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise ModelError(f"{p}: eyeedit metadata is not valid JSON") from None
    if meta.get("format") != MODEL_FORMAT:
        raise ModelError(f"{p}: unsupported model format {meta.get('format')!r} (want {MODEL_FORMAT})")
    missing = [k for k in required if k not in meta]
    if missing:
        raise ModelError(f"{p}: model metadata lacks {', '.join(missing)}")
    return meta


def load_model_file(path: str | os.PathLike,
                    required: tuple[str, ...] = REQUIRED_META) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors on CPU, metadata) of a model file; never unpickles."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_metadata(path, required)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: corrupt weights ({str(exc).splitlines()[0]})") from None
    return tensors, meta


def find_model(effect: str, model_path: str | os.PathLike | None = None) -> ModelEntry:
    """Resolve an effect name (or an explicit path) to a model file, in lookup order."""
    if model_path is not None:
        p = Path(model_path)
        if not p.is_file():
            raise ModelError(f"{p}: no such model file")
        return ModelEntry(effect, p, "path")
    if effect in NOT_EFFECTS:
        raise ModelError(f"{effect!r} is an instrument for `eyeedit eval --real`, not an effect")
    for source, folder in store_dirs():
        candidate = folder / f"{effect}.safetensors"
        if candidate.is_file():
            return ModelEntry(effect, candidate, source)
    available = sorted({e.effect for e in list_models()})
    listing = ", ".join(available) if available else "none installed"
    raise ModelError(
        f"unknown effect {effect!r} (available: {listing}); train one with "
        f"`eyeedit train PAIRS --out runs/{effect} --effect {effect}`"
    )


def list_models() -> list[ModelEntry]:
    """Every model in every store, in lookup order (a name may appear in several stores)."""
    entries = []
    for source, folder in store_dirs():
        if folder.is_dir():
            for f in sorted(folder.glob("*.safetensors")):
                if f.stem not in NOT_EFFECTS:
                    entries.append(ModelEntry(f.stem, f, source))
    return entries


def install_model(path: str | os.PathLike, effect: str) -> Path:
    """Copy a model file into the user store as ``<effect>.safetensors`` (atomically).

    The copy's metadata names the effect it is installed as, so the editor reports that name.
    """
    tensors, meta = load_model_file(path)  # refuses anything that is not a model
    dest = user_store() / f"{effect}.safetensors"
    if meta.get("effect") == effect:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
        return dest
    return save_model(dest, tensors, {**meta, "effect": effect})


def save_generator(path: str | os.PathLike, model: Any, metadata: dict[str, Any]) -> Path:
    """Write a generator ``nn.Module``'s weights (fp32, CPU) with its metadata, atomically.

    ``metadata["generator"]`` must be the config dict the model was built from.
    """
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    return save_model(path, tensors, metadata)


def load_generator(path: str | os.PathLike, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Rebuild a model file's generator (in eval mode, on ``device``) and return it with its metadata.

    The architecture comes from ``metadata["generator"]``; weights must match it exactly.
    Raises ModelError (one line naming the file) otherwise. Never unpickles.
    """
    from eyeedit.model.networks import GeneratorConfig, UNetGenerator

    tensors, meta = load_model_file(path)
    try:
        cfg = GeneratorConfig.from_dict(meta["generator"])
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: bad generator config in metadata ({exc})") from None
    model = UNetGenerator(cfg)
    problem = weights_mismatch(model.state_dict(), tensors)
    if problem:
        raise ModelError(f"{path}: weights do not match the generator config ({problem})")
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval(), meta


def weights_mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str:
    """'' if ``found`` has exactly the names and shapes of ``expected``, else a short reason."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    shapes = sorted(k for k in set(expected) & set(found) if expected[k].shape != found[k].shape)
    parts = []
    for label, names in (("missing", missing), ("unexpected", extra), ("wrong shape", shapes)):
        if names:
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            parts.append(f"{label} {', '.join(names[:3])}{more}")
    return "; ".join(parts)
