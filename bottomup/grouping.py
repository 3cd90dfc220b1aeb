"""Grouping joint candidates into persons by associative-embedding tags, vectorised.

The algorithm is HigherHRNet's: joints are taken one type at a time in the layout's order; the
candidates of a type above the detection threshold are matched to the persons found so far by
Hungarian assignment on ``round(||tag - person mean tag||) * 100 - heat`` (so tag distance decides
and heat breaks ties); a match farther than the tag threshold starts a new person instead.

Where the reference keeps persons in a dict keyed by a float tag and recomputes every person's
mean from Python lists at every joint type, this keeps persons in arrays with running tag sums,
builds each cost matrix by broadcasting, and solves it with SciPy. ``benchmarks/grouping_bench.py``
checks that both give identical keypoints and measures the speed-up.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

UNMATCHED_COST = 1e10


def group_by_tags(
    tags: np.ndarray,
    locations: np.ndarray,
    heat: np.ndarray,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_match: int = 30,
) -> np.ndarray:
    """Persons from per-joint candidates.

    tags: (K, C, D) tag vectors; locations: (K, C, 2) x, y; heat: (K, C) values. New candidates
    are matched against the first ``max_match`` persons only, as in the reference.
    Returns (P, K, 3 + D): x, y, heat, tag; joints a person lacks are all zero.
    """
    k, c, d = tags.shape
    capacity = k * c
    persons = np.zeros((capacity, k, 3 + d), dtype=np.float32)
    tag_sums = np.zeros((capacity, d), dtype=np.float64)
    counts = np.zeros(capacity, dtype=np.int64)
    every = np.concatenate([locations, heat[..., None], tags], axis=2).astype(np.float32)
    every_tags = tags.astype(np.float64)
    keep_all = heat > detection_threshold
    found = 0
    for j in range(k):
        keep = keep_all[j]
        if not keep.any():
            continue
        cand, cand_tags = every[j][keep], every_tags[j][keep]
        if found == 0:
            found = len(cand)
            persons[:found, j] = cand
            tag_sums[:found] = cand_tags
            counts[:found] = 1
            continue
        grouped = min(found, max_match)
        n = len(cand)
        means = tag_sums[:grouped] / counts[:grouped, None]
        distance = np.sqrt(((cand_tags[:, None, :] - means[None, :, :]) ** 2).sum(axis=2))
        # Padded like the reference (whose float sums with the padding this reproduces).
        cost = np.full((n, max(n, grouped)), UNMATCHED_COST)
        cost[:, :grouped] = np.round(distance) * 100 - cand[:, 2:3]
        _, cols = linear_sum_assignment(cost)  # every row gets a column: rows are 0..n-1
        close = (cols < grouped) & (
            distance[np.arange(n), np.minimum(cols, grouped - 1)] < tag_threshold
        )
        m_rows = np.flatnonzero(close)
        m_cols = cols[m_rows]
        persons[m_cols, j] = cand[m_rows]
        tag_sums[m_cols] += cand_tags[m_rows]
        counts[m_cols] += 1
        new = np.flatnonzero(~close)
        persons[found : found + len(new), j] = cand[new]
        tag_sums[found : found + len(new)] = cand_tags[new]
        counts[found : found + len(new)] = 1
        found += len(new)
    return persons[:found]
