"""A network built from its config's layer plan: what both families' classes share."""

from __future__ import annotations

from torch import Tensor, nn

from posenets.layers import PlanRunner, build_modules, init_output_conv
from search_space.config import ArchConfig
from search_space.plan import layer_plan


class PlanNetwork(nn.Module):
    """One static module per record of ``layer_plan(config)``, run in plan order.

    ``forward(image: (N, 3, H, W)) -> [out_quarter, out_half]`` (see ``posenets``); any input whose
    sides are multiples of ``config.input_multiple`` works, not only ``config.input_size``."""

    def __init__(self, config: ArchConfig):
        super().__init__()
        self.config = config
        plan = layer_plan(config)
        build_modules(self, plan)
        for layer in plan:
            if layer.zero_init:
                init_output_conv(self.get_submodule(layer.module))
        self._run = PlanRunner(plan)

    def forward(self, x: Tensor) -> list[Tensor]:
        return self._run(self, x)
