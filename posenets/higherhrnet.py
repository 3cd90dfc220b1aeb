"""HigherHRNet built from a :class:`~search_space.config.HigherHRNetConfig` through its layer plan.

Structure follows the HigherHRNet / LitePose releases layer for layer (so MACs agree with them;
``search_space.plan`` lists the layers): stem, Bottleneck layer1, three stages of multi-resolution
modules with fusion, and the HigherHRNet head. A branch with 0 blocks in a module is one 3x3
conv-BN-ReLU6, as in the LitePose release.
"""

from __future__ import annotations

from posenets.network import PlanNetwork
from search_space.config import HigherHRNetConfig


class HigherHRNet(PlanNetwork):
    """The HigherHRNet network of one config (the baselines and the gradual-shrinking steps).

    Modules sit at the names of the config's layer plan (``stem``, ``layer1``, ``transitions``,
    ``stages``, ``final_quarter``, ``deconv``, ``final_half``), the HigherHRNet release's keys."""

    def __init__(self, config: HigherHRNetConfig):
        super().__init__(config)
