"""Train the glasses judge on labelled real portraits; write eyeedit/weights/judge.safetensors.

    nice -n 10 python scripts/train_judge.py ../shared/faces

Steps: read the labels (Congress CSV, London set as no glasses); set the people on the held-out
list (pipelines/holdout.txt) aside; align every photo's glasses crop; cross-validate by person
(5 folds); train the final judge on all people not held out; score it once on the held-out
people; write the model file with its figures in the metadata, and a JSON report (with the
out-of-fold probability of every photo, to see which ones it gets wrong) at --report. The
crops are cached beside the report.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from eyeedit import __version__
from eyeedit.data.portraits import (
    AlignedCrops,
    Portrait,
    align_portraits,
    is_held_out,
    labelled_portraits,
    read_holdout,
)
from eyeedit.imageio import write_text
from eyeedit.model.judge import save_judge
from eyeedit.regions import region_spec
from eyeedit.training.judge import (
    JudgeTrainConfig,
    class_metrics,
    cross_validate,
    predict,
    train_judge,
)
from eyeedit.training.runtime import processor_name

THRESHOLD = 0.5  # balanced training: "more likely than not" for a balanced prior
SOURCES = ("congress", "london")
LONDON_CREDIT = ("Face Research Lab London Set: DeBruine, L., & Jones, B. (2017). Face Research "
                 "Lab London Set. figshare. doi:10.6084/m9.figshare.5047666.v5 (CC BY 4.0)")
CONGRESS_CREDIT = ("Official portraits of the 118th US Congress and three of the 119th (public domain, "
                   "US Government Publishing Office), glasses labels made for eyeedit")


def load_crops(faces: Path, cache: Path, size: tuple[int, int]) -> AlignedCrops:
    """Aligned glasses crops of every labelled portrait, shrunk to ``size``; cached by path list."""
    portraits = labelled_portraits(faces)
    paths = [str(p.path) for p in portraits]
    if cache.is_file():
        saved = np.load(cache)
        if list(saved["paths"]) == paths and saved["crops"].shape[1:3] == size[::-1]:
            return AlignedCrops(saved["crops"], portraits, [])
    aligned = align_portraits(portraits, region_spec("glasses"), size)
    if not aligned.missing:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, crops=aligned.crops, paths=np.array(paths))
    return aligned


def summary(portraits: list[Portrait]) -> dict:
    """Photos and people, with glasses and per collection."""
    people = {p.person: p for p in portraits}
    return {"photos": len(portraits), "photos_glasses": sum(p.glasses for p in portraits),
            "people": len(people), "people_glasses": sum(p.glasses for p in people.values()),
            "people_by_source": {s: sum(p.source == s for p in people.values()) for s in SOURCES}}


def held_out_metrics(prob: np.ndarray, portraits: list[Portrait]) -> dict:
    """Accuracy and recall per class on the held-out people, overall and per collection."""
    labels = np.array([int(p.glasses) for p in portraits])
    by_source = {}
    for s in SOURCES:
        m = np.array([p.source == s for p in portraits])
        by_source[s] = class_metrics(prob[m], labels[m], THRESHOLD)
    return {"held_out": class_metrics(prob, labels, THRESHOLD), "held_out_by_source": by_source}


def photo_rows(portraits: list[Portrait], prob: np.ndarray) -> list[dict]:
    return [{"file": p.path.name, "glasses": p.glasses, "probability": float(q)}
            for p, q in zip(portraits, prob)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("faces", type=Path, help="the shared faces folder (congress/, london/)")
    parser.add_argument("--holdout", type=Path, default=Path("pipelines/holdout.txt"))
    parser.add_argument("--out", type=Path, default=Path("eyeedit/weights/judge.safetensors"))
    parser.add_argument("--report", type=Path, default=Path("runs/judge/report.json"))
    parser.add_argument("--folds", type=int, default=5, help="person-wise folds (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cfg = JudgeTrainConfig(seed=args.seed)
    data = load_crops(args.faces, args.report.parent / "crops.npz", cfg.network.size)
    holdout = read_holdout(args.holdout)
    held = np.array([is_held_out(p, holdout) for p in data.portraits])
    train_set = [p for p, h in zip(data.portraits, held) if not h]
    test_set = [p for p, h in zip(data.portraits, held) if h]
    x, y = data.crops[~held], data.labels[~held]
    started = time.perf_counter()

    cv = None
    if args.folds:
        cv = cross_validate(x, y, [p.person for p in train_set], cfg, args.folds, log=print)
    net = train_judge(x, y, cfg, log=lambda e, loss: print(f"epoch {e + 1}: loss {loss:.4f}"))
    prob = predict(net, data.crops[held], cfg.network)
    seconds = time.perf_counter() - started

    metrics = held_out_metrics(prob, test_set)
    if cv is not None:
        metrics.update({"cv": cv.summary(), "cv_folds": cv.folds, "cv_k": args.folds})
    meta = {
        "description": "glasses / no glasses on the aligned glasses crop of real portraits "
                       "(an instrument for measuring effects, not an effect)",
        "metrics": metrics,
        "data": {"train": summary(train_set), "held_out": summary(test_set),
                 "held_out_list": args.holdout.as_posix(),
                 "credits": [CONGRESS_CREDIT, LONDON_CREDIT]},
        "training": {"config": cfg.to_dict(), "seconds": round(seconds, 1),
                     "torch": torch.__version__, "threads": torch.get_num_threads(),
                     "cpu": processor_name(), "date": date.today().isoformat(),
                     "eyeedit_version": __version__},
    }
    save_judge(args.out, net, cfg.network, region_spec("glasses"), THRESHOLD, meta)
    report = {**meta, "held_out_photos": photo_rows(test_set, prob)}
    if cv is not None:
        report["cv_photos"] = photo_rows(train_set, cv.probability)
    write_text(args.report, json.dumps(report, indent=2))
    size_mb = args.out.stat().st_size / 1e6
    print(json.dumps(metrics["held_out"]), f"\n{args.out} ({size_mb:.2f} MB), {seconds:.0f} s")


if __name__ == "__main__":
    main()
