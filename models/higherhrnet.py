"""HigherHRNet built from a :class:`~search_space.config.HigherHRNetConfig`.

Structure follows the HigherHRNet / LitePose releases layer for layer (so MACs agree with them):
stem, Bottleneck layer1, three stages of multi-resolution modules with fusion, and the HigherHRNet
head. A branch with 0 blocks in a module is one 3x3 conv-BN-ReLU6, as in the LitePose release.
"""

from __future__ import annotations

import torch
from torch import nn

from models.layers import (
    HRNET_BLOCKS,
    BasicBlock,
    Bottleneck,
    conv_bn,
    deconv,
    fuse_layer,
    init_output_conv,
)
from search_space.config import HRNET_BLOCK_EXPANSION, HigherHRNetConfig, HRNetStageConfig

STEM_WIDTH = 64


def _branch(in_ch: int, width: int, num_blocks: int, block: str) -> nn.Module:
    out_ch = width * HRNET_BLOCK_EXPANSION[block]
    if num_blocks == 0:
        return conv_bn(in_ch, out_ch, 3, act=nn.ReLU6)
    block_cls = HRNET_BLOCKS[block]
    layers = [block_cls(in_ch, width)]
    layers += [block_cls(out_ch, width) for _ in range(num_blocks - 1)]
    return nn.Sequential(*layers)


class HRModule(nn.Module):
    """Parallel branches, then every output branch sums all inputs brought to its resolution."""

    def __init__(
        self,
        channels: list[int],
        blocks: tuple[int, ...],
        widths: tuple[int, ...],
        block: str,
        num_outputs: int,
    ):
        super().__init__()
        self.branches = nn.ModuleList(
            _branch(c, w, n, block) for c, w, n in zip(channels, widths, blocks, strict=True)
        )
        out = [w * HRNET_BLOCK_EXPANSION[block] for w in widths]
        self.out_channels = out
        self.fuse = nn.ModuleList(
            nn.ModuleList(
                nn.Identity() if j == i else fuse_layer(out[j], out[i], i - j)
                for j in range(len(out))
            )
            for i in range(num_outputs)
        )
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        outs = []
        for fuse_row in self.fuse:
            y = fuse_row[0](xs[0])
            for j in range(1, len(xs)):
                y = y + fuse_row[j](xs[j])
            outs.append(self.relu(y))
        return outs


class Transition(nn.Module):
    """Adapt the previous stage's branches to this stage's and start its new, lower branch."""

    def __init__(self, prev_channels: list[int], channels: list[int]):
        super().__init__()
        layers = []
        for i, c in enumerate(channels):
            if i < len(prev_channels):
                same = prev_channels[i] == c
                layers.append(
                    nn.Identity() if same else conv_bn(prev_channels[i], c, 3, act=nn.ReLU)
                )
            else:
                layers.append(conv_bn(prev_channels[-1], c, 3, 2, act=nn.ReLU))
        self.layers = nn.ModuleList(layers)
        self.num_prev = len(prev_channels)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [
            layer(xs[i] if i < self.num_prev else xs[-1]) for i, layer in enumerate(self.layers)
        ]


class HigherHRNet(nn.Module):
    def __init__(self, config: HigherHRNetConfig):
        super().__init__()
        self.config = config
        self.stem = nn.Sequential(
            conv_bn(3, STEM_WIDTH, 3, 2, act=nn.ReLU),
            conv_bn(STEM_WIDTH, STEM_WIDTH, 3, 2, act=nn.ReLU),
        )
        planes = config.stem_planes
        layer1 = [Bottleneck(STEM_WIDTH, planes)]
        layer1 += [Bottleneck(planes * 4, planes) for _ in range(config.stem_blocks - 1)]
        self.layer1 = nn.Sequential(*layer1)

        channels = [planes * Bottleneck.expansion]
        transitions, stages = [], []
        for s, stage in enumerate(config.stages):
            stage_channels = [w * HRNET_BLOCK_EXPANSION[stage.block] for w in stage.widths]
            transitions.append(Transition(channels, stage_channels))
            last_stage = s == len(config.stages) - 1
            modules, channels = self._stage(stage, stage_channels, last_stage)
            stages.append(modules)
        self.transitions = nn.ModuleList(transitions)
        self.stages = nn.ModuleList(stages)

        head = config.head
        quarter_ch, half_ch = config.output_channels
        pad = head.final_conv_kernel // 2
        self.final_quarter = nn.Conv2d(channels[0], quarter_ch, head.final_conv_kernel, padding=pad)
        deconv_in = channels[0] + (quarter_ch if head.cat_output else 0)
        dc = head.deconv_channels
        self.deconv = nn.Sequential(
            deconv(deconv_in, dc, head.deconv_kernel),
            nn.BatchNorm2d(dc),
            nn.ReLU(inplace=True),
            *[BasicBlock(dc, dc) for _ in range(head.num_basic_blocks)],
        )
        self.final_half = nn.Conv2d(dc, half_ch, head.final_conv_kernel, padding=pad)
        init_output_conv(self.final_quarter)
        init_output_conv(self.final_half)

    @staticmethod
    def _stage(stage: HRNetStageConfig, channels: list[int], last: bool):
        modules = []
        for m, blocks in enumerate(stage.blocks):
            only_top = last and m == stage.num_modules - 1
            module = HRModule(
                channels, blocks, stage.widths, stage.block, 1 if only_top else len(channels)
            )
            modules.append(module)
            channels = module.out_channels
        return nn.Sequential(*modules), channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.layer1(self.stem(x))
        xs = [x]
        for transition, stage in zip(self.transitions, self.stages, strict=True):
            xs = stage(transition(xs))
        features = xs[0]
        quarter = self.final_quarter(features)
        if self.config.head.cat_output:
            features = torch.cat([features, quarter], dim=1)
        half = self.final_half(self.deconv(features))
        return [quarter, half]
