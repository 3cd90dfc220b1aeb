"""A straightforward per-image implementation of HigherHRNet's / LitePose's decode, for comparison.

Written from the algorithm the way the releases' ``HeatmapParser`` structures it, one image per
call: one 5x5 max-pool NMS over the joint maps (ties all kept), top 30 per joint, tag grouping
(``grouping_reference.py``), a quarter-cell step towards the higher neighbour per grouped joint,
the person score (mean over all joints of the grouped heat, missing joints counting 0, taken
before refinement), then refinement of each person's missing joints from the heatmap minus the
rounded tag distance to the person's mean tag, loops over persons and joints in Python.

Coordinates stay in cells of the map (the releases add half a cell and map back with their own
affine transform; posearch's pixel convention is ``bottomup.codec.from_cells``), so the output
compares directly with posearch's decode before it maps back to image pixels.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from grouping_reference import group_reference, scipy_pairs


def nms_reference(heat: torch.Tensor, kernel: int = 5) -> torch.Tensor:
    """heat: (K, H, W) -> the same maps, zero except at the maxima of their window."""
    pooled = F.max_pool2d(heat[None], kernel, 1, kernel // 2)[0]
    return heat * torch.eq(pooled, heat).float()


def top_k_reference(peaks: torch.Tensor, tags: torch.Tensor, k: int = 30):
    """peaks (K, H, W), tags (K, D, H, W) -> tags (K, k, D), locations (K, k, 2), heat (K, k)."""
    joints, height, width = peaks.shape
    vals, ind = peaks.view(joints, -1).topk(k, dim=1)
    flat = tags.reshape(joints, tags.shape[1], height * width)
    tag_k = torch.stack([torch.gather(flat[:, i], 1, ind) for i in range(flat.shape[1])], dim=2)
    loc_k = torch.stack([ind % width, ind // width], dim=2)
    return tag_k.numpy(), loc_k.numpy().astype(np.float32), vals.numpy()


def quarter_step(m: np.ndarray, x: int, y: int) -> tuple[float, float]:
    """Cell (x, y) of map m moved a quarter cell towards the higher neighbour, per axis."""
    height, width = m.shape
    right, left = m[y, min(x + 1, width - 1)], m[y, max(x - 1, 0)]
    down, up = m[min(y + 1, height - 1), x], m[max(y - 1, 0), x]
    return x + (0.25 if right > left else -0.25), y + (0.25 if down > up else -0.25)


def adjust_reference(person: np.ndarray, heat: np.ndarray) -> None:
    """In place: the quarter-cell step of every grouped joint of one person (K, 3 + D)."""
    for j, joint in enumerate(person):
        if joint[2] > 0:
            joint[0], joint[1] = quarter_step(heat[j], int(joint[0]), int(joint[1]))


def refine_reference(person: np.ndarray, heat: np.ndarray, tags: np.ndarray) -> None:
    """In place: each missing joint at the best cell of heat - round(tag distance to the person's
    mean tag), with its own quarter-cell step. tags: (K, D, H, W)."""
    # Adjusted joints sit a quarter cell off their cell: + 0.5 and truncation finds it again.
    found = [tags[j, :, int(p[1] + 0.5), int(p[0] + 0.5)] for j, p in enumerate(person) if p[2] > 0]
    mean_tag = np.mean(found, axis=0)
    for j, joint in enumerate(person):
        if joint[2] > 0:
            continue
        distance = np.sqrt(((tags[j] - mean_tag[:, None, None]) ** 2).sum(axis=0))
        y, x = np.unravel_index(np.argmax(heat[j] - np.round(distance)), heat[j].shape)
        if heat[j, y, x] > 0:
            joint[0], joint[1] = quarter_step(heat[j], int(x), int(y))
            joint[2] = heat[j, y, x]


def decode_reference(
    heat: torch.Tensor,
    tags: torch.Tensor,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    top_k: int = 30,
    solver=scipy_pairs,
    timings: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One image: heat (K, H, W), tags (K, D, H, W) -> persons (P, K, 3) x, y, heat in cells and
    scores (P,). ``timings`` gets the seconds of each phase added (nms, top-k, grouping,
    refinement)."""
    marks = [time.perf_counter()]
    peaks = nms_reference(heat)
    marks.append(time.perf_counter())
    tag_k, loc_k, val_k = top_k_reference(peaks, tags, top_k)
    marks.append(time.perf_counter())
    persons = group_reference(
        tag_k, loc_k, val_k, detection_threshold, tag_threshold, solver=solver
    )
    marks.append(time.perf_counter())
    heat_np, tags_np = heat.numpy(), tags.numpy()
    for person in persons:
        adjust_reference(person, heat_np)
    scores = np.array([person[:, 2].mean() for person in persons], dtype=np.float32)
    for person in persons:
        refine_reference(person, heat_np, tags_np)
    marks.append(time.perf_counter())
    if timings is not None:
        for name, start, end in zip(PHASES, marks[:-1], marks[1:], strict=True):
            timings[name] = timings.get(name, 0.0) + end - start
    return persons[..., :3], scores


PHASES = ("nms", "top-k", "grouping", "refinement")
