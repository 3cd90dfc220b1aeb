"""End-to-end latency of a multi-person image: the network as often as the family runs it, plus
the decode, and where a top-down and a bottom-up model cross.

A bottom-up network runs once per image whatever the crowd; a top-down network runs once per
person (on that person's crop), so its cost grows with the persons in the image. Both then decode:
top-down cuts the crops (one affine warp each), decodes each crop's heatmaps (DarkPose) and
suppresses duplicates (OKS NMS); bottom-up resizes the image, decodes its heatmaps and groups the
joints into persons by their tags. ``EndToEnd`` holds one family's measured parts (the network's
latency on one input, the decode's per image at each measured number of persons) and returns
``total_ms(persons)``; ``crossing_persons`` fits a line through each family's totals and solves
for the number of persons where they are equal. Person detection (top-down's boxes) is not in
the model: the comparison runs on ground-truth boxes, and a detector's cost would be added once
per image to the top-down side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from posecore.errors import SettingError

FAMILIES = ("topdown", "bottomup")


@dataclass(frozen=True)
class EndToEnd:
    """``network_ms``: one forward of one input (a person crop for top-down, the image for
    bottom-up); ``decode_ms``: persons per image -> the rest of the per-image time."""

    family: str
    network_ms: float
    decode_ms: Mapping[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise SettingError(f"family={self.family!r}: must be one of {FAMILIES}")
        if not self.network_ms >= 0:
            raise SettingError(f"network_ms={self.network_ms}: must be >= 0")

    def network_runs(self, persons: int) -> int:
        """How often the network runs on an image of ``persons`` persons."""
        return persons if self.family == "topdown" else 1

    def total_ms(self, persons: int) -> float:
        if persons not in self.decode_ms:
            raise SettingError(
                f"persons={persons}: the decode was measured at {sorted(self.decode_ms)} persons"
            )
        return self.network_runs(persons) * self.network_ms + self.decode_ms[persons]

    def line(self) -> tuple[float, float]:
        """(intercept, slope) in ms of the least-squares line through ``total_ms`` over the
        measured persons (two or more)."""
        persons = sorted(self.decode_ms)
        if len(persons) < 2:
            raise SettingError(f"a line needs two person counts; measured at {persons}")
        slope, intercept = np.polyfit(persons, [self.total_ms(n) for n in persons], 1)
        return float(intercept), float(slope)


def crossing_persons(topdown: EndToEnd, bottomup: EndToEnd) -> float | None:
    """The number of persons at which the two fitted lines meet (top-down cheaper below it when
    its line is steeper); None when the lines are parallel. The value may lie outside the
    measured counts: it is then an extrapolation, and the caller should say so."""
    a_td, b_td = topdown.line()
    a_bu, b_bu = bottomup.line()
    if np.isclose(b_td, b_bu):
        return None
    return (a_bu - a_td) / (b_td - b_bu)
