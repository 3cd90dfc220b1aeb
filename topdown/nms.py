"""OKS non-maximum suppression: one image's overlapping persons reduced to the best of each.

Top-down evaluation runs the network once per box, and a detector gives several boxes for one
person, each decoding to nearly the same pose. As in HRNet's evaluation, persons are visited by
descending score and every remaining person whose object keypoint similarity with the kept one
exceeds ``threshold`` (0.9) is dropped. OKS here is COCO's: per joint ``exp(-d^2 / (2 s^2
k^2))`` with ``s^2`` the mean of the two persons' areas and ``k = 2 sigma``, averaged over the
joints both persons have above ``min_heat`` (all of them by default).
"""

from __future__ import annotations

import numpy as np

OKS_THRESHOLD = 0.9


def oks(
    person: np.ndarray, others: np.ndarray, area: float, other_areas: np.ndarray,
    sigmas: np.ndarray, min_heat: float | None = None,
) -> np.ndarray:  # fmt: skip
    """OKS of ``person (K, 3)`` with each of ``others (M, K, 3)``."""
    variances = (2 * sigmas) ** 2
    d2 = ((others[..., :2] - person[None, :, :2]) ** 2).sum(axis=-1)
    scale = (area + other_areas)[:, None] / 2 + np.finfo(float).eps
    e = np.exp(-d2 / variances[None] / scale / 2)
    if min_heat is None:
        return e.mean(axis=1)
    both = (person[None, :, 2] > min_heat) & (others[..., 2] > min_heat)
    return np.where(both.any(axis=1), (e * both).sum(axis=1) / np.maximum(both.sum(axis=1), 1), 0)


def oks_nms(
    keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
    threshold: float = OKS_THRESHOLD, min_heat: float | None = None,
) -> list[int]:  # fmt: skip
    """Indices of the persons kept (``keypoints (P, K, 3)``, ``scores (P,)``, ``areas (P,)``),
    best first."""
    order = list(np.argsort(-np.asarray(scores), kind="stable"))
    kept = []
    while order:
        best, rest = order[0], np.asarray(order[1:], dtype=int)
        kept.append(int(best))
        if len(rest) == 0:
            break
        similarity = oks(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas,
                         min_heat)  # fmt: skip
        order = list(rest[similarity <= threshold])
    return kept
