"""Channel rounding: how a width the architecture language derives becomes a channel count.

It lives with the architecture language because the search space's width choices use it
(``LitePoseSpace.widths_of``); the layer plan (``search_space.plan``) reads the same rule, so a
width the space offers is the width a built layer gets.
"""

from __future__ import annotations


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """MobileNet rounding: nearest multiple of ``divisor``, plus one step if that loses > 10%."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
