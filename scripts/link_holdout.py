"""Link real photos into folders that `eyeedit eval MODEL --real DIR` can take.

    python scripts/link_holdout.py ../shared/faces runs/holdout

Writes symbolic links (never copies: the photos stay outside the repository) into
``glasses/`` (held-out people who wear glasses), ``plain/`` (held-out people without glasses,
Congress and both London photos), ``plain-unseen/`` (the part of ``plain/`` that the shipped
effect models never trained on: their validation split, ``split_of(stem, 0.1)``) and
``train-glasses/`` (the people with glasses who are not held out: the judge trained on their
photos, no effect model did; for checking what the judge makes of edited photos without
spending the held-out people on it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from eyeedit.data.pairs import split_of
from eyeedit.data.portraits import Portrait, is_held_out, labelled_portraits, read_holdout


def _folders(p: Portrait, held_out: bool) -> list[str]:
    if not held_out:
        return ["train-glasses"] if p.glasses else []
    if p.glasses:
        return ["glasses"]
    return ["plain", "plain-unseen"] if split_of(p.path.stem, 0.1) == "val" else ["plain"]


def main(faces: str, out: str, holdout: str = "pipelines/holdout.txt") -> None:
    names = read_holdout(holdout)
    root = Path(out)
    counts: dict[str, int] = {}
    for p in labelled_portraits(faces):
        rel = Path(p.source) / p.path.relative_to(Path(faces) / p.source)
        folders = _folders(p, is_held_out(p, names))
        for folder in folders:
            link = root / folder / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(p.path.resolve(), link)
            counts[folder] = counts.get(folder, 0) + 1
    print(", ".join(f"{root / k}: {v} photos" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main(*sys.argv[1:4])
