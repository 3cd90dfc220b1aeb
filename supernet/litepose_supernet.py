"""A weight-sharing LitePose supernet: every LitePose config up to its largest member is a subnet.

The supernet is built from the largest config (widths, depths, branches, head widths, expansion)
and a set of kernel sizes. ``set_active(config)`` selects a subnet: widths take the first
channels, each block its kernel (centre crop + learned transform) and expansion, each stage and
each branch its first ``depth`` blocks, the head its widths. A branch the subnet drops (depth 0,
absent from its config) is skipped with every fusion layer that touches its resolution; fusion
layers between kept paths take the first channels of both. ``export(config)`` returns the
standalone network that ``models.build_model(config)`` builds, carrying the subnet's weights, so
that it computes exactly what the supernet computes with that config active.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models import build_model
from search_space.config import STAGE_FEATURE_STRIDES, InvertedResidualConfig, LitePoseConfig
from search_space.errors import ArchConfigError
from search_space.plan import LITEPOSE_STEM_WIDTH as STEM_WIDTH
from search_space.plan import branch_key, fuse_key, fuse_levels, inverted_residual_hidden
from supernet.elastic import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticDepthwiseConv2d,
)

DEFAULT_KERNELS = (3, 5, 7)


def run_branches_and_fuse(config, stage_index, feats, branches, fuse) -> None:
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


class _ConvBN(nn.Module):
    """Elastic conv + elastic BN (+ activation), mirroring ``models.layers.conv_bn``."""

    def __init__(self, conv: nn.Module, channels: int, act: type[nn.Module] | None):
        super().__init__()
        self.conv = conv
        self.bn = ElasticBatchNorm2d(channels)
        self.act = act(inplace=True) if act is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class ElasticInvertedResidual(nn.Module):
    def __init__(self, max_in: int, max_out: int, stride: int, kernels, max_expansion: int):
        super().__init__()
        max_hidden = inverted_residual_hidden(max_in, max_expansion)
        self.expand = _ConvBN(ElasticConv2d(max_in, max_hidden, 1), max_hidden, nn.ReLU6)
        self.depthwise = _ConvBN(
            ElasticDepthwiseConv2d(max_hidden, kernels, stride), max_hidden, nn.ReLU6
        )
        self.project = _ConvBN(ElasticConv2d(max_hidden, max_out, 1), max_out, None)
        self.stride = stride
        self.expansion = max_expansion

    def set_active(self, out_ch: int, kernel: int, expansion: int, in_ch: int) -> None:
        self.expand.conv.active_out = inverted_residual_hidden(in_ch, expansion)
        self.depthwise.conv.active_kernel = kernel
        self.project.conv.active_out = out_ch

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        if self.stride == 1 and out.shape[1] == x.shape[1]:
            return out + x
        return out


class _ElasticDepth(nn.ModuleList):
    """Blocks of which the first ``active_depth`` run (a branch's elastic depth)."""

    def __init__(self, blocks):
        super().__init__(blocks)
        self.active_depth = len(self)

    def forward(self, x: Tensor) -> Tensor:
        for block in self[: self.active_depth]:
            x = block(x)
        return x


class _ElasticFuse(nn.Module):
    """Mirror of ``models.layers.fuse_layer`` with elastic input and output widths."""

    def __init__(self, max_in: int, max_out: int, levels: int):
        super().__init__()
        if levels < 0:
            steps = [_ConvBN(ElasticConv2d(max_in, max_out, 1), max_out, None)]
            self.upsample = nn.Upsample(scale_factor=2 ** (-levels), mode="nearest")
        else:
            steps = [
                _ConvBN(ElasticConv2d(max_in, max_in, 3, 2), max_in, nn.ReLU)
                for _ in range(levels - 1)
            ]
            steps.append(_ConvBN(ElasticConv2d(max_in, max_out, 3, 2), max_out, None))
            self.upsample = nn.Identity()
        self.steps = nn.ModuleList(steps)

    def set_active(self, in_ch: int, out_ch: int) -> None:
        for step in self.steps[:-1]:
            step.conv.active_out = in_ch
        self.steps[-1].conv.active_out = out_ch

    def forward(self, x: Tensor) -> Tensor:
        for step in self.steps:
            x = step(x)
        return self.upsample(x)


class _ElasticSeparable(nn.Module):
    """Mirror of ``models.layers.SeparableConv`` with elastic input width, fixed output."""

    def __init__(self, max_in: int, out_ch: int, kernel: int):
        super().__init__()
        self.depthwise = ElasticDepthwiseConv2d(max_in, (kernel,))
        self.bn = ElasticBatchNorm2d(max_in)
        self.relu = nn.ReLU(inplace=True)
        self.pointwise = ElasticConv2d(max_in, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.relu(self.bn(self.depthwise(x))))


class LitePoseSupernet(nn.Module):
    def __init__(self, largest: LitePoseConfig, kernel_sizes: tuple[int, ...] = DEFAULT_KERNELS):
        super().__init__()
        if largest.head.kind != "fusion":
            raise ArchConfigError(
                "head.kind", largest.head.kind, "the supernet needs a fusion head"
            )
        self.largest = largest
        paths = [s.blocks for s in largest.stages] + [
            b.blocks for s in largest.stages for b in s.branches
        ]
        self.kernel_sizes = tuple(
            sorted(set(kernel_sizes) | {b.kernel for blocks in paths for b in blocks})
        )
        self.stem = nn.Sequential(
            nn.Conv2d(3, STEM_WIDTH, 3, 2, 1, bias=False),
            nn.BatchNorm2d(STEM_WIDTH),
            nn.ReLU6(inplace=True),
            nn.Conv2d(STEM_WIDTH, STEM_WIDTH, 3, 1, 1, groups=STEM_WIDTH, bias=False),
            nn.BatchNorm2d(STEM_WIDTH),
            nn.ReLU6(inplace=True),
        )
        self.stem_project = _ConvBN(
            ElasticConv2d(STEM_WIDTH, largest.stem_channels, 1), largest.stem_channels, None
        )
        widths = [largest.stem_channels]
        self.stages = nn.ModuleList()
        for stage in largest.stages:
            max_t = max(b.expansion for b in stage.blocks)
            blocks = nn.ModuleList(
                ElasticInvertedResidual(
                    widths[-1] if i == 0 else stage.channels,
                    stage.channels,
                    stage.stride if i == 0 else 1,
                    self.kernel_sizes,
                    max_t,
                )
                for i in range(stage.depth)
            )
            self.stages.append(blocks)
            widths.append(stage.channels)
        if largest.has_branches:  # absent otherwise, as in the standalone network
            self.branches, self.fuse = self._branch_layers(largest)
        head = largest.head
        self.deconv_refined = nn.ModuleList()
        self.deconv_skip = nn.ModuleList()
        self.deconv_bn = nn.ModuleList()
        in_ch = widths[4]
        for i, out_ch in enumerate(head.channels):
            self.deconv_refined.append(ElasticConvTranspose2d(in_ch, out_ch))
            self.deconv_skip.append(ElasticConvTranspose2d(widths[3 - i], out_ch))
            self.deconv_bn.append(ElasticBatchNorm2d(out_ch))
            in_ch = out_ch
        quarter, half = largest.output_channels
        fk = head.final_kernel
        self.final_refined = nn.ModuleList(
            [
                _ElasticSeparable(head.channels[1], quarter, fk),
                _ElasticSeparable(head.channels[2], half, fk),
            ]
        )
        self.final_raw = nn.ModuleList(
            [_ElasticSeparable(widths[1], quarter, fk), _ElasticSeparable(widths[0], half, fk)]
        )
        self.relu = nn.ReLU(inplace=True)
        self.active: LitePoseConfig = largest
        self.set_active(largest)

    def _branch_layers(self, largest: LitePoseConfig) -> tuple[nn.ModuleDict, nn.ModuleDict]:
        branches, fuse = nn.ModuleDict(), nn.ModuleDict()
        for s, stage in enumerate(largest.stages):
            for branch in stage.branches:
                ch = largest.branch_channels(branch.feature_stride)
                max_t = max(b.expansion for b in branch.blocks)
                branches[branch_key(s, branch.feature_stride)] = _ElasticDepth(
                    ElasticInvertedResidual(ch, ch, 1, self.kernel_sizes, max_t)
                    for _ in range(branch.depth)
                )
            for source, source_ch, target, target_ch in largest.fusion_links(s):
                fuse[fuse_key(s, source, target)] = _ElasticFuse(
                    source_ch, target_ch, fuse_levels(source, target)
                )
        return branches, fuse

    # ------------------------------------------------------------------ membership
    def check_member(self, config: LitePoseConfig) -> None:
        """Raise an error naming the field if ``config`` is not a subnet of this supernet."""
        big = self.largest
        if not isinstance(config, LitePoseConfig):
            raise ArchConfigError("family", getattr(config, "family", None), "must be litepose")
        for name in ("num_joints", "tag_dim"):
            if getattr(config, name) != getattr(big, name):
                raise ArchConfigError(
                    name, getattr(config, name), f"must equal the supernet's {getattr(big, name)}"
                )
        if config.head.kind != "fusion" or config.head.final_kernel != big.head.final_kernel:
            raise ArchConfigError(
                "head",
                config.head,
                f"must be a fusion head with final_kernel {big.head.final_kernel}",
            )
        if config.stem_channels > big.stem_channels:
            raise ArchConfigError(
                "stem_channels",
                config.stem_channels,
                f"must be <= the supernet's {big.stem_channels}",
            )
        for i, (w, m) in enumerate(zip(config.head.channels, big.head.channels, strict=True)):
            if w > m:
                raise ArchConfigError(f"head.channels[{i}]", w, f"must be <= {m}")
        for s, (stage, top) in enumerate(zip(config.stages, big.stages, strict=True)):
            path = f"stages[{s}]"
            if stage.stride != top.stride:
                raise ArchConfigError(f"{path}.stride", stage.stride, f"must be {top.stride}")
            if stage.channels > top.channels:
                raise ArchConfigError(
                    f"{path}.channels", stage.channels, f"must be <= {top.channels}"
                )
            self._check_blocks(path, stage.blocks, top.blocks)
            for i, branch in enumerate(stage.branches):
                largest_branch = top.branch(branch.feature_stride)
                if largest_branch is None:
                    raise ArchConfigError(
                        f"{path}.branches[{i}].feature_stride",
                        branch.feature_stride,
                        "the supernet has no such branch; its stage has branches at "
                        f"{[b.feature_stride for b in top.branches]}",
                    )
                self._check_blocks(f"{path}.branches[{i}]", branch.blocks, largest_branch.blocks)

    def _check_blocks(
        self,
        path: str,
        blocks: tuple[InvertedResidualConfig, ...],
        largest: tuple[InvertedResidualConfig, ...],
    ) -> None:
        if len(blocks) > len(largest):
            raise ArchConfigError(
                f"{path}.blocks", len(blocks), f"depth must be <= the supernet's {len(largest)}"
            )
        max_t = max(b.expansion for b in largest)
        for b, block in enumerate(blocks):
            if block.kernel not in self.kernel_sizes:
                raise ArchConfigError(
                    f"{path}.blocks[{b}].kernel",
                    block.kernel,
                    f"must be one of the supernet's {self.kernel_sizes}",
                )
            if block.expansion > max_t:
                raise ArchConfigError(
                    f"{path}.blocks[{b}].expansion", block.expansion, f"must be <= {max_t}"
                )

    def set_active(self, config: LitePoseConfig) -> None:
        self.check_member(config)
        self.active = config
        self.stem_project.conv.active_out = config.stem_channels
        in_ch = config.stem_channels
        for stage, blocks in zip(config.stages, self.stages, strict=True):
            for block_cfg, block in zip(stage.blocks, blocks, strict=False):
                block.set_active(stage.channels, block_cfg.kernel, block_cfg.expansion, in_ch)
                in_ch = stage.channels
        for s, stage in enumerate(config.stages):
            for branch in stage.branches:
                ch = config.branch_channels(branch.feature_stride)
                blocks = self.branches[branch_key(s, branch.feature_stride)]
                blocks.active_depth = branch.depth
                for block_cfg, block in zip(branch.blocks, blocks, strict=False):
                    block.set_active(ch, block_cfg.kernel, block_cfg.expansion, ch)
            for source, source_ch, target, target_ch in config.fusion_links(s):
                self.fuse[fuse_key(s, source, target)].set_active(source_ch, target_ch)
        for i, width in enumerate(config.head.channels):
            self.deconv_refined[i].active_out = width
            self.deconv_skip[i].active_out = width

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor) -> list[Tensor]:
        feats = [self.stem_project(self.stem(x))]
        for s, (stage, blocks) in enumerate(zip(self.active.stages, self.stages, strict=True)):
            y = feats[-1]
            for block in blocks[: stage.depth]:
                y = block(y)
            feats.append(y)
            if stage.branches:
                run_branches_and_fuse(self.active, s, feats, self.branches, self.fuse)
        y = feats[4]
        outputs = []
        for i in range(3):
            up = self.deconv_refined[i](y) + self.deconv_skip[i](feats[3 - i])
            y = self.relu(self.deconv_bn[i](up))
            if i > 0:
                outputs.append(self.final_refined[i - 1](y) + self.final_raw[i - 1](feats[2 - i]))
        return outputs

    # ------------------------------------------------------------------ export
    @torch.no_grad()
    def export(self, config: LitePoseConfig | None = None) -> nn.Module:
        """The standalone network of ``config`` (default: the active one) with its weights."""
        config = config or self.active
        self.check_member(config)
        model = build_model(config)
        _copy_conv_bn(self.stem[0], self.stem[1], model.stem[0])
        _copy_conv_bn(self.stem[3], self.stem[4], model.stem[1])
        _copy_elastic(self.stem_project, model.stem[2], STEM_WIDTH)
        for blocks, static in zip(self.stages, model.stages, strict=True):
            for block, target in zip(blocks, static, strict=False):
                _copy_block(block, target)
        if config.has_branches:
            for key, static in model.branches.items():
                for block, target in zip(self.branches[key], static, strict=False):
                    _copy_block(block, target)
            for key, static in model.fuse.items():
                # fuse_layer: (conv, BN, upsample) or a chain of (conv, BN[, ReLU]) steps
                steps = [static] if isinstance(static[0], nn.Conv2d) else list(static)
                for step, target in zip(self.fuse[key].steps, steps, strict=True):
                    _copy_elastic(step, target, target[0].in_channels)
        widths = [config.stem_channels] + [s.channels for s in config.stages]
        in_ch = widths[4]
        for i, width in enumerate(config.head.channels):
            ref = self.deconv_refined[i].weight[:in_ch, :width]
            model.deconv_refined[i].weight.copy_(ref)
            skip = self.deconv_skip[i].weight[: widths[3 - i], :width]
            model.deconv_skip[i].weight.copy_(skip)
            _copy_bn(self.deconv_bn[i], model.deconv_bn_relu[i][0], width)
            in_ch = width
        sources = [
            (self.final_refined[0], config.head.channels[1]),
            (self.final_refined[1], config.head.channels[2]),
            (self.final_raw[0], widths[1]),
            (self.final_raw[1], widths[0]),
        ]
        targets = [
            model.final_refined[0],
            model.final_refined[1],
            model.final_raw[0],
            model.final_raw[1],
        ]
        for (source, channels), target in zip(sources, targets, strict=True):
            target[0].weight.copy_(source.depthwise.active_weight(channels))
            _copy_bn(source.bn, target[1], channels)
            target[3].weight.copy_(source.pointwise.weight[:, :channels])
        return model.train(self.training)


def _copy_bn(source: nn.BatchNorm2d, target: nn.BatchNorm2d, channels: int) -> None:
    target.weight.copy_(source.weight[:channels])
    target.bias.copy_(source.bias[:channels])
    target.running_mean.copy_(source.running_mean[:channels])
    target.running_var.copy_(source.running_var[:channels])
    target.num_batches_tracked.copy_(source.num_batches_tracked)


def _copy_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, target: nn.Sequential) -> None:
    target[0].weight.copy_(conv.weight)
    _copy_bn(bn, target[1], bn.num_features)


def _copy_elastic(
    source: _ConvBN, target: nn.Sequential, in_ch: int, out_ch: int | None = None
) -> None:
    out_ch = target[0].out_channels if out_ch is None else out_ch
    target[0].weight.copy_(source.conv.weight[:out_ch, :in_ch])
    _copy_bn(source.bn, target[1], out_ch)


def _copy_block(source: ElasticInvertedResidual, target: nn.Module) -> None:
    hidden = target.expand[0].out_channels
    _copy_elastic(source.expand, target.expand, target.expand[0].in_channels, out_ch=hidden)
    _copy_depthwise(source.depthwise, target.depthwise, hidden, target.depthwise[0].kernel_size[0])
    _copy_elastic(source.project, target.project, hidden, out_ch=target.project[0].out_channels)


def _copy_depthwise(source: _ConvBN, target: nn.Sequential, channels: int, kernel: int) -> None:
    conv = source.conv
    previous = conv.active_kernel
    conv.active_kernel = kernel
    try:
        target[0].weight.copy_(conv.active_weight(channels))
    finally:
        conv.active_kernel = previous
    _copy_bn(source.bn, target[1], channels)
