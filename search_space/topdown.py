"""The top-down family of the architecture language: one person crop in, K heatmaps out.

A top-down network sees one person at a time, cut from the image by its box and warped to
``input_size`` (height, width), 256 x 192 for COCO in SimpleBaseline / HRNet. Its shape is an
encoder, a decoder of transposed convolutions and a final conv to ``num_joints`` heatmaps
(SimpleBaseline, Xiao et al. 2018; "Rethinking Deconvolution for 2D Human Pose Estimation",
Yamazaki and Mori, whose point is that the decoder's widths can be cut):

* encoder ``ResNetEncoderConfig``: ResNet's 7x7 stem and 3x3 max pool (to 1/4), then stages of
  bottleneck (or basic) blocks, the first block of each carrying the stride; ResNet-50 is
  planes (64, 128, 256, 512), blocks (3, 4, 6, 3), strides (1, 2, 2, 2): 1/32.
* encoder ``MobileEncoderConfig``: LitePose's stem (to 1/2) and stages of MobileNetV2 inverted
  residuals (``LiteStageConfig`` of the LitePose family, without its branches).
* ``TopDownHeadConfig``: deconvolutions, each with its own width and kernel, each doubling the
  size and followed by BN and ReLU, then a ``final_kernel`` conv with bias to the heatmaps.

The heatmaps come out at 1/``output_stride`` of the crop: the encoder's stride halved by every
deconvolution (SimpleBaseline: 1/32 and three deconvs, 1/4). The plan is in
``search_space.topdown_plan``; everything that reads a plan (builder, MACs, memory, latency)
reads it for this family too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from search_space.config import (
    MAX_INPUT_SIZE,
    MAX_WIDTH,
    NUM_JOINTS_CHOICES,
    InvertedResidualConfig,
    LiteStageConfig,
    _check_choice,
    _check_count,
    _check_int,
    _check_tuple,
)
from search_space.errors import ArchConfigError

TOPDOWN_BLOCKS = ("bottleneck", "basic")
ENCODER_KINDS = ("resnet", "mobilenet")
DECONV_KERNELS = (2, 3, 4)  # search_space.plan.deconv_padding: each one exactly doubles
FINAL_KERNELS = (1, 3)
MAX_STAGES = 6  # ResNet has 4; a MobileNetV2 5 stride stages
MAX_DECONVS = 5
MAX_RESNET_BLOCKS = 48  # ResNet-152 and -200 have 36 blocks in one stage


@dataclass(frozen=True)
class ResNetStageConfig:
    """``blocks`` ResNet blocks of ``planes`` (a bottleneck outputs 4 x planes); the first one
    carries ``stride`` and the projection shortcut where the shape changes."""

    planes: int
    blocks: int
    stride: int = 2

    def validate(self, path: str) -> None:
        _check_int(f"{path}.planes", self.planes, maximum=MAX_WIDTH)
        _check_int(f"{path}.blocks", self.blocks, maximum=MAX_RESNET_BLOCKS)
        _check_choice(f"{path}.stride", self.stride, (1, 2))


@dataclass(frozen=True, kw_only=True)
class ResNetEncoderConfig:
    """ResNet: 7x7 stride-2 conv to ``stem_channels``, BN, ReLU, 3x3 stride-2 max pool, stages."""

    kind: Literal["resnet"] = "resnet"
    block: Literal["bottleneck", "basic"] = "bottleneck"
    stem_channels: int = 64
    stages: tuple[ResNetStageConfig, ...]

    STEM_STRIDE = 4

    def validate(self, path: str) -> None:
        _check_choice(f"{path}.kind", self.kind, ("resnet",))
        _check_choice(f"{path}.block", self.block, TOPDOWN_BLOCKS)
        _check_int(f"{path}.stem_channels", self.stem_channels, maximum=MAX_WIDTH)
        _check_tuple(f"{path}.stages", self.stages)
        _check_count(f"{path}.stages", self.stages, "stages", MAX_STAGES)
        for s, stage in enumerate(self.stages):
            if not isinstance(stage, ResNetStageConfig):
                raise ArchConfigError(f"{path}.stages[{s}]", stage, "must be a ResNetStageConfig")
            stage.validate(f"{path}.stages[{s}]")

    @property
    def stride(self) -> int:
        return self.STEM_STRIDE * _product(stage.stride for stage in self.stages)


@dataclass(frozen=True, kw_only=True)
class MobileEncoderConfig:
    """LitePose's stem (3x3 stride-2 conv to 32, 3x3 depthwise, 1x1 to ``stem_channels``), then
    stages of inverted residual blocks, the first block of each carrying the stage's stride."""

    kind: Literal["mobilenet"] = "mobilenet"
    stem_channels: int = 16
    stages: tuple[LiteStageConfig, ...]

    STEM_STRIDE = 2

    def validate(self, path: str) -> None:
        _check_choice(f"{path}.kind", self.kind, ("mobilenet",))
        _check_int(f"{path}.stem_channels", self.stem_channels, maximum=MAX_WIDTH)
        _check_tuple(f"{path}.stages", self.stages)
        _check_count(f"{path}.stages", self.stages, "stages", MAX_STAGES)
        for s, stage in enumerate(self.stages):
            where = f"{path}.stages[{s}]"
            if not isinstance(stage, LiteStageConfig):
                raise ArchConfigError(where, stage, "must be a LiteStageConfig")
            if stage.branches:  # before the stage's own checks, which would parse them
                raise ArchConfigError(
                    f"{where}.branches",
                    stage.branches,
                    "must be empty: a top-down encoder has one path (branches are a gene of "
                    "the bottom-up litepose family)",
                )
            stage.validate(where)

    @property
    def stride(self) -> int:
        return self.STEM_STRIDE * _product(stage.stride for stage in self.stages)


@dataclass(frozen=True)
class DeconvLayerConfig:
    """One stride-2 transposed conv of the decoder (then BN and ReLU)."""

    channels: int
    kernel: int = 4

    def validate(self, path: str) -> None:
        _check_int(f"{path}.channels", self.channels, maximum=MAX_WIDTH)
        _check_choice(f"{path}.kernel", self.kernel, DECONV_KERNELS)


@dataclass(frozen=True, kw_only=True)
class TopDownHeadConfig:
    """The decoder: ``deconvs`` in order, then a ``final_kernel`` conv (with bias) to K maps."""

    deconvs: tuple[DeconvLayerConfig, ...]
    final_kernel: int = 1

    def validate(self, path: str) -> None:
        _check_tuple(f"{path}.deconvs", self.deconvs, nonempty=False)
        _check_count(f"{path}.deconvs", self.deconvs, "deconvolutions", MAX_DECONVS)
        for i, layer in enumerate(self.deconvs):
            if not isinstance(layer, DeconvLayerConfig):
                raise ArchConfigError(f"{path}.deconvs[{i}]", layer, "must be a DeconvLayerConfig")
            layer.validate(f"{path}.deconvs[{i}]")
        _check_choice(f"{path}.final_kernel", self.final_kernel, FINAL_KERNELS)


Encoder = ResNetEncoderConfig | MobileEncoderConfig
ENCODERS: dict[str, type] = {"resnet": ResNetEncoderConfig, "mobilenet": MobileEncoderConfig}


@dataclass(frozen=True, kw_only=True)
class TopDownConfig:
    """A top-down single-person network (module docstring).

    ``input_size`` is the crop's (height, width); an int means a square crop and is stored as
    the pair, so that both spellings hash alike. Both sides must be multiples of the encoder's
    stride (``input_multiple``)."""

    input_size: tuple[int, int] = (256, 192)
    num_joints: int = 17
    encoder: Encoder
    head: TopDownHeadConfig

    def __post_init__(self) -> None:
        size = self.input_size
        if isinstance(size, int) and not isinstance(size, bool):
            object.__setattr__(self, "input_size", (size, size))
        elif isinstance(size, list):
            object.__setattr__(self, "input_size", tuple(size))
        if not isinstance(self.encoder, ResNetEncoderConfig | MobileEncoderConfig):
            raise ArchConfigError(
                "encoder", self.encoder, "must be a ResNetEncoderConfig or MobileEncoderConfig"
            )
        self.encoder.validate("encoder")
        if not isinstance(self.head, TopDownHeadConfig):
            raise ArchConfigError("head", self.head, "must be a TopDownHeadConfig")
        self.head.validate("head")
        if self.encoder.stride < 2 ** len(self.head.deconvs):
            raise ArchConfigError(
                "head.deconvs",
                len(self.head.deconvs),
                f"deconvolutions would upsample beyond the crop: the encoder runs at "
                f"1/{self.encoder.stride}, so at most {self.encoder.stride.bit_length() - 1} "
                "fit",
            )
        _check_choice("num_joints", self.num_joints, NUM_JOINTS_CHOICES)
        self._validate_size()

    def _validate_size(self) -> None:
        size, multiple = self.input_size, self.input_multiple
        if not isinstance(size, tuple) or len(size) != 2:
            raise ArchConfigError("input_size", size, "must be [height, width] (or one int)")
        for i, side in enumerate(size):
            _check_int(f"input_size[{i}]", side, multiple, MAX_INPUT_SIZE)
            if side % multiple:
                raise ArchConfigError(
                    f"input_size[{i}]",
                    side,
                    f"must be a multiple of {multiple}, the encoder's stride",
                )

    @property
    def family(self) -> str:
        return "topdown"

    @property
    def input_multiple(self) -> int:
        return self.encoder.stride

    @property
    def output_stride(self) -> int:
        """Crop pixels per heatmap cell."""
        return self.encoder.stride // 2 ** len(self.head.deconvs)

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """(height, width) of the heatmaps at the config's own crop size."""
        return (self.input_size[0] // self.output_stride, self.input_size[1] // self.output_stride)

    @property
    def output_channels(self) -> tuple[int]:
        """Channels of the one output: a heatmap per joint."""
        return (self.num_joints,)


def _product(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out


# How search_space.serialize builds each nested field (dataclass, is a list, nested rules); a
# dict in place of a dataclass picks the dataclass by the mapping's ``kind``.
_BLOCKS = {"blocks": (InvertedResidualConfig, True, {})}
NESTED = {
    "encoder": (
        {
            "resnet": (ResNetEncoderConfig, {"stages": (ResNetStageConfig, True, {})}),
            "mobilenet": (MobileEncoderConfig, {"stages": (LiteStageConfig, True, _BLOCKS)}),
        },
        False,
        {},
    ),
    "head": (TopDownHeadConfig, False, {"deconvs": (DeconvLayerConfig, True, {})}),
}
