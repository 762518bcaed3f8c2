"""The eye regions: where a crop sits on the face and how large it is.

A ``RegionSpec`` is built once (from CLI options, a recipe or a model file), passed explicitly,
and saved next to whatever it produced, so a dataset or a model always says which crop it uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

REGION_NAMES = ("eyes", "glasses", "left-eye", "right-eye")


# Crop sides, in pixels: an eye region cut smaller than this has nothing left to edit, and one
# larger is more than a face photo holds (and its arrays would not fit in memory).
MIN_CROP_SIDE = 16
MAX_CROP_SIDE = 2048


@dataclass(frozen=True)
class RegionSpec:
    """Where the crop sits on the face and how large it is.

    The template is a similarity frame anchored on the eyes: ``span`` inter-eye distances fit
    across the crop width, and the anchor (midpoint of the two eye centres for ``eyes`` and
    ``glasses``, the eye's own centre for one-eye regions) lands at ``(W/2, center_y * H)``.
    """

    name: str = "eyes"
    width: int = 256
    height: int = 128
    span: float = 2.2
    center_y: float = 0.58

    def __post_init__(self) -> None:
        if self.name not in REGION_NAMES:
            raise ValueError(f"unknown region {self.name!r}; choose one of {', '.join(REGION_NAMES)}")
        if not (MIN_CROP_SIDE <= min(self.width, self.height) and max(self.width, self.height) <= MAX_CROP_SIDE):
            raise ValueError(f"a {self.width}x{self.height} crop: each side must be "
                             f"{MIN_CROP_SIDE}-{MAX_CROP_SIDE} pixels")
        if self.span <= 0 or not 0 < self.center_y < 1:
            raise ValueError(f"region span must be > 0 and center_y in (0, 1), got {self}")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, the order OpenCV expects."""
        return (self.width, self.height)

    def with_size(self, width: int, height: int) -> RegionSpec:
        return replace(self, width=width, height=height)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegionSpec:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# Defaults per region. `eyes` covers both eyes and brows (2.2 eye distances wide, checked on the
# London faces); `glasses` is wider and centred lower because a frame front spans about
# +-1.15 eye distances and its arms reach toward the ears.
REGIONS: dict[str, RegionSpec] = {
    "eyes": RegionSpec("eyes", 256, 128, span=2.2, center_y=0.58),
    "glasses": RegionSpec("glasses", 256, 128, span=2.9, center_y=0.52),
    "left-eye": RegionSpec("left-eye", 128, 128, span=1.1, center_y=0.55),
    "right-eye": RegionSpec("right-eye", 128, 128, span=1.1, center_y=0.55),
}


def region_spec(name: str, size: tuple[int, int] | None = None) -> RegionSpec:
    """The default spec for a region name, optionally resized to ``size`` = (width, height)."""
    if name not in REGIONS:
        raise ValueError(f"unknown region {name!r}; choose one of {', '.join(REGIONS)}")
    spec = REGIONS[name]
    return spec.with_size(*size) if size else spec


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"256x128"`` into (width, height); a single number means a square."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT (e.g. 256x128)") from None
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or min(nums) <= 0:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT (e.g. 256x128)")
    return nums[0], nums[1]
