"""Write the held-out list of real people (pipelines/holdout.txt) from the labelled portraits.

Usage: python scripts/make_holdout.py ../shared/faces pipelines/holdout.txt

The list is committed and fixed; this script documents how it was chosen and remakes it
byte for byte. Per group (Congress members with glasses, Congress members without, London
people), it takes a share of the people:

* people with glasses: 14 of 59 (24%), in the order of a hash of their first photo's file name. No effect
  model has been trained on them (the recipes leave them out of the synthetic pairs).
* people without glasses: first everyone in the validation split the shipped effect models
  were evaluated on (``split_of(stem, 0.1)``), so the largest possible part of the list was
  never trained on, then more in hash order, up to 20% of the group (rounded up).

Every photo of a chosen person is listed (a Congress member may have a portrait from each of
two congresses): a person is held out whole.
"""

from __future__ import annotations

import hashlib
import math
import sys

from eyeedit.data.pairs import split_of
from eyeedit.data.portraits import Portrait, labelled_portraits
from eyeedit.imageio import write_text

GLASSES_HELD_OUT = 14
PLAIN_SHARE = 0.2
SHIPPED_VAL_FRACTION = 0.1

HEADER = """\
# Held-out people: real portraits that no effect model and no judge is ever trained or tuned on.
# They are kept for the real-photo figures (`eyeedit eval MODEL --real DIR`, the glasses judge's
# held-out accuracy). Leave them out of every training set (`synth --exclude` takes this file).
# One file name a line from ../shared/faces; a London name (NNN.jpg) stands for both photos of
# that person (neutral and smiling); a Congress member is listed with every portrait of them.
# Made by `python scripts/make_holdout.py ../shared/faces pipelines/holdout.txt`:
#   Congress members with glasses: {glasses} of {glasses_all}
#   Congress members without glasses: {congress} of {congress_all}
#   London people (none wears glasses): {london} of {london_all}
# The people without glasses start with the shipped effect models' validation split, so {unseen}
# of them were never trained on by those models.
"""


def _order(stem: str) -> str:
    return hashlib.sha1(f"holdout\0{stem}".encode()).hexdigest()


def _pick(people: list[Portrait], count: int, unseen_first: bool) -> list[Portrait]:
    def key(p: Portrait) -> tuple[bool, str]:
        seen = split_of(p.path.stem, SHIPPED_VAL_FRACTION) != "val"
        return (seen if unseen_first else False, _order(p.path.stem))

    return sorted(people, key=key)[:count]


def main(faces: str, out: str) -> None:
    portraits = labelled_portraits(faces)
    people: dict[str, Portrait] = {}
    for p in portraits:  # a person's first photo stands for them (the CSV lists 118th before 119th)
        if "smiling" not in p.path.parts:
            people.setdefault(p.person, p)
    groups = {
        "glasses": [p for p in people.values() if p.glasses],
        "congress": [p for p in people.values() if p.source == "congress" and not p.glasses],
        "london": [p for p in people.values() if p.source == "london"],
    }
    chosen = {"glasses": _pick(groups["glasses"], GLASSES_HELD_OUT, unseen_first=False)}
    for name in ("congress", "london"):
        count = math.ceil(PLAIN_SHARE * len(groups[name]))
        chosen[name] = _pick(groups[name], count, unseen_first=True)
    unseen = sum(split_of(p.path.stem, SHIPPED_VAL_FRACTION) == "val"
                 for g in ("congress", "london") for p in chosen[g])
    text = HEADER.format(glasses=len(chosen["glasses"]), glasses_all=len(groups["glasses"]),
                         congress=len(chosen["congress"]), congress_all=len(groups["congress"]),
                         london=len(chosen["london"]), london_all=len(groups["london"]),
                         unseen=unseen)
    for name, title in (("glasses", "Congress, glasses"), ("congress", "Congress, no glasses"),
                        ("london", "London set, no glasses")):
        persons = {p.person for p in chosen[name]}
        names = sorted({p.path.name for p in portraits if p.person in persons})
        text += f"\n# {title}\n" + "".join(f"{n}\n" for n in names)
    write_text(out, text)
    print(f"{out}: " + ", ".join(f"{k} {len(v)}" for k, v in chosen.items()))


if __name__ == "__main__":
    main(*sys.argv[1:3])
