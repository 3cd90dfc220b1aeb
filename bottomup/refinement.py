"""After grouping: missing joints filled in, and sub-cell positions of the joints found.

All three work on one image's persons ``(P, K, 3 + D)`` (x, y in cells, heat, tag; a joint a
person lacks has heat 0) and its maps ``heat (K, H, W)``, ``tags (K, D, H, W)``.

* ``refine_missing`` (HigherHRNet): a person's missing joint goes to the best cell of the joint's
  heatmap minus the rounded distance of the cell's tag to the person's mean tag.
* ``adjust_quarter_pixel`` (HigherHRNet): each joint moves a quarter cell towards its higher
  neighbour, per axis.
* ``adjust_dark`` (DarkPose, Zhang et al., CVPR 2020, "Distribution-Aware Coordinate
  Representation for Human Pose Estimation"): the heatmap is smoothed with the training targets'
  Gaussian (so that it is close to one even where the network's is not), its log is taken (the
  log of a Gaussian is a quadratic, so a second-order Taylor expansion at the maximum is exact
  for it), and each joint moves by the Newton step ``-H^-1 g`` of that expansion. Smoothing
  blurs two close peaks of one joint type together, so there (two persons' same joints within
  about 10 px at 1/2 resolution) the step can be worse than the quarter cell.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LOG_FLOOR = 1e-10  # the smoothed heat is clamped here before the log (network maps go <= 0)


def refine_missing(persons: np.ndarray, heat: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """Fill each person's undetected joints with the best location on that joint's heatmap,
    penalised by the rounded distance of its tag to the person's mean tag (as HigherHRNet).

    A tie goes to the first cell in raster order. All persons lacking a joint type are scored
    on its maps together, brightest cells first (``_best_cells``).
    """
    out = persons.copy()
    width = heat.shape[2]
    found = out[:, :, 2] > 0
    partial = np.flatnonzero(found.any(axis=1) & ~found.all(axis=1))
    if len(partial) == 0:
        return out
    means = np.stack([_mean_tag(out[p], found[p], tags) for p in partial])  # (P', D)
    for j in np.flatnonzero(~found[partial].all(axis=0)):
        lacking = ~found[partial, j]
        who = partial[lacking]
        best = _best_cells(heat[j].ravel(), tags[j].reshape(tags.shape[1], -1), means[lacking])
        by, bx = best // width, best % width
        out[who, j, 0] = bx
        out[who, j, 1] = by
        out[who, j, 2] = heat[j, by, bx]
    return out


BRIGHT_SHARE = 16  # about 1 cell in this many is scored first (``_best_cells``)


def _best_cells(heat: np.ndarray, tags: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Flat index of the best cell of ``heat (n,) - round(|tags (D, n) - mean|)`` per row of
    ``means (P, D)``, the first in raster order on ties.

    A cell's score is at most its heat, so once a mean's best score among the cells at or above
    some heat ``cut`` reaches ``cut``, no cell below it can win or tie: the exact answer is
    found among the brightest cells only. The cut keeps about one cell in ``BRIGHT_SHARE``
    (the joint's blobs and the top of the background, where a person's best cell usually is);
    means whose best score stays below it are scored on every cell.
    """
    sample = heat[::4]  # the cut is estimated on every 4th cell
    kept = max(len(sample) // BRIGHT_SHARE, 1)
    cut = np.partition(sample, -kept)[-kept]
    bright = np.flatnonzero(heat >= cut)
    scores = _scores(heat[bright], tags[:, bright], means)
    pick = scores.argmax(axis=1)
    best = bright[pick]
    unsure = scores[np.arange(len(means)), pick] < cut
    if unsure.any():
        best[unsure] = _scores(heat, tags, means[unsure]).argmax(axis=1)
    return best


def _scores(heat: np.ndarray, tags: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(P, n) heat (n,) minus the rounded distance of tags (D, n) to each mean (P, D)."""
    distance = np.square(tags[0][None] - means[:, 0, None])
    for c in range(1, tags.shape[0]):
        distance += np.square(tags[c][None] - means[:, c, None])
    return np.subtract(
        heat[None], np.round(np.sqrt(distance, out=distance), out=distance), out=distance
    )


def _mean_tag(person: np.ndarray, found: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """(D,) mean of the tags at a person's found joints."""
    joints = np.flatnonzero(found)
    xs = person[joints, 0].astype(np.int64)
    ys = person[joints, 1].astype(np.int64)
    return tags[joints, :, ys, xs].mean(axis=0)


def adjust_quarter_pixel(persons: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Move each found joint a quarter cell towards its higher neighbour, per axis."""
    out = persons.copy()
    k, h, w = heat.shape
    p_idx, j_idx = np.nonzero(out[:, :, 2] > 0)
    x = out[p_idx, j_idx, 0].astype(np.int64)
    y = out[p_idx, j_idx, 1].astype(np.int64)
    right = heat[j_idx, y, np.minimum(x + 1, w - 1)]
    left = heat[j_idx, y, np.maximum(x - 1, 0)]
    down = heat[j_idx, np.minimum(y + 1, h - 1), x]
    up = heat[j_idx, np.maximum(y - 1, 0), x]
    out[p_idx, j_idx, 0] = x + np.where(right > left, 0.25, -0.25)
    out[p_idx, j_idx, 1] = y + np.where(down > up, 0.25, -0.25)
    return out


def adjust_dark(persons: np.ndarray, heat: np.ndarray, sigma: float) -> np.ndarray:
    """Move each found joint by DarkPose's Taylor step on the log of the heatmap smoothed with a
    Gaussian of ``sigma`` cells (cut at 3 sigma).

    The step is taken where the log-heat curves down in every direction at the joint's cell (a
    negative definite Hessian) and is clipped to one cell per axis; elsewhere (a flat or
    saddle-shaped neighbourhood, where the quadratic model says nothing) the joint stays on its
    cell. Near the map's edge, where the smoothing would need cells beyond it, the unsmoothed
    heatmap is used: taking those cells as zero pulls joints inwards (``docs/codec.md``). A
    joint on the edge itself takes the step from the neighbouring cell inside (from any cell,
    the Newton step of a quadratic lands on its maximum).
    """
    out = persons.copy()
    p_idx, j_idx = np.nonzero(out[:, :, 2] > 0)
    _, h, w = heat.shape
    if len(p_idx) == 0 or h < 3 or w < 3:
        return out
    x = np.clip(out[p_idx, j_idx, 0].astype(np.int64), 1, w - 2)
    y = np.clip(out[p_idx, j_idx, 1].astype(np.int64), 1, h - 2)
    f = np.log(np.maximum(_neighbourhoods(heat, j_idx, y, x, sigma), LOG_FLOOR))
    dx = (f[:, 1, 2] - f[:, 1, 0]) / 2
    dy = (f[:, 2, 1] - f[:, 0, 1]) / 2
    dxx = f[:, 1, 2] - 2 * f[:, 1, 1] + f[:, 1, 0]
    dyy = f[:, 2, 1] - 2 * f[:, 1, 1] + f[:, 0, 1]
    dxy = (f[:, 2, 2] - f[:, 2, 0] - f[:, 0, 2] + f[:, 0, 0]) / 4
    det = dxx * dyy - dxy**2
    curved = (dxx < 0) & (det > 0)
    safe = np.where(curved, det, 1.0)
    step_x = np.where(curved, -(dyy * dx - dxy * dy) / safe, 0.0)
    step_y = np.where(curved, -(dxx * dy - dxy * dx) / safe, 0.0)
    out[p_idx, j_idx, 0] = x + np.clip(step_x, -1, 1)
    out[p_idx, j_idx, 1] = y + np.clip(step_y, -1, 1)
    return out


def _neighbourhoods(
    heat: np.ndarray, joint: np.ndarray, y: np.ndarray, x: np.ndarray, sigma: float
) -> np.ndarray:
    """(n, 3, 3) float64 heat around each (joint, y, x) (not on the map's edge): Gaussian-smoothed
    where the smoothing stays inside the map, as it is elsewhere. Only these 3x3 cells are
    smoothed, to the values a smoothing of the whole map would give."""
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    taps /= taps.sum()
    pad = radius + 1
    padded = np.pad(heat.astype(np.float64), ((0, 0), (pad, pad), (pad, pad)))
    size = 2 * pad + 1
    windows = sliding_window_view(padded, (size, size), axis=(1, 2))[joint, y, x]
    rows = sliding_window_view(windows, 2 * radius + 1, axis=2) @ taps  # (n, size, 3)
    smoothed = sliding_window_view(rows, 2 * radius + 1, axis=1) @ taps
    _, h, w = heat.shape
    inside = (y >= pad) & (x >= pad) & (y < h - pad) & (x < w - pad)
    raw = windows[:, radius : radius + 3, radius : radius + 3]
    return np.where(inside[:, None, None], smoothed, raw)
