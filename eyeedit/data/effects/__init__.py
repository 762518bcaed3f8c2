"""Procedural effect renderers used to synthesize before/after pairs (`eyeedit synth`).

Each effect is a pure pair of functions driven by the Face Mesh landmarks at full image
resolution: ``sample(rng, face, pins) -> params`` draws a random frozen parameter set (all the
randomness lives here, so the parameters alone reproduce a render and are recorded in the
dataset's manifest), and ``render(image, face, params) -> Rendered`` draws it. ``unusable(face)``
names why a face cannot take the effect (a skip status) or returns None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

import numpy as np

from eyeedit.data.effects import eye_color, glasses, makeup
from eyeedit.data.effects.base import Rendered
from eyeedit.landmarks import Face

__all__ = ["EFFECTS", "Effect", "Pins", "Rendered", "get_effect", "params_dict"]


@dataclass(frozen=True)
class Pins:
    """User choices that override the random draw: glasses ``style``, ``material`` and lens
    ``tint``; ``color`` is the iris colour for eye-color, the rim colour for glasses and the
    eyeshadow for makeup; makeup's ``liner`` colour."""

    style: str | None = None
    color: str | None = None
    material: str | None = None
    tint: str | None = None
    liner: str | None = None  # makeup: the eyeliner colour (``color`` is the eyeshadow)


@dataclass(frozen=True)
class Effect:
    """One effect: its name, the crop region its pairs use, and its three functions."""

    name: str
    region: str
    sample: Callable[[np.random.Generator, Face, Pins], Any]
    render: Callable[[np.ndarray, Face, Any], Rendered]
    unusable: Callable[[Face], str | None]


def _always_usable(face: Face) -> str | None:
    return None


EFFECTS: dict[str, Effect] = {
    # Glasses need the wider `glasses` crop: a frame front spans about +-1.15 eye distances.
    "glasses": Effect("glasses", "glasses",
                      lambda rng, face, pins: glasses.sample_params(rng, face, pins.style, pins.material,
                                                                   pins.color, pins.tint),
                      glasses.render, _always_usable),
    "eye-color": Effect("eye-color", "eyes",
                        lambda rng, face, pins: eye_color.sample_params(rng, face, pins.color),
                        eye_color.render, eye_color.unusable),
    "makeup": Effect("makeup", "eyes",
                     lambda rng, face, pins: makeup.sample_params(rng, face, pins.color, pins.liner),
                     makeup.render, _always_usable),
}


def get_effect(name: str) -> Effect:
    """The registered effect ``name``; ValueError naming the choices otherwise."""
    if name not in EFFECTS:
        raise ValueError(f"unknown effect {name!r}; choose one of {', '.join(EFFECTS)}")
    return EFFECTS[name]


def params_dict(params: Any) -> dict[str, Any]:
    """A params dataclass as a JSON-ready dict; exact values, so a manifest line reproduces a render."""
    if not is_dataclass(params):
        raise TypeError(f"expected a params dataclass, got {type(params).__name__}")
    return asdict(params)
