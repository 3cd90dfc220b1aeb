"""Single-person training targets: one Gaussian heatmap per joint and a weight per joint.

SimpleBaseline / HRNet's targets: at the network's output stride, a Gaussian of ``sigma`` cells
(2 at 64 x 48) on each labelled joint of the one person the crop is centred on, and a weight of 0
for a joint that is unlabelled or left the crop, so the loss ignores it. The Gaussians are the
bottom-up codec's (``bottomup.codec.HeatmapTagCodec.heatmaps``: same cell convention, same 3-sigma
cut), drawn on a square grid of the longer side and cut to the crop's (height, width).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from bottomup.codec import CodecConfig, HeatmapTagCodec
from bottomup.keypoints import KeypointLayout

SIGMA = 2.0


@lru_cache(maxsize=8)
def _codec(layout: KeypointLayout, sigma: float) -> HeatmapTagCodec:
    # input_size only sizes the codec's tag targets, which a top-down crop does not use.
    return HeatmapTagCodec(CodecConfig(1, layout.num_joints, sigma=sigma), layout)


def heatmap_targets(
    keypoints: np.ndarray,
    heatmap_size: tuple[int, int],
    stride: int,
    layout: KeypointLayout,
    sigma: float = SIGMA,
) -> tuple[np.ndarray, np.ndarray]:
    """``keypoints (K, 3)`` in crop pixels (v = 0: unlabelled or outside) -> ``heatmaps (K, h, w)``
    float32 and ``weights (K,)`` float32 (1 for each labelled joint)."""
    h, w = heatmap_size
    side = max(h, w)
    maps = _codec(layout, sigma).heatmaps(keypoints[None], side, stride)[:, :h, :w]
    weights = (keypoints[:, 2] > 0).astype(np.float32)
    return np.ascontiguousarray(maps), weights
