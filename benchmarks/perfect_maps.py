"""What a perfect network would output, optionally with noise: inputs for decode measurements.

The encoder's own 1/4 and 1/2 heatmaps of the true keypoints, and tags equal to ``2 (p + 1)``
for person ``p`` in the 3x3 cells around each of its joints at 1/4 (0 elsewhere), so that tag
distances between persons are at least 2 and grouping is unambiguous.
"""

from __future__ import annotations

import numpy as np
import torch

from bottomup.codec import HeatmapTagCodec, to_cells


def perfect_outputs(
    codec: HeatmapTagCodec,
    keypoints: np.ndarray,
    height: int,
    width: int,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
) -> list[torch.Tensor]:
    """[(1, 2K, H/4, W/4) heatmaps and tags, (1, K, H/2, W/2) heatmaps] for (P, K, 3)
    input-pixel keypoints on an (H, W) input; both heatmaps plus Gaussian noise of std
    ``noise`` (peaks are 1)."""
    k = codec.config.num_joints
    side = max(height, width)
    quarter = codec.heatmaps(keypoints, side // 4, 4)[:, : height // 4, : width // 4]
    half = codec.heatmaps(keypoints, side // 2, 2)[:, : height // 2, : width // 2]
    if noise > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        quarter = quarter + rng.normal(0, noise, quarter.shape).astype(np.float32)
        half = half + rng.normal(0, noise, half.shape).astype(np.float32)
    tags = np.zeros((k, height // 4, width // 4), dtype=np.float32)
    for p, person in enumerate(keypoints):
        for j, (x, y, v) in enumerate(person):
            if v > 0:
                xi, yi = np.round(to_cells(np.array([x, y]), 4)).astype(int)
                tags[j, max(yi - 1, 0) : yi + 2, max(xi - 1, 0) : xi + 2] = 2.0 * (p + 1)
    return [
        torch.from_numpy(np.concatenate([quarter, tags]).astype(np.float32))[None],
        torch.from_numpy(half.astype(np.float32))[None],
    ]
