"""The layer plan: the one description of the network an architecture config stands for.

``layer_plan(config)`` turns a config (either family) into an ordered tuple of :class:`Layer`
records, one per layer, derived from the config alone (pure data, no torch). Every tool that needs
the structure reads it, and none walks the layers on its own:

* the builder (``posenets.build_model``) instantiates one module per record at the record's name and
  runs the records in order, each on the outputs of its ``inputs``;
* the fast MACs counter (``evaluators.macs_fast``) sums a closed-form count over the records;
* the supernet (``supernet.LitePoseSupernet``) is the plan of its largest member built from elastic
  ops; ``set_active`` and ``export`` match layers by name;
* a latency table is keyed by a record's ``(op, in_channels, out_channels, kernel, stride,
  groups, in_size)`` (``Layer.key``);
* memory estimates add up ``out_channels x out_size`` over the records.

Records are listed in execution order: every record comes after the records it reads. ``"input"``
names the image. ``name`` is the record's module path in the built network, so its state-dict keys
follow from it (``name + ".weight"``); two exceptions, both marked by an ``@``: an ``add`` or a
``concat`` has no module (its name is the enclosing module's path, then ``@`` and a label), and a
parameter-free module applied to several tensors (HRNet's one ReLU per module) gives one record per
use, named ``module path @ index``. ``Layer.module`` is the module path (``None`` for add/concat).

Ops:

========== =====================================================================================
conv       dense or grouped convolution (``groups`` > 1 but not depthwise never occurs today)
dwconv     depthwise convolution (``groups == in_channels == out_channels``)
deconv     transposed convolution (``stride`` 2, ``padding`` / ``output_padding`` double the size)
bn         batch norm
relu       ReLU; ``relu6``: ReLU6
upsample   nearest upsampling by ``stride`` (the scale factor)
maxpool    max pooling, ``kernel`` x ``kernel`` at ``stride``, ``padding`` (ResNet's stem)
add        element-wise sum of all ``inputs``, summed left to right
concat     channel concatenation of ``inputs``
========== =====================================================================================

``output`` marks the records that are the network's outputs (0: the 1/4 output, 1: the 1/2
output; a top-down network has one, the heatmaps, ``search_space.topdown_plan``); ``zero_init``
the output convs that start near zero (``posenets.layers.init_output_conv``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from search_space.channels import make_divisible
from search_space.config import (
    HRNET_BLOCK_EXPANSION,
    STAGE_FEATURE_STRIDES,
    ArchConfig,
    HigherHRNetConfig,
    InvertedResidualConfig,
    LitePoseConfig,
)
from search_space.topdown import TopDownConfig

Size = tuple[int, int]
INPUT = "input"
OPS = ("conv", "dwconv", "deconv", "bn", "relu", "relu6", "upsample", "maxpool", "add", "concat")
PARAMETER_FREE = ("relu", "relu6", "upsample", "maxpool", "add", "concat")

LITEPOSE_STEM_WIDTH = 32
HRNET_STEM_WIDTH = 64
LITEPOSE_DECONV_KERNEL = 4


@dataclass(frozen=True)
class Layer:
    """One layer of a network: what it computes, on what, at which size (see the module doc)."""

    name: str
    op: str
    in_channels: int
    out_channels: int
    in_size: Size
    out_size: Size
    inputs: tuple[str, ...]
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    padding: int = 0
    output_padding: int = 0
    bias: bool = False
    output: int | None = None
    zero_init: bool = False

    @property
    def module(self) -> str | None:
        """Path of the module this record runs in the built network (None: add and concat)."""
        if self.op in ("add", "concat"):
            return None
        return self.name.split("@")[0]

    @property
    def key(self) -> tuple:
        """What a latency table is keyed by: op, widths, kernel, stride, groups, input size."""
        return (
            self.op, self.in_channels, self.out_channels, self.kernel, self.stride, self.groups,
            self.in_size,
        )  # fmt: skip


# ---------------------------------------------------------------------------------- helpers
def inverted_residual_hidden(in_ch: int, expansion: int) -> int:
    """Hidden width of an inverted residual block (the LitePose release's rounding)."""
    return make_divisible(round(in_ch * expansion), 8)


def deconv_padding(kernel: int) -> tuple[int, int]:
    """(padding, output_padding) that make a stride-2 transposed conv exactly double the size."""
    return {4: (1, 0), 3: (1, 1), 2: (0, 0)}[kernel]


def branch_key(stage_index: int, feature_stride: int) -> str:
    """Name of LitePose stage ``stage_index``'s (0-based) branch at 1/``feature_stride``."""
    return f"stage{stage_index + 1}_at{feature_stride}"


def fuse_key(stage_index: int, source_stride: int, target_stride: int) -> str:
    """Name of the fusion layer of LitePose stage ``stage_index`` from one path to another."""
    return f"stage{stage_index + 1}_{source_stride}to{target_stride}"


def fuse_levels(source_stride: int, target_stride: int) -> int:
    """Halvings of resolution from source to target (negative: the target is finer)."""
    return round(math.log2(target_stride / source_stride))


def _square(size: int | Size) -> Size:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class _Planner:
    """Appends records; each method returns the name of the record it added."""

    def __init__(self, size: Size):
        self.layers: list[Layer] = []
        self._shape: dict[str, tuple[int, Size]] = {INPUT: (3, size)}

    def channels(self, name: str) -> int:
        return self._shape[name][0]

    def _add(
        self, op: str, name: str, inputs: tuple[str, ...], out_ch: int, out: Size, **kw
    ) -> str:
        in_ch, in_size = self._shape[inputs[0]]
        if op == "concat":
            in_ch = sum(self.channels(i) for i in inputs)
        layer = Layer(name, op, in_ch, out_ch, in_size, out, inputs, **kw)
        self.layers.append(layer)
        self._shape[name] = (out_ch, out)
        return name

    def conv(
        self, name: str, src: str, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
        bias: bool = False, **kw,
    ) -> str:  # fmt: skip
        in_ch, size = self._shape[src]
        pad = kernel // 2
        out = tuple((s + 2 * pad - kernel) // stride + 1 for s in size)
        depthwise = groups > 1 and groups == in_ch == out_ch
        return self._add(
            "dwconv" if depthwise else "conv", name, (src,), out_ch, out, kernel=kernel,
            stride=stride, groups=groups, padding=pad, bias=bias, **kw,
        )  # fmt: skip

    def deconv(self, name: str, src: str, out_ch: int, kernel: int) -> str:
        size = self._shape[src][1]
        pad, out_pad = deconv_padding(kernel)
        out = tuple((s - 1) * 2 - 2 * pad + kernel + out_pad for s in size)
        return self._add(
            "deconv", name, (src,), out_ch, out, kernel=kernel, stride=2, padding=pad,
            output_padding=out_pad,
        )  # fmt: skip

    def same(self, op: str, name: str, src: str) -> str:
        """A layer that keeps channels and size (bn, relu, relu6)."""
        ch, size = self._shape[src]
        return self._add(op, name, (src,), ch, size)

    def upsample(self, name: str, src: str, factor: int) -> str:
        ch, size = self._shape[src]
        return self._add("upsample", name, (src,), ch, (size[0] * factor, size[1] * factor),
                         stride=factor)  # fmt: skip

    def maxpool(self, name: str, src: str, kernel: int, stride: int) -> str:
        ch, size = self._shape[src]
        pad = kernel // 2
        out = tuple((s + 2 * pad - kernel) // stride + 1 for s in size)
        return self._add("maxpool", name, (src,), ch, out, kernel=kernel, stride=stride,
                         padding=pad)  # fmt: skip

    def add(self, name: str, *srcs: str, output: int | None = None) -> str:
        ch, size = self._shape[srcs[0]]
        return self._add("add", name, srcs, ch, size, output=output)

    def concat(self, name: str, *srcs: str) -> str:
        size = self._shape[srcs[0]][1]
        return self._add("concat", name, srcs, sum(self.channels(s) for s in srcs), size)

    def conv_bn(
        self, prefix: str, src: str, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
        act: str | None = None,
    ) -> str:  # fmt: skip
        """kxk conv (padding k//2, no bias) ``prefix.0``, BN ``.1``, activation ``.2``."""
        y = self.conv(f"{prefix}.0", src, out_ch, kernel, stride, groups)
        y = self.same("bn", f"{prefix}.1", y)
        return self.same(act, f"{prefix}.2", y) if act else y

    def fuse_layer(self, prefix: str, src: str, out_ch: int, levels: int) -> str:
        """HRNet's fusion step, shared by both families: up by 1x1 conv, BN and nearest
        upsampling (levels < 0), or down by a chain of 3x3 stride-2 conv-BN(-ReLU) steps."""
        if levels < 0:
            y = self.conv(f"{prefix}.0", src, out_ch, 1)
            y = self.same("bn", f"{prefix}.1", y)
            return self.upsample(f"{prefix}.2", y, 2 ** (-levels))
        in_ch, y = self.channels(src), src
        for step in range(levels - 1):
            y = self.conv_bn(f"{prefix}.{step}", y, in_ch, 3, 2, act="relu")
        return self.conv_bn(f"{prefix}.{levels - 1}", y, out_ch, 3, 2)


def layer_plan(config: ArchConfig, input_size: int | Size | None = None) -> tuple[Layer, ...]:
    """The ordered layer records of ``config``'s network at ``input_size`` (default: its own)."""
    size = _square(config.input_size if input_size is None else input_size)
    planner = _Planner(size)
    if isinstance(config, LitePoseConfig):
        _litepose(planner, config)
    elif isinstance(config, HigherHRNetConfig):
        _higherhrnet(planner, config)
    elif isinstance(config, TopDownConfig):
        from search_space.topdown_plan import plan_topdown  # it builds on this module's parts

        plan_topdown(planner, config)
    else:
        raise TypeError(f"layer_plan needs an architecture config, got {type(config).__name__}")
    return tuple(planner.layers)


def output_names(plan: tuple[Layer, ...]) -> tuple[str, ...]:
    """Names of the records that are the network's outputs, in output order (1/4, then 1/2)."""
    outs = sorted((layer.output, layer.name) for layer in plan if layer.output is not None)
    return tuple(name for _, name in outs)


# ---------------------------------------------------------------------------------- LitePose
def _inverted_residual(
    p: _Planner, prefix: str, src: str, out_ch: int, stride: int, block: InvertedResidualConfig
) -> str:
    """MobileNetV2 block: 1x1 expand, BN, ReLU6; kxk depthwise, BN, ReLU6; 1x1 project, BN;
    the residual when the stride is 1 and the widths match. The expand conv is kept even at
    expansion 1, as in the LitePose release."""
    in_ch = p.channels(src)
    hidden = inverted_residual_hidden(in_ch, block.expansion)
    y = p.conv_bn(f"{prefix}.expand", src, hidden, 1, act="relu6")
    y = p.conv_bn(f"{prefix}.depthwise", y, hidden, block.kernel, stride, hidden, act="relu6")
    y = p.conv_bn(f"{prefix}.project", y, out_ch, 1)
    if stride == 1 and in_ch == out_ch:
        y = p.add(f"{prefix}@add", y, src)
    return y


def _separable(p: _Planner, prefix: str, src: str, out_ch: int, kernel: int) -> str:
    """LitePose's final layers: kxk depthwise, BN, ReLU, 1x1 conv without BN (zero init)."""
    ch = p.channels(src)
    y = p.conv(f"{prefix}.0", src, ch, kernel, groups=ch)
    y = p.same("bn", f"{prefix}.1", y)
    y = p.same("relu", f"{prefix}.2", y)
    return p.conv(f"{prefix}.3", y, out_ch, 1, zero_init=True)


def _litepose(p: _Planner, config: LitePoseConfig) -> None:
    stem = LITEPOSE_STEM_WIDTH
    y = p.conv_bn("stem.0", INPUT, stem, 3, 2, act="relu6")
    y = p.conv_bn("stem.1", y, stem, 3, 1, groups=stem, act="relu6")
    # feats[0] is the stem output, feats[1..4] the stages' (after their fusion, if any).
    feats = [p.conv_bn("stem.2", y, config.stem_channels, 1)]
    for s, stage in enumerate(config.stages):
        y = feats[-1]
        for b, block in enumerate(stage.blocks):
            y = _inverted_residual(
                p, f"stages.{s}.{b}", y, stage.channels, stage.stride if b == 0 else 1, block
            )
        feats.append(y)
        if stage.branches:
            _branches_and_fusion(p, config, s, feats)

    head = config.head
    kernel = LITEPOSE_DECONV_KERNEL
    ys, y = [], feats[4]
    for i, width in enumerate(head.channels):
        # Step i upsamples y_{i-1} (y_-1 = stage 4) and, in the fusion head, the skip feats[3 - i].
        up = p.deconv(f"deconv_refined.{i}", y, width, kernel)
        if head.kind == "fusion":
            skip = p.deconv(f"deconv_skip.{i}", feats[3 - i], width, kernel)
            up = p.add(f"deconv_bn_relu.{i}@add", up, skip)
        y = p.same("bn", f"deconv_bn_relu.{i}.0", up)
        y = p.same("relu", f"deconv_bn_relu.{i}.1", y)
        ys.append(y)
    # y_1 pairs with stage 1 (1/4), y_2 with the stem (1/2).
    (quarter_ch, half_ch), fk = config.output_channels, head.final_kernel
    refined = [
        _separable(p, "final_refined.0", ys[1], quarter_ch, fk),
        _separable(p, "final_refined.1", ys[2], half_ch, fk),
    ]
    raw = [
        _separable(p, "final_raw.0", feats[1], quarter_ch, fk),
        _separable(p, "final_raw.1", feats[0], half_ch, fk),
    ]
    for i in range(2):
        p.add(f"final_raw.{i}@out", refined[i], raw[i], output=i)


def _branches_and_fusion(p: _Planner, config: LitePoseConfig, s: int, feats: list[str]) -> None:
    """Stage ``s``'s branches beside its main path, then HRNet's fusion: every path receives every
    other (summed in path order), and the fused maps replace the feature entries they continue."""
    paths = config.parallel_paths(s)
    sources = [STAGE_FEATURE_STRIDES.index(stride) + 1 for stride, _ in paths[:-1]]
    xs = {}
    for (stride, _), i in zip(paths[:-1], sources, strict=True):
        y = feats[i]
        for b, block in enumerate(config.stages[s].branch(stride).blocks):
            y = _inverted_residual(p, f"branches.{branch_key(s, stride)}.{b}", y,
                                   p.channels(y), 1, block)  # fmt: skip
        xs[stride] = y
    xs[paths[-1][0]] = feats[-1]
    fused = {}
    for source, _, target, target_ch in config.fusion_links(s):
        key = fuse_key(s, source, target)
        fused[source, target] = p.fuse_layer(
            f"fuse.{key}", xs[source], target_ch, fuse_levels(source, target)
        )
    for i, (target, _) in enumerate(paths):
        terms = [xs[target]] + [fused[src, target] for src, _ in paths if src != target]
        y = p.add(f"fuse@stage{s + 1}_to{target}", *terms)
        feats[sources[i] if i < len(sources) else -1] = y


# ---------------------------------------------------------------------------------- HigherHRNet
def _residual(p: _Planner, prefix: str, y: str, src: str, stride: int) -> str:
    """A ResNet block's end: ``y`` plus the input (through a 1x1 projection when the shape
    changes), then ReLU."""
    short = src
    out_ch = p.channels(y)
    if stride != 1 or p.channels(src) != out_ch:
        short = p.conv_bn(f"{prefix}.shortcut", src, out_ch, 1, stride)
    return p.same("relu", f"{prefix}.relu", p.add(f"{prefix}@add", y, short))


def _basic_block(p: _Planner, prefix: str, src: str, planes: int, stride: int = 1) -> str:
    """ResNet basic block: two 3x3 convs."""
    y = p.conv_bn(f"{prefix}.conv1", src, planes, 3, stride, act="relu")
    return _residual(p, prefix, p.conv_bn(f"{prefix}.conv2", y, planes, 3), src, stride)


def _bottleneck(p: _Planner, prefix: str, src: str, planes: int, stride: int = 1) -> str:
    """ResNet bottleneck: 1x1, 3x3, 1x1 to 4x planes."""
    out_ch = planes * HRNET_BLOCK_EXPANSION["bottleneck"]
    y = p.conv_bn(f"{prefix}.conv1", src, planes, 1, act="relu")
    y = p.conv_bn(f"{prefix}.conv2", y, planes, 3, stride, act="relu")
    return _residual(p, prefix, p.conv_bn(f"{prefix}.conv3", y, out_ch, 1), src, stride)


_HRNET_BLOCKS = {"basic": _basic_block, "bottleneck": _bottleneck}


def _higherhrnet(p: _Planner, config: HigherHRNetConfig) -> None:
    stem = HRNET_STEM_WIDTH
    y = p.conv_bn("stem.0", INPUT, stem, 3, 2, act="relu")
    y = p.conv_bn("stem.1", y, stem, 3, 2, act="relu")
    for b in range(config.stem_blocks):
        y = _bottleneck(p, f"layer1.{b}", y, config.stem_planes)
    xs = [y]
    for s, stage in enumerate(config.stages):
        expansion = HRNET_BLOCK_EXPANSION[stage.block]
        channels = [w * expansion for w in stage.widths]
        # Transition: adapt the previous branches (identity when widths agree), start a new one.
        new = []
        for i, c in enumerate(channels):
            prefix = f"transitions.{s}.layers.{i}"
            if i < len(xs):
                same = p.channels(xs[i]) == c
                new.append(xs[i] if same else p.conv_bn(prefix, xs[i], c, 3, act="relu"))
            else:
                new.append(p.conv_bn(prefix, xs[-1], c, 3, 2, act="relu"))
        xs = new
        last_stage = s == len(config.stages) - 1
        for m, blocks in enumerate(stage.blocks):
            prefix = f"stages.{s}.{m}"
            for b, (n, width) in enumerate(zip(blocks, stage.widths, strict=True)):
                branch = f"{prefix}.branches.{b}"
                if n == 0:  # a removed branch: one 3x3 conv-BN-ReLU6, as the LitePose release
                    xs[b] = p.conv_bn(branch, xs[b], channels[b], 3, act="relu6")
                    continue
                for k in range(n):
                    xs[b] = _HRNET_BLOCKS[stage.block](p, f"{branch}.{k}", xs[b], width)
            num_outputs = 1 if last_stage and m == stage.num_modules - 1 else len(channels)
            outs = []
            for i in range(num_outputs):
                terms = [
                    xs[j] if j == i
                    else p.fuse_layer(f"{prefix}.fuse.{i}.{j}", xs[j], channels[i], i - j)
                    for j in range(len(channels))
                ]  # fmt: skip
                y = p.add(f"{prefix}@sum{i}", *terms)
                outs.append(p.same("relu", f"{prefix}.relu@{i}", y))
            xs = outs

    head = config.head
    quarter_ch, half_ch = config.output_channels
    fk = head.final_conv_kernel
    quarter = p.conv("final_quarter", xs[0], quarter_ch, fk, bias=True, output=0, zero_init=True)
    y = p.concat("final_quarter@cat", xs[0], quarter) if head.cat_output else xs[0]
    dc = head.deconv_channels
    y = p.deconv("deconv.0", y, dc, head.deconv_kernel)
    y = p.same("bn", "deconv.1", y)
    y = p.same("relu", "deconv.2", y)
    for b in range(head.num_basic_blocks):
        y = _basic_block(p, f"deconv.{3 + b}", y, dc)
    p.conv("final_half", y, half_ch, fk, bias=True, output=1, zero_init=True)
