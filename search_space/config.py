"""The architecture language: frozen dataclasses that describe every network posearch builds.

Two families share one top-level shape (input size, joints, tag dimension):

* ``HigherHRNetConfig``: the multi-branch HigherHRNet family. Every branch of every module carries
  its own block count; a count of 0 is how gradual shrinking removes a branch's blocks (the branch
  then becomes one 3x3 conv-BN-ReLU, as in the LitePose release, so fusion still sees it).
* ``LitePoseConfig``: the LitePose family (MobileNetV2 inverted residual stages with large depthwise
  kernels and a fusion or plain deconv head). Stages 2-4 may carry HRNet-style higher-resolution
  branches of inverted residuals; without any (the default) it is the single-branch LitePose
  network of the paper.

A config is the single source of truth: the model builder, the MACs counters, the supernet and the
exporter all read it and none of them invents structure. Every config validates itself on
construction, so an invalid architecture cannot exist; errors name the field path and the accepted
values (see :class:`~search_space.errors.ArchConfigError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from search_space.errors import ArchConfigError

KERNEL_SIZES = (3, 5, 7, 9)
HRNET_BLOCK_TYPES = ("basic", "bottleneck")
HEAD_KINDS = ("fusion", "plain")
NUM_JOINTS_CHOICES = (14, 17)
FUSION_HEAD_STRIDES = (2, 2, 2, 1)
# Where each LitePose stage's output runs (1/4, 1/8, 1/16, 1/16 of the input) with the fusion
# head's strides, which branches require; a branch continues the earlier stage output at its
# resolution.
STAGE_FEATURE_STRIDES = (4, 8, 16, 16)

# Channel expansion of each HRNet block type (a branch of width W outputs W * expansion channels).
HRNET_BLOCK_EXPANSION = {"basic": 1, "bottleneck": 4}

# Sane bounds (docs/reliability.md): well beyond every preset, the search spaces and the papers,
# yet small enough that a typo fails here instead of minutes later. `input_size: 4096` was accepted
# and the exporter was killed for memory after 3 minutes; `expansion: 1000000` was accepted too.
MAX_INPUT_SIZE = 1024  # presets 256-512; the papers train at 256-640
MAX_WIDTH = 1024  # channels of any layer a config names; the widest preset layer has 256
MAX_EXPANSION = 8  # MobileNetV2 and LitePose use 6
MAX_DEPTH = 32  # blocks of one stage, branch, stem or head; presets have at most 10
MAX_MODULES = 8  # HRNet modules in one stage; HigherHRNet has at most 4
MAX_TAG_DIM = 8  # associative-embedding tag size; HigherHRNet uses 1


def _check_int(path: str, value: object, minimum: int = 1, maximum: int | None = None) -> None:
    allowed = f">= {minimum}" if maximum is None else f">= {minimum} and <= {maximum}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchConfigError(path, value, f"must be an integer {allowed}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ArchConfigError(path, value, f"must be an integer {allowed}")


def _check_count(path: str, items: tuple, what: str, maximum: int) -> None:
    """A sane bound on a tuple's length, reported as the count (the tuple itself is long)."""
    if len(items) > maximum:
        raise ArchConfigError(path, len(items), f"at most {maximum} {what} allowed")


def _check_choice(path: str, value: object, choices: tuple) -> None:
    if isinstance(value, bool) or value not in choices:
        shown = "{" + ", ".join(str(c) for c in choices) + "}"
        raise ArchConfigError(path, value, f"must be one of {shown}")


def _check_tuple(
    path: str, value: object, length: int | None = None, nonempty: bool = True
) -> None:
    if not isinstance(value, tuple):
        raise ArchConfigError(path, value, "must be a tuple (a list in JSON / YAML)")
    if length is not None and len(value) != length:
        raise ArchConfigError(path, value, f"must have exactly {length} entries")
    if nonempty and len(value) == 0:
        raise ArchConfigError(path, value, "must not be empty")


# --------------------------------------------------------------------------------------------
# HigherHRNet family
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HRNetStageConfig:
    """One HRNet stage: its branches' widths and the block count of every branch in every module.

    ``blocks[m][b]`` is the number of blocks of branch ``b`` (0 = highest resolution) in module
    ``m``. A count of 0 replaces the branch's blocks by one 3x3 conv-BN-ReLU.
    """

    widths: tuple[int, ...]
    blocks: tuple[tuple[int, ...], ...]
    block: Literal["basic", "bottleneck"] = "basic"

    @property
    def num_branches(self) -> int:
        return len(self.widths)

    @property
    def num_modules(self) -> int:
        return len(self.blocks)

    def validate(self, path: str) -> None:
        _check_tuple(f"{path}.widths", self.widths)
        for b, width in enumerate(self.widths):
            _check_int(f"{path}.widths[{b}]", width, maximum=MAX_WIDTH)
        _check_choice(f"{path}.block", self.block, HRNET_BLOCK_TYPES)
        _check_tuple(f"{path}.blocks", self.blocks)
        _check_count(f"{path}.blocks", self.blocks, "modules", MAX_MODULES)
        for m, module in enumerate(self.blocks):
            _check_tuple(f"{path}.blocks[{m}]", module, length=self.num_branches)
            for b, count in enumerate(module):
                _check_int(f"{path}.blocks[{m}][{b}]", count, minimum=0, maximum=MAX_DEPTH)


@dataclass(frozen=True)
class HigherHRNetHeadConfig:
    """The HigherHRNet head: 1/4 output conv, optional concatenation, one deconv to 1/2.

    ``num_basic_blocks`` BasicBlocks refine the deconv output (4 in the original HigherHRNet, 0 in
    the paper's W16 / W24 baselines).
    """

    final_conv_kernel: int = 1
    cat_output: bool = True
    deconv_channels: int = 32
    deconv_kernel: int = 4
    num_basic_blocks: int = 0

    def validate(self, path: str) -> None:
        _check_choice(f"{path}.final_conv_kernel", self.final_conv_kernel, (1, 3))
        if not isinstance(self.cat_output, bool):
            raise ArchConfigError(f"{path}.cat_output", self.cat_output, "must be true or false")
        _check_int(f"{path}.deconv_channels", self.deconv_channels, maximum=MAX_WIDTH)
        _check_choice(f"{path}.deconv_kernel", self.deconv_kernel, (2, 3, 4))
        _check_int(f"{path}.num_basic_blocks", self.num_basic_blocks, minimum=0, maximum=MAX_DEPTH)


@dataclass(frozen=True, kw_only=True)
class PoseNetConfig:
    """What every architecture shares: input resolution and the outputs it must produce.

    Outputs follow HigherHRNet: at 1/4 resolution ``num_joints`` heatmaps followed by
    ``num_joints * tag_dim`` associative-embedding tags; at 1/2 resolution ``num_joints`` heatmaps.
    """

    input_size: int = 512
    num_joints: int = 14
    tag_dim: int = 1

    @property
    def output_channels(self) -> tuple[int, int]:
        """Channels of the (1/4, 1/2) resolution outputs: ``K + K * tag_dim`` and ``K``.

        The one statement of the output layout: the builders, the supernet and the MACs counter
        size their final layers from it."""
        k = self.num_joints
        return k + k * self.tag_dim, k

    @property
    def family(self) -> str:
        raise NotImplementedError

    @property
    def input_multiple(self) -> int:
        """Input sides must be multiples of this (the deepest feature map's stride)."""
        raise NotImplementedError

    def _validate_common(self) -> None:
        _check_int("input_size", self.input_size, self.input_multiple, MAX_INPUT_SIZE)
        if self.input_size % self.input_multiple:
            raise ArchConfigError(
                "input_size",
                self.input_size,
                f"must be a multiple of {self.input_multiple} for the {self.family} family",
            )
        _check_choice("num_joints", self.num_joints, NUM_JOINTS_CHOICES)
        _check_int("tag_dim", self.tag_dim, maximum=MAX_TAG_DIM)


@dataclass(frozen=True, kw_only=True)
class HigherHRNetConfig(PoseNetConfig):
    """A HigherHRNet-style multi-branch network.

    Stem: two 3x3 stride-2 convs (3 -> 64 -> 64), then ``stem_blocks`` Bottlenecks of
    ``stem_planes`` planes (output 4 * stem_planes channels) at 1/4. Stages 2, 3, 4 follow, each
    adding one lower-resolution branch; the last module of stage 4 outputs only the 1/4 branch.
    """

    stem_planes: int = 64
    stem_blocks: int = 4
    stages: tuple[HRNetStageConfig, ...]
    head: HigherHRNetHeadConfig = HigherHRNetHeadConfig()

    @property
    def family(self) -> str:
        return "higherhrnet"

    @property
    def input_multiple(self) -> int:
        return 32  # stage 4's lowest branch is at 1/32

    def __post_init__(self) -> None:
        _check_int("stem_planes", self.stem_planes, maximum=MAX_WIDTH)
        _check_int("stem_blocks", self.stem_blocks, maximum=MAX_DEPTH)
        _check_tuple("stages", self.stages, length=3)
        for s, stage in enumerate(self.stages):
            if not isinstance(stage, HRNetStageConfig):
                raise ArchConfigError(f"stages[{s}]", stage, "must be an HRNetStageConfig")
            _check_tuple(f"stages[{s}].widths", stage.widths)
            if stage.num_branches != s + 2:
                raise ArchConfigError(
                    f"stages[{s}].widths",
                    stage.widths,
                    f"stage {s + 2} must have exactly {s + 2} branches (one more than the last)",
                )
            stage.validate(f"stages[{s}]")
            if s > 0 and stage.widths[: s + 1] != self.stages[s - 1].widths:
                raise ArchConfigError(
                    f"stages[{s}].widths",
                    stage.widths,
                    f"must keep the previous stage's branch widths {self.stages[s - 1].widths} "
                    "and append one new branch",
                )
        if not isinstance(self.head, HigherHRNetHeadConfig):
            raise ArchConfigError("head", self.head, "must be a HigherHRNetHeadConfig")
        self.head.validate("head")
        self._validate_common()

    @property
    def base_width(self) -> int:
        return self.stages[0].widths[0]


# --------------------------------------------------------------------------------------------
# LitePose family
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvertedResidualConfig:
    """A MobileNetV2 block: 1x1 expand by ``expansion``, kxk depthwise, 1x1 project."""

    kernel: int = 7
    expansion: int = 6

    def validate(self, path: str) -> None:
        if isinstance(self.kernel, bool) or self.kernel not in KERNEL_SIZES:
            raise ArchConfigError(
                f"{path}.kernel", self.kernel, "must be an odd size in {3, 5, 7, 9}"
            )
        _check_int(f"{path}.expansion", self.expansion, maximum=MAX_EXPANSION)


def _check_blocks(path: str, blocks: object, empty_hint: str = "") -> None:
    if isinstance(blocks, tuple) and not blocks and empty_hint:
        raise ArchConfigError(path, blocks, f"must not be empty ({empty_hint})")
    _check_tuple(path, blocks)
    _check_count(path, blocks, "blocks", MAX_DEPTH)
    for i, block in enumerate(blocks):
        if not isinstance(block, InvertedResidualConfig):
            raise ArchConfigError(f"{path}[{i}]", block, "must be an InvertedResidualConfig")
        block.validate(f"{path}[{i}]")


def branch_feature_strides(stage_index: int) -> tuple[int, ...]:
    """Resolutions (as input / feature map) at which stage ``stage_index`` (0-based) may carry a
    branch: those of earlier stage outputs finer than its own, as in HRNet, where a stage keeps
    every higher-resolution branch of the stages before it. Stage 1: none; 2: (4,); 3, 4: (4, 8)."""
    own = STAGE_FEATURE_STRIDES[stage_index]
    return tuple(sorted({f for f in STAGE_FEATURE_STRIDES[:stage_index] if f < own}))


@dataclass(frozen=True)
class LiteBranchConfig:
    """A higher-resolution branch beside a stage: stride-1 inverted residual blocks at
    1/``feature_stride`` of the input, as wide as the earlier stage output they continue.

    At the end of the stage its branches and main path are fused HRNet-style (every path
    receives every other, resized); see ``search_space.plan``. A dropped branch (depth 0) is left
    out of the stage's ``branches``, which keeps each network's description unique.
    """

    feature_stride: int
    blocks: tuple[InvertedResidualConfig, ...]

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def validate(self, path: str, allowed_strides: tuple[int, ...]) -> None:
        _check_choice(f"{path}.feature_stride", self.feature_stride, allowed_strides)
        _check_blocks(f"{path}.blocks", self.blocks, "a dropped branch is left out of branches")


@dataclass(frozen=True)
class LiteStageConfig:
    """A stage of inverted residual blocks; its first block carries the stride.

    ``branches`` (highest resolution first, each resolution at most once) run beside the main
    path at the resolutions of earlier stages; empty (the default) is LitePose's single branch.
    """

    channels: int
    stride: int
    blocks: tuple[InvertedResidualConfig, ...]
    branches: tuple[LiteBranchConfig, ...] = ()

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def branch(self, feature_stride: int) -> LiteBranchConfig | None:
        """The branch at 1/``feature_stride``, or None where it is dropped."""
        return next((b for b in self.branches if b.feature_stride == feature_stride), None)

    def validate(self, path: str) -> None:
        _check_int(f"{path}.channels", self.channels, maximum=MAX_WIDTH)
        _check_choice(f"{path}.stride", self.stride, (1, 2))
        _check_blocks(f"{path}.blocks", self.blocks)
        _check_tuple(f"{path}.branches", self.branches, nonempty=False)
        for i, branch in enumerate(self.branches):
            if not isinstance(branch, LiteBranchConfig):
                raise ArchConfigError(f"{path}.branches[{i}]", branch, "must be a LiteBranchConfig")


@dataclass(frozen=True)
class DeconvHeadConfig:
    """LitePose's head: three stride-2 deconvs (to 1/8, 1/4, 1/2) of widths ``channels``.

    ``fusion`` adds a second deconv from the matching backbone stage at each step (the paper's
    fusion deconv head); ``plain`` is the ablation without those skip deconvs. The final layers
    are separable convs with ``final_kernel`` depthwise kernels.
    """

    kind: Literal["fusion", "plain"] = "fusion"
    channels: tuple[int, int, int] = (32, 24, 16)
    final_kernel: int = 5

    def validate(self, path: str) -> None:
        _check_choice(f"{path}.kind", self.kind, HEAD_KINDS)
        _check_tuple(f"{path}.channels", self.channels, length=3)
        for i, width in enumerate(self.channels):
            _check_int(f"{path}.channels[{i}]", width, maximum=MAX_WIDTH)
        if isinstance(self.final_kernel, bool) or self.final_kernel not in KERNEL_SIZES:
            raise ArchConfigError(
                f"{path}.final_kernel", self.final_kernel, "must be an odd size in {3, 5, 7, 9}"
            )


@dataclass(frozen=True, kw_only=True)
class LitePoseConfig(PoseNetConfig):
    """A LitePose network.

    Stem to 1/2 (3x3 s2 conv 3->32, 3x3 depthwise, 1x1 to ``stem_channels``), four inverted
    residual stages (strides 2, 2, 2, 1: outputs at 1/4, 1/8, 1/16, 1/16), then the deconv head.
    Stages 2-4 may carry higher-resolution branches (``LiteStageConfig.branches``); without any
    this is the paper's single-branch network.
    """

    stem_channels: int = 16
    stages: tuple[LiteStageConfig, ...]
    head: DeconvHeadConfig = DeconvHeadConfig()

    @property
    def family(self) -> str:
        return "litepose"

    @property
    def input_multiple(self) -> int:
        return 16

    def __post_init__(self) -> None:
        _check_int("stem_channels", self.stem_channels, maximum=MAX_WIDTH)
        _check_tuple("stages", self.stages, length=4)
        for s, stage in enumerate(self.stages):
            if not isinstance(stage, LiteStageConfig):
                raise ArchConfigError(f"stages[{s}]", stage, "must be a LiteStageConfig")
            stage.validate(f"stages[{s}]")
        if not isinstance(self.head, DeconvHeadConfig):
            raise ArchConfigError("head", self.head, "must be a DeconvHeadConfig")
        self.head.validate("head")
        self._validate_strides()
        self._validate_branches()
        self._validate_common()

    @property
    def has_branches(self) -> bool:
        return any(stage.branches for stage in self.stages)

    def branch_channels(self, feature_stride: int) -> int:
        """Width of a branch at 1/``feature_stride``: that of the stage output it continues."""
        return self.stages[STAGE_FEATURE_STRIDES.index(feature_stride)].channels

    def parallel_paths(self, stage_index: int) -> tuple[tuple[int, int], ...]:
        """``(feature stride, channels)`` of every path that stage ``stage_index``'s fusion joins:
        its branches (highest resolution first), then its main path; () without branches."""
        stage = self.stages[stage_index]
        if not stage.branches:
            return ()
        paths = [(b.feature_stride, self.branch_channels(b.feature_stride)) for b in stage.branches]
        return (*paths, (STAGE_FEATURE_STRIDES[stage_index], stage.channels))

    def fusion_links(self, stage_index: int) -> tuple[tuple[int, int, int, int], ...]:
        """``(source stride, source channels, target stride, target channels)`` of every fusion
        layer of stage ``stage_index``: each parallel path feeds every other (target-major order,
        the order the layers are built in)."""
        paths = self.parallel_paths(stage_index)
        return tuple(
            (source, source_ch, target, target_ch)
            for target, target_ch in paths
            for source, source_ch in paths
            if source != target
        )

    def _validate_branches(self) -> None:
        for s, stage in enumerate(self.stages):
            path = f"stages[{s}].branches"
            if not stage.branches:
                continue
            allowed = branch_feature_strides(s)
            if not allowed:
                raise ArchConfigError(
                    path, stage.branches, "must be empty: stage 1 runs at the finest resolution"
                )
            if self.head.kind != "fusion":
                # Its skips (and the strides it fixes) consume every fused resolution; the plain
                # head would leave the last fusion's 1/8 output unused.
                raise ArchConfigError(path, stage.branches, "branches need the fusion head")
            previous = 0
            for i, branch in enumerate(stage.branches):
                branch.validate(f"{path}[{i}]", allowed)
                if branch.feature_stride <= previous:
                    raise ArchConfigError(
                        f"{path}[{i}].feature_stride",
                        branch.feature_stride,
                        "branches are listed highest resolution first, each resolution once",
                    )
                previous = branch.feature_stride

    def _validate_strides(self) -> None:
        # The head adds maps of equal size: the 1/4 output sums a deconv path with stage 1 and the
        # 1/2 output with the stem, and the fusion head also sums stages 3 and 2 at 1/16 and 1/8.
        strides = tuple(stage.stride for stage in self.stages)
        if self.head.kind == "fusion" and strides != FUSION_HEAD_STRIDES:
            for s, (got, want) in enumerate(zip(strides, FUSION_HEAD_STRIDES, strict=True)):
                if got != want:
                    raise ArchConfigError(
                        f"stages[{s}].stride",
                        got,
                        f"the fusion head needs stage strides {FUSION_HEAD_STRIDES}",
                    )
        if self.head.kind == "plain":
            if strides[0] != 2:
                raise ArchConfigError(
                    "stages[0].stride", strides[0], "must be 2 (stage 1 feeds the 1/4 output)"
                )
            if strides[1] * strides[2] * strides[3] != 4:
                raise ArchConfigError(
                    "stages[3].stride",
                    strides[3],
                    f"stages 2-4 strides {strides[1:]} must multiply to 4 (deepest map at 1/16)",
                )


ArchConfig = HigherHRNetConfig | LitePoseConfig
FAMILIES: dict[str, type] = {"higherhrnet": HigherHRNetConfig, "litepose": LitePoseConfig}
