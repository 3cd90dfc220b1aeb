"""LitePose built from a :class:`~search_space.config.LitePoseConfig`.

Follows the LitePose release layer for layer: stem to 1/2, four inverted residual stages, and the
fusion (or plain) deconv head whose final separable convs add a refined path and a raw path:
``out_quarter = Sep(y_1) + Sep(stage1)``, ``out_half = Sep(y_2) + Sep(stem)``.

Higher-resolution branches (``LiteStageConfig.branches``) make the backbone HRNet-shaped: beside
stage s's main path, a branch at 1/4 or 1/8 continues the latest feature map at that resolution,
and the stage ends with HRNet's fusion, every path receiving every other (``fuse_layer``). The
fused maps replace the ones the branches started from, so the head's skips (and the 1/4 raw
output) take the latest feature at each resolution. The fusion sum has no ReLU: the paths end in
MobileNetV2's linear projections, whose outputs a ReLU would clip. Without branches none of these
modules exist and the network is exactly the single-branch LitePose.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

from models.layers import (
    InvertedResidual,
    SeparableConv,
    conv_bn,
    deconv,
    fuse_layer,
    init_output_conv,
)
from search_space.config import STAGE_FEATURE_STRIDES, LitePoseConfig

STEM_WIDTH = 32
DECONV_KERNEL = 4


def branch_key(stage_index: int, feature_stride: int) -> str:
    """Name of stage ``stage_index``'s (0-based) branch at 1/``feature_stride``."""
    return f"stage{stage_index + 1}_at{feature_stride}"


def fuse_key(stage_index: int, source_stride: int, target_stride: int) -> str:
    """Name of the fusion layer of stage ``stage_index`` from one path's resolution to another."""
    return f"stage{stage_index + 1}_{source_stride}to{target_stride}"


def fuse_levels(source_stride: int, target_stride: int) -> int:
    """Halvings of resolution from source to target (negative: the target is finer)."""
    return round(math.log2(target_stride / source_stride))


def run_branches_and_fuse(
    config: LitePoseConfig,
    stage_index: int,
    feats: list[Tensor],
    branches: nn.ModuleDict,
    fuse: nn.ModuleDict,
) -> None:
    """Run stage ``stage_index``'s branches and fuse them with its main output ``feats[-1]``.

    ``feats`` holds the stem output, then each stage's output so far; the fused maps replace the
    entries the branches continued (the output of the stage at their resolution) and the main
    output, in place. Shared by the standalone network and the supernet, so both compute alike.
    """
    paths = config.parallel_paths(stage_index)
    sources = [STAGE_FEATURE_STRIDES.index(stride) + 1 for stride, _ in paths[:-1]]
    xs = [
        branches[branch_key(stage_index, stride)](feats[i])
        for (stride, _), i in zip(paths[:-1], sources, strict=True)
    ]
    xs.append(feats[-1])
    for i, (target, _) in enumerate(paths):
        y = xs[i]
        for j, (source, _) in enumerate(paths):
            if j != i:
                y = y + fuse[fuse_key(stage_index, source, target)](xs[j])
        feats[sources[i] if i < len(sources) else -1] = y


class LitePose(nn.Module):
    def __init__(self, config: LitePoseConfig):
        super().__init__()
        self.config = config
        stem_ch = config.stem_channels
        self.stem = nn.Sequential(
            conv_bn(3, STEM_WIDTH, 3, 2, act=nn.ReLU6),
            conv_bn(STEM_WIDTH, STEM_WIDTH, 3, 1, groups=STEM_WIDTH, act=nn.ReLU6),
            conv_bn(STEM_WIDTH, stem_ch, 1),
        )
        # widths[0] is the stem, widths[1..4] the stages.
        widths = [stem_ch]
        stages = []
        for stage in config.stages:
            blocks = []
            for b, block in enumerate(stage.blocks):
                stride = stage.stride if b == 0 else 1
                blocks.append(
                    InvertedResidual(
                        widths[-1] if b == 0 else stage.channels,
                        stage.channels,
                        stride,
                        block.kernel,
                        block.expansion,
                    )
                )
            stages.append(nn.Sequential(*blocks))
            widths.append(stage.channels)
        self.stages = nn.ModuleList(stages)
        if config.has_branches:  # absent otherwise: the single-branch network stays unchanged
            self.branches, self.fuse = self._branch_layers(config)

        head = config.head
        self.fusion = head.kind == "fusion"
        # Step i upsamples y_{i-1} (y_-1 = stage 4) and, in the fusion head, the skip widths[3 - i].
        self.deconv_refined = nn.ModuleList()
        self.deconv_skip = nn.ModuleList()
        self.deconv_bn_relu = nn.ModuleList()
        in_ch = widths[4]
        for i, out_ch in enumerate(head.channels):
            self.deconv_refined.append(deconv(in_ch, out_ch, DECONV_KERNEL))
            if self.fusion:
                self.deconv_skip.append(deconv(widths[3 - i], out_ch, DECONV_KERNEL))
            self.deconv_bn_relu.append(nn.Sequential(nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)))
            in_ch = out_ch
        (quarter_ch, half_ch), fk = config.output_channels, head.final_kernel
        self.final_refined = nn.ModuleList(
            [
                SeparableConv(head.channels[1], quarter_ch, fk),
                SeparableConv(head.channels[2], half_ch, fk),
            ]
        )
        self.final_raw = nn.ModuleList(
            [SeparableConv(widths[1], quarter_ch, fk), SeparableConv(widths[0], half_ch, fk)]
        )

        for final in (*self.final_refined, *self.final_raw):
            init_output_conv(final[3])

    @staticmethod
    def _branch_layers(config: LitePoseConfig) -> tuple[nn.ModuleDict, nn.ModuleDict]:
        branches, fuse = nn.ModuleDict(), nn.ModuleDict()
        for s, stage in enumerate(config.stages):
            for branch in stage.branches:
                ch = config.branch_channels(branch.feature_stride)
                branches[branch_key(s, branch.feature_stride)] = nn.Sequential(
                    *(InvertedResidual(ch, ch, 1, b.kernel, b.expansion) for b in branch.blocks)
                )
            for source, source_ch, target, target_ch in config.fusion_links(s):
                fuse[fuse_key(s, source, target)] = fuse_layer(
                    source_ch, target_ch, fuse_levels(source, target)
                )
        return branches, fuse

    @torch.no_grad()
    def fold_head_batchnorm_(self) -> None:
        """Fold each head BN into the transposed conv(s) before it (eval mode only).

        In the fusion head the BN follows the sum of two deconvs: BN(a + b) = s*a + s*b + t, so
        both take the scale s and the refined one also the shift t."""
        for i, bn_relu in enumerate(self.deconv_bn_relu):
            bn = bn_relu[0]
            if not isinstance(bn, nn.BatchNorm2d):
                continue  # already folded
            self.deconv_refined[i] = fuse_conv_bn_eval(self.deconv_refined[i], bn, transpose=True)
            if self.fusion:
                skip = self.deconv_skip[i]
                weight, bias = fuse_conv_bn_weights(
                    skip.weight, None, torch.zeros_like(bn.running_mean), bn.running_var,
                    bn.eps, bn.weight, torch.zeros_like(bn.bias), transpose=True,
                )  # fmt: skip
                skip.weight = weight
                skip.bias = bias
            bn_relu[0] = nn.Identity()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        for s, stage in enumerate(self.stages):
            feats.append(stage(feats[-1]))
            if self.config.stages[s].branches:
                run_branches_and_fuse(self.config, s, feats, self.branches, self.fuse)
        y = feats[4]
        outputs = []
        for i in range(3):
            up = self.deconv_refined[i](y)
            if self.fusion:
                up = up + self.deconv_skip[i](feats[3 - i])
            y = self.deconv_bn_relu[i](up)
            if i > 0:
                # y_1 pairs with stage 1 (1/4), y_2 with the stem (1/2).
                outputs.append(self.final_refined[i - 1](y) + self.final_raw[i - 1](feats[2 - i]))
        return outputs
