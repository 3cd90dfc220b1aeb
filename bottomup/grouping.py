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
    found = 0
    for j in range(k):
        keep = heat[j] > detection_threshold
        if not keep.any():
            continue
        cand_tags = tags[j][keep].astype(np.float64)
        cand = np.concatenate(
            [locations[j][keep], heat[j][keep, None], tags[j][keep]], axis=1
        ).astype(np.float32)
        if found == 0:
            rows = np.arange(len(cand))
            new = rows
            persons[found : found + len(new), j] = cand[new]
            tag_sums[found : found + len(new)] = cand_tags[new]
            counts[found : found + len(new)] = 1
            found += len(new)
            continue
        grouped = min(found, max_match)
        means = tag_sums[:grouped] / counts[:grouped, None]
        distance = np.linalg.norm(cand_tags[:, None, :] - means[None, :, :], axis=2)
        cost = np.round(distance) * 100 - cand[:, 2:3]
        if len(cand) > grouped:
            cost = np.concatenate(
                [cost, np.full((len(cand), len(cand) - grouped), UNMATCHED_COST)], axis=1
            )
        rows, cols = linear_sum_assignment(cost)
        matched = (cols < grouped) & (distance[rows, np.minimum(cols, grouped - 1)] < tag_threshold)
        m_rows, m_cols = rows[matched], cols[matched]
        persons[m_cols, j] = cand[m_rows]
        tag_sums[m_cols] += cand_tags[m_rows]
        counts[m_cols] += 1
        new = rows[~matched]
        persons[found : found + len(new), j] = cand[new]
        tag_sums[found : found + len(new)] = cand_tags[new]
        counts[found : found + len(new)] = 1
        found += len(new)
    return persons[:found]
