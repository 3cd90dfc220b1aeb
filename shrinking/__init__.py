"""Gradual shrinking: HigherHRNet's high-resolution branches removed step by step, as data.

``get_path("paper")`` is the LitePose paper's path (HigherHRNet-W16 -> Shrink1 -> Shrink2 ->
Shrink3); ``generate_path(baseline, num_steps, width)`` derives others. ``python -m
experiments.shrink`` turns a path into its MACs / latency table.
"""

from shrinking.path import (
    PAPER_PRESETS,
    ShrinkPath,
    ShrinkPathError,
    ShrinkStep,
    count_blocks,
    generate_path,
    get_path,
    list_paths,
)

__all__ = [
    "PAPER_PRESETS",
    "ShrinkPath",
    "ShrinkPathError",
    "ShrinkStep",
    "count_blocks",
    "generate_path",
    "get_path",
    "list_paths",
]
