"""A weight-sharing LitePose supernet: every LitePose config up to its largest member is a subnet.

The supernet is the layer plan (``search_space.plan``) of its largest config built from elastic
ops (``supernet.elastic``): one elastic module per record, at the record's name. A member's own
plan names a subset of those records (the first blocks of each stage and branch, the branches it
keeps and their fusion layers), with its own widths and kernels; ``set_active(config)`` sets each
named module to its record's output width and kernel and runs the member's plan, so widths take
the first channels, each depthwise conv its kernel (centre crop + learned transform), each stage
and branch its first ``depth`` blocks, and a dropped branch is skipped with every fusion layer
that touches its resolution. ``export(config)`` returns the standalone network that
``posenets.build_model(config)`` builds, each module filled, name for name, with the slice of the
supernet module of the same name, so that it computes exactly what the supernet computes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from posenets import build_model
from posenets.layers import PlanRunner, build_modules, init_output_conv, static_module
from search_space.config import LitePoseConfig
from search_space.errors import ArchConfigError
from search_space.plan import LITEPOSE_DECONV_KERNEL, Layer, layer_plan
from search_space.space import check_member, slicing_allowed
from supernet.elastic import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticDepthwiseConv2d,
)

DEFAULT_KERNELS = (3, 5, 7)
ELASTIC_KERNEL = ".depthwise.0"  # the blocks' depthwise convs: their kernel is a search dimension


class LitePoseSupernet(nn.Module):
    """The once-for-all supernet over LitePose configs up to ``largest``.

    Train it by activating sampled members (``set_active``, then ``forward``: the sandwich rule in
    ``supernet.training``); score a member by activating it and evaluating the supernet (the
    ``supernet`` proxy); deploy one with ``export``. Members are whatever ``check_member``
    accepts: any width, depth and expansion up to the largest's, the depthwise kernels in
    ``kernel_sizes`` (those asked for and the largest's own), the branches the largest has."""

    def __init__(self, largest: LitePoseConfig, kernel_sizes: tuple[int, ...] = DEFAULT_KERNELS):
        super().__init__()
        if largest.head.kind != "fusion":
            raise ArchConfigError(
                "head.kind", largest.head.kind, "the supernet needs a fusion head"
            )
        self.largest = largest
        plan = layer_plan(largest)
        self.kernel_sizes = tuple(
            sorted(set(kernel_sizes) | {r.kernel for r in plan if r.name.endswith(ELASTIC_KERNEL)})
        )
        self._allowed = slicing_allowed(largest, self.kernel_sizes)
        build_modules(self, plan, self._elastic)
        for layer in plan:  # near-zero heatmaps at step 0, as build_model's (docs/supernet.md:
            if layer.zero_init:  # without it the largest's first loss was 0.95, not 0.15)
                init_output_conv(self.get_submodule(layer.module))
        self.active: LitePoseConfig = largest
        self.set_active(largest)

    def _elastic(self, layer: Layer) -> nn.Module:
        """The elastic op of one record of the largest member's plan."""
        if layer.op == "conv":
            return ElasticConv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride)
        if layer.op == "dwconv":
            elastic = layer.name.endswith(ELASTIC_KERNEL)
            kernels = self.kernel_sizes if elastic else (layer.kernel,)
            return ElasticDepthwiseConv2d(layer.in_channels, kernels, layer.stride)
        if layer.op == "deconv":
            assert layer.kernel == LITEPOSE_DECONV_KERNEL, layer
            return ElasticConvTranspose2d(layer.in_channels, layer.out_channels)
        if layer.op == "bn":
            return ElasticBatchNorm2d(layer.out_channels)
        return static_module(layer)  # parameter-free

    # ------------------------------------------------------------------ membership
    def check_member(self, config: LitePoseConfig) -> None:
        """Raise an error naming the gene and its allowed values if ``config`` is not a subnet
        of this supernet (``search_space.space.check_member``, as the space checks its own)."""
        check_member(config, self.largest, self._allowed)

    def set_active(self, config: LitePoseConfig) -> None:
        self.check_member(config)
        plan = layer_plan(config)
        for layer in plan:
            if layer.op in ("conv", "deconv"):
                self.get_submodule(layer.module).active_out = layer.out_channels
            elif layer.op == "dwconv":
                self.get_submodule(layer.module).active_kernel = layer.kernel
        self._run = PlanRunner(plan)
        self.active = config

    def forward(self, x: Tensor) -> list[Tensor]:
        return self._run(self, x)

    # ------------------------------------------------------------------ export
    @torch.no_grad()
    def export(self, config: LitePoseConfig | None = None) -> nn.Module:
        """The standalone network of ``config`` (default: the active one) with its weights."""
        config = config or self.active
        self.check_member(config)
        model = build_model(config).to(self.stem[0][0].weight.device)
        filled = set()
        for layer in layer_plan(config):
            source = self.get_submodule(layer.module) if layer.module else None
            if hasattr(source, "static_state"):
                state = source.static_state(layer)
                model.get_submodule(layer.module).load_state_dict(state)
                filled |= {f"{layer.module}.{key}" for key in state}
        missing = set(model.state_dict()) - filled
        if missing:
            raise RuntimeError(f"export left {sorted(missing)[:3]} unfilled")
        return model.train(self.training)
