"""Grouping joint candidates into persons by associative-embedding tags, vectorised.

The algorithm is HigherHRNet's: joints are taken one type at a time in the layout's order; the
candidates of a type above the detection threshold are matched to the persons found so far by
Hungarian assignment on ``round(||tag - person mean tag||) * 100 - heat`` (so tag distance decides
and heat breaks ties); a match farther than the tag threshold starts a new person instead.

Where the reference keeps persons in a dict keyed by a float tag and recomputes every person's
mean from Python lists at every joint type, this keeps persons in arrays with running tag sums and
works on a whole batch of images at once: for each joint type one broadcast builds the cost
matrices of every image, and only the assignment itself (SciPy, one call per image) runs per
image. The cost matrices handed to the solver are exactly the reference's (same values, same
1e10 padding), so the persons are identical; ``benchmarks/grouping_bench.py`` checks that and
measures the speed-up.

``order`` and ``solver`` reproduce the LitePose release: it takes CrowdPose's joint types in the
order of COCO's list cut to 14 (``bottomup.keypoints.release_joint_order``) and solves with the
pure-Python ``munkres`` package, which breaks the padded matrices' exact ties differently from
SciPy (every difference measured was a tie of equal total cost; ``docs/codec.md``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from posecore.errors import SettingError

UNMATCHED_COST = 1e10  # the reference's padding for candidates beyond the persons' count
SOLVERS = ("scipy", "munkres")


def _munkres_assignment(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The release's solver: ``munkres.Munkres().compute`` on a square-or-wide matrix."""
    try:
        from munkres import Munkres
    except ImportError:
        raise SettingError(
            "solver=munkres needs the munkres package (pip install munkres); solver=scipy "
            "gives the same total cost and differs only in how exact ties are broken"
        ) from None
    pairs = np.array(Munkres().compute(matrix.tolist()), dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def group_by_tags(
    tags: np.ndarray,
    locations: np.ndarray,
    heat: np.ndarray,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_match: int = 30,
    order: tuple[int, ...] | None = None,
    solver: str = "scipy",
) -> np.ndarray:
    """Persons of one image from its per-joint candidates.

    tags: (K, C, D) tag vectors; locations: (K, C, 2) x, y; heat: (K, C) values.
    Returns (P, K, 3 + D): x, y, heat, tag per joint; joints a person lacks are all zero.
    See ``group_batch`` for the thresholds.
    """
    return group_batch(
        tags[None],
        locations[None],
        heat[None],
        detection_threshold,
        tag_threshold,
        max_match,
        order,
        solver,
    )[0]


def group_batch(
    tags: np.ndarray,
    locations: np.ndarray,
    heat: np.ndarray,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_match: int = 30,
    order: tuple[int, ...] | None = None,
    solver: str = "scipy",
) -> list[np.ndarray]:
    """Persons of each image of a batch.

    tags: (N, K, C, D); locations: (N, K, C, 2); heat: (N, K, C). Candidates with heat at or
    below ``detection_threshold`` are dropped; new candidates are matched against the first
    ``max_match`` persons only, and a match whose tag distance is ``tag_threshold`` or more
    starts a new person (both as in the reference). Returns one (P_n, K, 3 + D) array per image,
    persons in the order they were started. ``order``: the joint types in the order they are
    matched (None: the layout's); ``solver``: ``"scipy"`` or ``"munkres"`` (the release's).
    """
    if solver not in SOLVERS:
        raise SettingError(f"grouping solver={solver!r}: must be one of {SOLVERS}")
    if tags.ndim != 4 or heat.shape != tags.shape[:3] or locations.shape != (*heat.shape, 2):
        raise ValueError(
            f"group_batch: expected tags (N, K, C, D), locations (N, K, C, 2), heat (N, K, C); "
            f"got {tags.shape}, {locations.shape}, {heat.shape}"
        )
    n_img, k, c, d = tags.shape
    keep = heat > detection_threshold
    # Kept candidates first, in their original order (the reference filters with a mask).
    kept_first = np.argsort(~keep, axis=2, kind="stable")
    gather = (np.arange(n_img)[:, None, None], np.arange(k)[None, :, None], kept_first)
    every = np.concatenate([locations, heat[..., None], tags], axis=3).astype(np.float32)
    cands = every[gather]  # (N, K, C, 3 + D)
    cand_tags = tags.astype(np.float64)[gather]  # (N, K, C, D)
    n_kept = keep.sum(axis=2)  # (N, K)

    capacity = k * c
    persons = np.zeros((n_img, capacity, k, 3 + d), dtype=np.float32)
    tag_sums = np.zeros((n_img, capacity, d), dtype=np.float64)
    counts = np.zeros((n_img, capacity), dtype=np.int64)
    found = np.zeros(n_img, dtype=np.int64)
    for j in range(k) if order is None else order:
        n = n_kept[:, j]
        width = int(n.max())
        if width == 0:
            continue
        cand, cand_tag = cands[:, j, :width], cand_tags[:, j, :width]
        real = np.arange(width)[None, :] < n[:, None]  # (N, width)
        matched, cols = _match(
            cand, cand_tag, n, found, tag_sums, counts, max_match, tag_threshold, solver
        )
        new = real & ~matched
        # A person's slot: the matched one, or the next free one (free slots hold zeros, so
        # adding to them sets them).
        slot = np.where(matched, cols, found[:, None] + np.cumsum(new, axis=1) - 1)
        img, row = np.nonzero(real)
        target = slot[img, row]
        persons[img, target, j] = cand[img, row]
        tag_sums[img, target] += cand_tag[img, row]
        counts[img, target] += 1
        found += new.sum(axis=1)
    return [persons[i, : found[i]] for i in range(n_img)]


def _match(
    cand: np.ndarray,
    cand_tag: np.ndarray,
    n: np.ndarray,
    found: np.ndarray,
    tag_sums: np.ndarray,
    counts: np.ndarray,
    max_match: int,
    tag_threshold: float,
    solver: str = "scipy",
) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching of one joint type's candidates to each image's first persons.

    cand: (N, W, 3 + D); cand_tag: (N, W, D); n: (N,) real candidates per image; found: (N,)
    persons so far. Returns ``matched (N, W)`` (candidate joins a person) and ``cols (N, W)``
    (that person's index, -1 where the solver left the candidate out).
    """
    grouped = np.minimum(found, max_match)
    cols = np.full(n.shape + (cand.shape[1],), -1, dtype=np.int64)
    g_max = int(grouped.max())
    if g_max == 0:
        return np.zeros(cols.shape, dtype=bool), cols
    means = tag_sums[:, :g_max] / np.maximum(counts[:, :g_max], 1)[..., None]
    distance = np.sqrt(((cand_tag[:, :, None, :] - means[:, None, :, :]) ** 2).sum(axis=3))
    cost = np.round(distance) * 100 - cand[:, :, 2:3]  # (N, W, g_max)
    for i in np.flatnonzero((n > 0) & (grouped > 0)):
        rows, persons = int(n[i]), int(grouped[i])
        matrix = cost[i, :rows, :persons]
        if rows > persons:  # padded square as in the reference
            matrix = np.concatenate(
                [matrix, np.full((rows, rows - persons), UNMATCHED_COST)], axis=1
            )
        if solver == "munkres":
            assigned_rows, assigned_cols = _munkres_assignment(matrix)
        else:
            assigned_rows, assigned_cols = linear_sum_assignment(matrix)
        cols[i, assigned_rows] = assigned_cols
    usable = (cols >= 0) & (cols < grouped[:, None])
    img, row = np.indices(cols.shape, sparse=True)
    return usable & (distance[img, row, np.where(usable, cols, 0)] < tag_threshold), cols
