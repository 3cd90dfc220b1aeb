"""A straightforward per-joint implementation of HigherHRNet's tag grouping, for comparison.

Written the way the HigherHRNet reference structures it: persons in a dict keyed by the first tag
value of their first joint, each person's tags in a Python list whose mean is recomputed for every
joint type, candidates filtered and matched joint type by joint type, the cost matrix padded and
solved with a Munkres (Hungarian) solver. ``bottomup/grouping.py`` must give identical keypoints.
"""

from __future__ import annotations

import numpy as np


def scipy_pairs(cost: np.ndarray) -> list[tuple[int, int]]:
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost)
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


def munkres_pairs(cost: np.ndarray) -> list[tuple[int, int]]:
    from munkres import Munkres

    return Munkres().compute(cost.tolist())


def group_reference(
    tags,
    locations,
    heat,
    detection_threshold=0.1,
    tag_threshold=1.0,
    max_match=30,
    solver=scipy_pairs,
) -> np.ndarray:
    k, c, d = tags.shape
    default = np.zeros((k, 3 + d), dtype=np.float32)
    joint_dict: dict = {}
    tag_dict: dict = {}
    for j in range(k):
        joints = np.concatenate([locations[j], heat[j][:, None], tags[j]], axis=1)
        mask = joints[:, 2] > detection_threshold
        joint_tags = tags[j][mask]
        joints = joints[mask]
        if joints.shape[0] == 0:
            continue
        if len(joint_dict) == 0:
            for tag, joint in zip(joint_tags, joints, strict=True):
                key = (float(tag[0]), len(joint_dict))
                joint_dict.setdefault(key, np.copy(default))[j] = joint
                tag_dict[key] = [tag]
            continue
        keys = list(joint_dict.keys())[:max_match]
        means = [np.mean(np.array(tag_dict[key], dtype=np.float64), axis=0) for key in keys]
        diff = joint_tags[:, None, :].astype(np.float64) - np.array(means)[None, :, :]
        distance = np.linalg.norm(diff, ord=2, axis=2)
        saved = np.copy(distance)
        cost = np.round(distance) * 100 - joints[:, 2:3]
        added, grouped = cost.shape
        if added > grouped:
            cost = np.concatenate([cost, np.zeros((added, added - grouped)) + 1e10], axis=1)
        for row, col in solver(cost):
            if row < added and col < grouped and saved[row][col] < tag_threshold:
                key = keys[col]
                joint_dict[key][j] = joints[row]
                tag_dict[key].append(joint_tags[row])
            else:
                key = (float(joint_tags[row][0]), len(joint_dict))
                joint_dict.setdefault(key, np.copy(default))[j] = joints[row]
                tag_dict[key] = [joint_tags[row]]
    if not joint_dict:
        return np.zeros((0, k, 3 + d), dtype=np.float32)
    return np.array([joint_dict[key] for key in joint_dict]).astype(np.float32)
