"""Joint candidates of one image: max-pool NMS with a raster-order tie-break, then top-k per joint.

The rule is HigherHRNet's 5x5 max-pool NMS plus one tie-break: a cell is a peak if no cell of
its window is higher, and of two peaks within one window (necessarily equal: each bounds the
other, e.g. a joint exactly between two cells) only the first in raster order is kept, since a
duplicate candidate becomes a phantom one-joint person. Written as two max-pools (the second over
raster ranks, only to break ties) this took 94% of the whole decode; here it is exact and about
10x cheaper than even one such max-pool (``benchmarks/decode_bench.py``):

* the window maximum is separable: ``kernel - 1`` elementwise maxima of shifted views per axis
  (cells beyond the map do not count, as max-pool's padding), in place, instead of a 2-D pool;
* only peaks above the detection threshold are kept, since grouping drops the rest anyway (and a
  peak's tie partner in its window has its value, so the tie-break never needs the others);
* the tie-break then checks, for these few peaks only, the half of the window that comes earlier
  in raster order, and top-k sorts only them.

Candidates come out by heat, highest first, equal heat in raster order (``torch.topk`` left the
order of exactly equal values unspecified).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Candidates:
    """Up to ``top_k`` candidates per joint, highest heat first; unused slots have heat 0.

    tags: (K, C, D); locations: (K, C, 2) x, y in cells (float32); heat: (K, C).
    """

    tags: np.ndarray
    locations: np.ndarray
    heat: np.ndarray


def window_max(heat: np.ndarray, kernel: int) -> np.ndarray:
    """heat: (..., H, W) -> the maximum over each cell's ``kernel`` x ``kernel`` window, cells
    beyond the map left out (``max_pool2d(heat, kernel, 1, kernel // 2)``)."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"window_max: kernel must be odd and positive, got {kernel}")
    rows = heat.copy()
    for d in range(1, kernel // 2 + 1):
        np.maximum(rows[..., :-d], heat[..., d:], out=rows[..., :-d])
        np.maximum(rows[..., d:], heat[..., :-d], out=rows[..., d:])
    out = rows.copy()
    for d in range(1, kernel // 2 + 1):
        np.maximum(out[..., :-d, :], rows[..., d:, :], out=out[..., :-d, :])
        np.maximum(out[..., d:, :], rows[..., :-d, :], out=out[..., d:, :])
    return out


def find_peaks(
    heat: np.ndarray, kernel: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """heat: (K, H, W) -> joint, y, x of the kept peaks above ``threshold`` (see the module
    docstring), in joint then raster order."""
    maxima = (window_max(heat, kernel) == heat) & (heat > threshold)
    joint, y, x = np.nonzero(maxima)
    r = kernel // 2
    padded = np.pad(maxima, ((0, 0), (r, r), (r, r)))
    shadowed = np.zeros(len(joint), dtype=bool)
    for dy in range(-r, 1):
        for dx in range(-r, r + 1 if dy < 0 else 0):
            shadowed |= padded[joint, y + r + dy, x + r + dx]
    keep = ~shadowed
    return joint[keep], y[keep], x[keep]


def top_candidates(
    heat: np.ndarray,
    tags: np.ndarray,
    peaks: tuple[np.ndarray, np.ndarray, np.ndarray],
    top_k: int,
) -> Candidates:
    """The ``top_k`` highest of one image's ``peaks`` (joint, y, x from ``find_peaks``) per joint.

    heat: (K, H, W); tags: (K, D, H, W).
    """
    k, d = tags.shape[:2]
    width = heat.shape[2]
    joint, y, x = peaks
    value = heat[joint, y, x]
    order = np.lexsort((y * width + x, -value, joint))
    joint, y, x, value = joint[order], y[order], x[order], value[order]
    rank = np.arange(len(joint)) - np.searchsorted(joint, joint)
    keep = rank < top_k
    joint, y, x, value, rank = joint[keep], y[keep], x[keep], value[keep], rank[keep]
    slots = max(top_k, 1)
    out = Candidates(
        np.zeros((k, slots, d), dtype=tags.dtype),
        np.zeros((k, slots, 2), dtype=np.float32),
        np.zeros((k, slots), dtype=heat.dtype),
    )
    out.tags[joint, rank] = tags[joint, :, y, x]
    out.locations[joint, rank] = np.stack([x, y], axis=1)
    out.heat[joint, rank] = value
    return out
