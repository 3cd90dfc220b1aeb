"""A top-down network built from a :class:`~search_space.topdown.TopDownConfig` through its plan.

Encoder, deconvolutions, final conv (``search_space.topdown_plan`` lists the layers). Unlike the
bottom-up families it has one output: ``forward(crops: (N, 3, H, W)) -> [heatmaps]`` with
``heatmaps: (N, K, H / s, W / s)``, ``s = config.output_stride``.
"""

from __future__ import annotations

from posenets.network import PlanNetwork
from search_space.topdown import TopDownConfig


class TopDownNet(PlanNetwork):
    """The network of one top-down config (SimpleBaseline and its slimmer relatives); modules
    sit at the names of the plan (``stem``, ``stages``, ``deconv``, ``final``)."""

    def __init__(self, config: TopDownConfig):
        super().__init__(config)
