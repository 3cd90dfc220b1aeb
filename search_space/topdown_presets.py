"""Named top-down architectures (registered with the other presets, ``pipeline="topdown"``).

``simplebaseline_resnet50`` is SimpleBaseline's ResNet-50 at 256 x 192 (Xiao et al. 2018): 8.9
published GFLOPs, in HRNet's counting convention (``evaluators.macs_fast.hrnet_gflops``, see
``docs/topdown.md``). ``rethinking_mobile`` follows the direction of "Rethinking Deconvolution"
(Yamazaki and Mori): a small MobileNetV2-style encoder with slim deconvolutions; its widths are
ours, not the paper's, which the paper does not list in full.
"""

from __future__ import annotations

from search_space.config import InvertedResidualConfig, LiteStageConfig
from search_space.presets import register
from search_space.topdown import (
    DeconvLayerConfig,
    MobileEncoderConfig,
    ResNetEncoderConfig,
    ResNetStageConfig,
    TopDownConfig,
    TopDownHeadConfig,
)

COCO_CROP = (256, 192)
DEMO_CROP = (128, 96)  # 4:3 like COCO's, sides multiples of the encoders' 1/32
RESNET_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
RESNET_PLANES = (64, 128, 256, 512)
RESNET_STRIDES = (1, 2, 2, 2)
SIMPLEBASELINE_DECONVS = (256, 256, 256)


def simplebaseline(depth: int, input_size=COCO_CROP, deconvs=SIMPLEBASELINE_DECONVS):
    """SimpleBaseline: ResNet-``depth`` (1/32), three 4x4 deconvs to 1/4, a 1x1 conv to 17."""
    stages = tuple(
        ResNetStageConfig(planes=p, blocks=n, stride=s)
        for p, n, s in zip(RESNET_PLANES, RESNET_DEPTHS[depth], RESNET_STRIDES, strict=True)
    )
    return TopDownConfig(
        input_size=input_size,
        num_joints=17,
        encoder=ResNetEncoderConfig(stages=stages),
        head=TopDownHeadConfig(deconvs=tuple(DeconvLayerConfig(c, 4) for c in deconvs)),
    )


@register("simplebaseline_resnet50", published_gmacs=8.9, pipeline="topdown")
def simplebaseline_resnet50() -> TopDownConfig:
    """SimpleBaseline ResNet-50, 256x192 crops, deconvs 256-256-256 (COCO, 17 joints)."""
    return simplebaseline(50)


@register("simplebaseline_resnet101", published_gmacs=12.4, pipeline="topdown")
def simplebaseline_resnet101() -> TopDownConfig:
    """SimpleBaseline ResNet-101, 256x192 crops."""
    return simplebaseline(101)


@register("simplebaseline_resnet152", published_gmacs=15.7, pipeline="topdown")
def simplebaseline_resnet152() -> TopDownConfig:
    """SimpleBaseline ResNet-152, 256x192 crops."""
    return simplebaseline(152)


# A MobileNetV2-shaped encoder to 1/32 with LitePose's large depthwise kernels.
MOBILE_STAGES = ((16, 2, 2), (24, 2, 3), (48, 2, 3), (96, 1, 3), (160, 2, 2))


def mobile(input_size, deconvs, kernel: int = 5, expansion: int = 6) -> TopDownConfig:
    block = InvertedResidualConfig(kernel=kernel, expansion=expansion)
    stages = tuple(
        LiteStageConfig(channels=c, stride=s, blocks=(block,) * d) for c, s, d in MOBILE_STAGES
    )
    return TopDownConfig(
        input_size=input_size,
        num_joints=17,
        encoder=MobileEncoderConfig(stem_channels=16, stages=stages),
        head=TopDownHeadConfig(deconvs=tuple(DeconvLayerConfig(c, 4) for c in deconvs)),
    )


@register("rethinking_mobile", pipeline="topdown")
def rethinking_mobile() -> TopDownConfig:
    """Rethinking-Deconvolution-style: MobileNetV2-style encoder, slim deconvs 64-32-32, 256x192."""
    return mobile(COCO_CROP, (64, 32, 32))


@register("rethinking_mobile_demo", pipeline="topdown")
def rethinking_mobile_demo() -> TopDownConfig:
    """rethinking_mobile at 128x96 crops, for the demo data (what a CPU trains in minutes)."""
    return mobile(DEMO_CROP, (64, 32, 32))
