"""The layer plan of a top-down network (``search_space.topdown``), from the plan's own parts.

Record names (the built network's state-dict keys): ``stem`` (ResNet: ``stem.0`` 7x7 conv,
``.1`` BN, ``.2`` ReLU, ``.3`` max pool; MobileNet: LitePose's ``stem.0``-``stem.2``),
``stages.<s>.<b>`` (ResNet blocks as HigherHRNet's, ``conv1``-``conv3`` and ``shortcut``; inverted
residuals as LitePose's, ``expand`` / ``depthwise`` / ``project``), ``deconv.<i>`` (``.0``
transposed conv, ``.1`` BN, ``.2`` ReLU) and ``final`` (the conv to the heatmaps, output 0,
started near zero as SimpleBaseline's std-0.001 init).
"""

from __future__ import annotations

from search_space.plan import (
    _HRNET_BLOCKS,
    INPUT,
    LITEPOSE_STEM_WIDTH,
    _inverted_residual,
    _Planner,
)
from search_space.topdown import MobileEncoderConfig, ResNetEncoderConfig, TopDownConfig

RESNET_STEM_KERNEL = 7
RESNET_POOL_KERNEL = 3


def plan_topdown(p: _Planner, config: TopDownConfig) -> None:
    encoder = config.encoder
    if isinstance(encoder, ResNetEncoderConfig):
        y = _resnet(p, encoder)
    elif isinstance(encoder, MobileEncoderConfig):
        y = _mobilenet(p, encoder)
    else:  # the config validated its encoder
        raise TypeError(f"unknown top-down encoder {type(encoder).__name__}")
    for i, layer in enumerate(config.head.deconvs):
        y = p.deconv(f"deconv.{i}.0", y, layer.channels, layer.kernel)
        y = p.same("bn", f"deconv.{i}.1", y)
        y = p.same("relu", f"deconv.{i}.2", y)
    p.conv("final", y, config.num_joints, config.head.final_kernel, bias=True, output=0,
           zero_init=True)  # fmt: skip


def _resnet(p: _Planner, encoder: ResNetEncoderConfig) -> str:
    y = p.conv_bn("stem", INPUT, encoder.stem_channels, RESNET_STEM_KERNEL, 2, act="relu")
    y = p.maxpool("stem.3", y, RESNET_POOL_KERNEL, 2)
    block = _HRNET_BLOCKS[encoder.block]
    for s, stage in enumerate(encoder.stages):
        for b in range(stage.blocks):
            y = block(p, f"stages.{s}.{b}", y, stage.planes, stage.stride if b == 0 else 1)
    return y


def _mobilenet(p: _Planner, encoder: MobileEncoderConfig) -> str:
    stem = LITEPOSE_STEM_WIDTH
    y = p.conv_bn("stem.0", INPUT, stem, 3, 2, act="relu6")
    y = p.conv_bn("stem.1", y, stem, 3, 1, groups=stem, act="relu6")
    y = p.conv_bn("stem.2", y, encoder.stem_channels, 1)
    for s, stage in enumerate(encoder.stages):
        for b, block in enumerate(stage.blocks):
            stride = stage.stride if b == 0 else 1
            y = _inverted_residual(p, f"stages.{s}.{b}", y, stage.channels, stride, block)
    return y
