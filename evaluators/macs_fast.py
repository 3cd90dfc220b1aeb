"""MACs straight from an architecture config, without building or tracing a network.

A search evaluates thousands of candidates; an fvcore trace at full resolution costs a second or
more, this walk of the config well under a millisecond. It applies fvcore's own rules (see
docs/macs.md) to the layers that ``models/`` builds, so it must agree with ``count_macs`` exactly:
``tests/test_macs.py`` checks that on hundreds of random configs of both families.
"""

from __future__ import annotations

from dataclasses import dataclass

from evaluators.macs import PAPER_DECONV_EXTRA
from models.higherhrnet import STEM_WIDTH as HRNET_STEM_WIDTH
from models.layers import deconv_padding, inverted_residual_hidden
from models.litepose import DECONV_KERNEL, fuse_levels
from models.litepose import STEM_WIDTH as LITEPOSE_STEM_WIDTH
from search_space.config import (
    HRNET_BLOCK_EXPANSION,
    STAGE_FEATURE_STRIDES,
    ArchConfig,
    HigherHRNetConfig,
    InvertedResidualConfig,
    LitePoseConfig,
)

Size = tuple[int, int]


@dataclass(frozen=True)
class FastMacs:
    macs: int
    macs_paper: int


class _Tally:
    """Accumulates fvcore-convention counts; every method returns the output spatial size."""

    def __init__(self) -> None:
        self.macs = 0
        self.deconv_macs = 0

    def conv(
        self,
        in_ch: int,
        out_ch: int,
        k: int,
        size: Size,
        stride: int = 1,
        groups: int = 1,
        bn: bool = True,
        padding: int | None = None,
    ) -> Size:
        pad = k // 2 if padding is None else padding
        out = tuple((s + 2 * pad - k) // stride + 1 for s in size)
        pixels = out[0] * out[1]
        self.macs += out_ch * (in_ch // groups) * k * k * pixels
        if bn:
            self.macs += 2 * out_ch * pixels
        return out

    def deconv(self, in_ch: int, out_ch: int, k: int, size: Size) -> Size:
        pad, out_pad = deconv_padding(k)
        macs = in_ch * out_ch * k * k * size[0] * size[1]  # per input pixel, as fvcore
        self.macs += macs
        self.deconv_macs += macs
        return tuple((s - 1) * 2 - 2 * pad + k + out_pad for s in size)

    def bn(self, ch: int, size: Size) -> None:
        self.macs += 2 * ch * size[0] * size[1]

    def upsample(self, ch: int, size: Size, factor: int) -> Size:
        out = (size[0] * factor, size[1] * factor)
        self.macs += ch * out[0] * out[1]
        return out

    def result(self) -> FastMacs:
        return FastMacs(self.macs, self.macs + PAPER_DECONV_EXTRA * self.deconv_macs)


def fast_macs(config: ArchConfig, input_size: int | Size | None = None) -> FastMacs:
    """True and paper-convention MACs of ``config`` at ``input_size`` (default: its own)."""
    size = input_size if input_size is not None else config.input_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    tally = _Tally()
    if isinstance(config, HigherHRNetConfig):
        _higherhrnet(tally, config, size)
    elif isinstance(config, LitePoseConfig):
        _litepose(tally, config, size)
    else:
        raise TypeError(f"fast_macs needs an architecture config, got {type(config).__name__}")
    return tally.result()


# --------------------------------------------------------------------------------------------


def _basic_block(t: _Tally, in_ch: int, planes: int, size: Size) -> Size:
    out = t.conv(in_ch, planes, 3, size)
    t.conv(planes, planes, 3, out)
    if in_ch != planes:
        t.conv(in_ch, planes, 1, size)
    return out


def _bottleneck(t: _Tally, in_ch: int, planes: int, size: Size) -> Size:
    t.conv(in_ch, planes, 1, size)
    t.conv(planes, planes, 3, size)
    t.conv(planes, planes * 4, 1, size)
    if in_ch != planes * 4:
        t.conv(in_ch, planes * 4, 1, size)
    return size


_HRNET_BLOCK_COUNTERS = {"basic": _basic_block, "bottleneck": _bottleneck}


def _higherhrnet(t: _Tally, config: HigherHRNetConfig, size: Size) -> None:
    size = t.conv(3, HRNET_STEM_WIDTH, 3, size, stride=2)
    size = t.conv(HRNET_STEM_WIDTH, HRNET_STEM_WIDTH, 3, size, stride=2)
    planes = config.stem_planes
    in_ch = HRNET_STEM_WIDTH
    for _ in range(config.stem_blocks):
        _bottleneck(t, in_ch, planes, size)
        in_ch = planes * 4

    channels, sizes = [in_ch], [size]
    for s, stage in enumerate(config.stages):
        expansion = HRNET_BLOCK_EXPANSION[stage.block]
        stage_ch = [w * expansion for w in stage.widths]
        # Transition: adapt existing branches, start the new one from the lowest.
        new_sizes = []
        for i, c in enumerate(stage_ch):
            if i < len(channels):
                if channels[i] != c:
                    t.conv(channels[i], c, 3, sizes[i])
                new_sizes.append(sizes[i])
            else:
                new_sizes.append(t.conv(channels[-1], c, 3, sizes[-1], stride=2))
        sizes = new_sizes
        branch_in = list(stage_ch)
        last_stage = s == len(config.stages) - 1
        for m, blocks in enumerate(stage.blocks):
            for b, (n, width) in enumerate(zip(blocks, stage.widths, strict=True)):
                if n == 0:
                    t.conv(branch_in[b], stage_ch[b], 3, sizes[b])
                    continue
                counter = _HRNET_BLOCK_COUNTERS[stage.block]
                counter(t, branch_in[b], width, sizes[b])
                for _ in range(n - 1):
                    counter(t, stage_ch[b], width, sizes[b])
            branch_in = list(stage_ch)
            num_outputs = 1 if last_stage and m == stage.num_modules - 1 else len(stage_ch)
            _fuse(t, stage_ch, sizes, num_outputs)
        channels = stage_ch

    head = config.head
    quarter_ch, half_ch = config.output_channels
    fk = head.final_conv_kernel
    t.conv(channels[0], quarter_ch, fk, sizes[0], bn=False)
    deconv_in = channels[0] + (quarter_ch if head.cat_output else 0)
    dc = head.deconv_channels
    half = t.deconv(deconv_in, dc, head.deconv_kernel, sizes[0])
    t.bn(dc, half)
    for _ in range(head.num_basic_blocks):
        _basic_block(t, dc, dc, half)
    t.conv(dc, half_ch, fk, half, bn=False)


def _fuse(t: _Tally, channels: list[int], sizes: list[Size], num_outputs: int) -> None:
    for i in range(num_outputs):
        for j in range(len(channels)):
            if j != i:
                _fuse_layer(t, channels[j], channels[i], sizes[j], i - j)


def _fuse_layer(t: _Tally, in_ch: int, out_ch: int, size: Size, levels: int) -> None:
    """``models.layers.fuse_layer``: 1x1 conv and upsampling (levels < 0) or a stride-2 chain."""
    if levels < 0:
        t.conv(in_ch, out_ch, 1, size)
        t.upsample(out_ch, size, 2 ** (-levels))
        return
    for _ in range(levels - 1):
        size = t.conv(in_ch, in_ch, 3, size, stride=2)
    t.conv(in_ch, out_ch, 3, size, stride=2)


def _litepose(t: _Tally, config: LitePoseConfig, size: Size) -> None:
    size = t.conv(3, LITEPOSE_STEM_WIDTH, 3, size, stride=2)
    size = t.conv(LITEPOSE_STEM_WIDTH, LITEPOSE_STEM_WIDTH, 3, size, groups=LITEPOSE_STEM_WIDTH)
    size = t.conv(LITEPOSE_STEM_WIDTH, config.stem_channels, 1, size)
    widths, sizes = [config.stem_channels], [size]
    for s, stage in enumerate(config.stages):
        in_ch = widths[-1]
        for b, block in enumerate(stage.blocks):
            size = _inverted_residual(
                t, in_ch, stage.channels, block, size, stage.stride if b == 0 else 1
            )
            in_ch = stage.channels
        widths.append(stage.channels)
        sizes.append(size)
        _branches_and_fusion(t, config, s, sizes)

    head = config.head
    in_ch, y_size = widths[4], sizes[4]
    out_ch = config.output_channels
    for i, width in enumerate(head.channels):
        new_size = t.deconv(in_ch, width, DECONV_KERNEL, y_size)
        if head.kind == "fusion":
            t.deconv(widths[3 - i], width, DECONV_KERNEL, sizes[3 - i])
        t.bn(width, new_size)
        in_ch, y_size = width, new_size
        if i > 0:
            _separable(t, width, out_ch[i - 1], head.final_kernel, y_size)
            _separable(t, widths[2 - i], out_ch[i - 1], head.final_kernel, sizes[2 - i])


def _inverted_residual(
    t: _Tally, in_ch: int, out_ch: int, block: InvertedResidualConfig, size: Size, stride: int
) -> Size:
    hidden = inverted_residual_hidden(in_ch, block.expansion)
    t.conv(in_ch, hidden, 1, size)
    size = t.conv(hidden, hidden, block.kernel, size, stride=stride, groups=hidden)
    t.conv(hidden, out_ch, 1, size)
    return size


def _branches_and_fusion(t: _Tally, config: LitePoseConfig, s: int, sizes: list[Size]) -> None:
    """Stage ``s``'s branches and fusion; ``sizes[k]`` is the stem's (k = 0) or stage k's map."""
    paths = config.parallel_paths(s)
    size_at = {stride: sizes[STAGE_FEATURE_STRIDES.index(stride) + 1] for stride, _ in paths}
    size_at[STAGE_FEATURE_STRIDES[s]] = sizes[-1]
    for branch in config.stages[s].branches:
        ch = config.branch_channels(branch.feature_stride)
        for block in branch.blocks:
            _inverted_residual(t, ch, ch, block, size_at[branch.feature_stride], 1)
    for source, source_ch, target, target_ch in config.fusion_links(s):
        _fuse_layer(t, source_ch, target_ch, size_at[source], fuse_levels(source, target))


def _separable(t: _Tally, in_ch: int, out_ch: int, k: int, size: Size) -> None:
    t.conv(in_ch, in_ch, k, size, groups=in_ch)
    t.conv(in_ch, out_ch, 1, size, bn=False)
