"""MACs straight from an architecture config, without building or tracing a network.

A search evaluates thousands of candidates; an fvcore trace at full resolution costs a second or
more, this sum over the config's layer plan (``search_space.plan``) well under a millisecond. It
applies fvcore's own rules (see docs/macs.md) to each record of the plan the builder instantiates,
so it must agree with ``count_macs`` exactly: ``tests/test_macs.py`` checks that on every preset
and on random configs of both families.
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluators.macs import PAPER_DECONV_EXTRA
from search_space.config import ArchConfig
from search_space.plan import Layer, Size, layer_plan


@dataclass(frozen=True)
class FastMacs:
    macs: int
    macs_paper: int


def layer_macs(layer: Layer) -> int:
    """fvcore's count for one record: convs per output pixel (bias not counted), transposed
    convs per *input* pixel, BN 2 and nearest upsampling 1 per output element, the rest 0
    (max pooling too: fvcore skips ``aten::max_pool2d``)."""
    out_pixels = layer.out_size[0] * layer.out_size[1]
    if layer.op in ("conv", "dwconv"):
        per_pixel = layer.out_channels * (layer.in_channels // layer.groups) * layer.kernel**2
        return per_pixel * out_pixels
    if layer.op == "deconv":
        in_pixels = layer.in_size[0] * layer.in_size[1]
        return layer.in_channels * layer.out_channels * layer.kernel**2 * in_pixels
    if layer.op == "bn":
        return 2 * layer.out_channels * out_pixels
    if layer.op == "upsample":
        return layer.out_channels * out_pixels
    return 0  # relu, relu6, add, concat


def plan_macs(plan: tuple[Layer, ...]) -> FastMacs:
    """True and paper-convention MACs of a layer plan (the paper charges deconvs per output
    pixel: ``PAPER_DECONV_EXTRA`` more times their true count)."""
    macs = deconv = 0
    for layer in plan:
        count = layer_macs(layer)
        macs += count
        if layer.op == "deconv":
            deconv += count
    return FastMacs(macs, macs + PAPER_DECONV_EXTRA * deconv)


def fast_macs(config: ArchConfig, input_size: int | Size | None = None) -> FastMacs:
    """True and paper-convention MACs of ``config`` at ``input_size`` (default: its own)."""
    return plan_macs(layer_plan(config, input_size))


# HRNet's ``get_model_summary`` (which the SimpleBaseline / HRNet papers' "GFLOPs" use) reports
# its sum in units of 2**30, not 1e9.
SUMMARY_GIGA = 2**30


def summary_gmacs(config: ArchConfig, input_size: int | Size | None = None) -> float:
    """MACs in the convention of the SimpleBaseline and HRNet papers' tables (docs/topdown.md):
    every conv and transposed conv charged its weight count per *output* pixel, nothing else
    (no BN), in units of 2**30. HRNet-W32 at 256x192 comes to 7.12 of these (published 7.1)."""
    total = 0
    for layer in layer_plan(config, input_size):
        if layer.op in ("conv", "dwconv"):
            total += layer_macs(layer)
        elif layer.op == "deconv":  # fvcore's count is per input pixel
            (hi, wi), (ho, wo) = layer.in_size, layer.out_size
            total += layer_macs(layer) * (ho * wo) // (hi * wi)
    return total / SUMMARY_GIGA
