"""The bottom-up network's output layout, read in one place.

Every bottom-up network (``posenets``) returns ``[out_quarter, out_half]``:
``out_quarter: (N, K + K * tag_dim, H/4, W/4)``, the K heatmaps then the associative-embedding
tags, and ``out_half: (N, K, H/2, W/2)``, heatmaps only. The decoder, the losses, distillation
from a teacher and the supernet's in-place distillation all split the quarter map the same way;
:func:`split_quarter` is that split, so a change of layout (tags first, another tag count) is one
edit, as mmpose's head owns its output split.
"""

from __future__ import annotations

from torch import Tensor


def split_quarter(quarter: Tensor, num_joints: int) -> tuple[Tensor, Tensor]:
    """``(heatmaps, tags)`` of a 1/4-resolution output (or of any map with its channels in that
    order, such as the upsampled one the decoder averages): ``heatmaps: (N, K, h, w)`` and
    ``tags: (N, K * tag_dim, h, w)``, views of ``quarter``, not copies."""
    return quarter[:, :num_joints], quarter[:, num_joints:]
