"""Named architectures, registered timm-style: one small function per preset.

``get_preset(name, **overrides)`` returns the config (overrides replace top-level fields, e.g.
``num_joints=17`` for COCO heads); ``list_presets(pattern, tag=...)`` lists names. Published paper
numbers (paper-convention GMACs, CrowdPose and COCO AP) are kept beside each preset so tables can
show ours against theirs, and tags select families as timm's ``list_models(filter=...)`` does:
``list_presets(tag="paper")`` is the paper's LitePose-XS / S / M / L, the one list that the
search's seeds, its named budgets, the ground truth and the latency fit read.
Defaults use CrowdPose heads (14 joints), the setting of the paper's main results.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from posecore.errors import UnknownNameError
from search_space.config import (
    ArchConfig,
    DeconvHeadConfig,
    HigherHRNetConfig,
    HigherHRNetHeadConfig,
    HRNetStageConfig,
    InvertedResidualConfig,
    LiteBranchConfig,
    LitePoseConfig,
    LiteStageConfig,
    branch_feature_strides,
)
from search_space.errors import ArchConfigError
from search_space.serialize import load_arch

PIPELINES = ("bottomup", "topdown")
PAPER = ("paper",)  # the tag of the paper's four: LitePose-XS / S / M / L


@dataclass(frozen=True)
class PresetInfo:
    name: str
    build: Callable[[], ArchConfig]
    published_gmacs: float | None  # paper convention, CrowdPose heads (top-down: docs/topdown.md)
    summary: str
    pipeline: str = "bottomup"  # what its outputs feed: bottom-up decoding or top-down crops
    tags: tuple[str, ...] = ()  # families it belongs to: list_presets(tag=...)
    short: str | None = None  # the paper's name for it (XS), also its named budget's
    crowdpose_ap: float | None = None  # published AP, CrowdPose test
    coco_ap: float | None = None  # published AP, COCO val


_REGISTRY: dict[str, PresetInfo] = {}


def register(
    name: str,
    published_gmacs: float | None = None,
    pipeline: str = "bottomup",
    *,
    tags: tuple[str, ...] = (),
    short: str | None = None,
    crowdpose_ap: float | None = None,
    coco_ap: float | None = None,
):
    """Decorator: register a zero-argument config function under ``name``, with the numbers
    published for it and the tags that select its family."""
    if pipeline not in PIPELINES:
        raise ValueError(f"preset {name!r}: pipeline {pipeline!r} is not one of {PIPELINES}")

    def wrap(fn: Callable[[], ArchConfig]) -> Callable[[], ArchConfig]:
        if name in _REGISTRY:
            raise KeyError(f"preset {name!r} is already registered")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _REGISTRY[name] = PresetInfo(
            name, fn, published_gmacs, summary, pipeline, tuple(tags), short, crowdpose_ap, coco_ap
        )
        return fn

    return wrap


def list_presets(
    pattern: str = "*", pipeline: str | None = "bottomup", tag: str | None = None
) -> list[str]:
    """Preset names matching ``pattern`` whose networks feed ``pipeline`` (None: every one),
    with ``tag`` among their tags (None: any), in the order they were registered.

    The default is the bottom-up presets, whose networks return ``[out_quarter, out_half]``:
    what every bottom-up tool that loops over presets expects. Top-down networks return one
    heatmap output per crop (``search_space.topdown``). ``tag="paper"``: the paper's four."""
    return [
        name
        for name, info in _REGISTRY.items()
        if fnmatch.fnmatch(name, pattern)
        and pipeline in (None, info.pipeline)
        and (tag is None or tag in info.tags)
    ]


def preset_info(name: str) -> PresetInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown preset {name!r}; known presets: {list_presets(pipeline=None)}"
        ) from None


def resolve_arch(name_or_path: str, **overrides) -> ArchConfig:
    """A preset name or an architecture file (our JSON / YAML or the LitePose release's JSON),
    with top-level fields replaced by ``overrides``."""
    if name_or_path in _REGISTRY:
        return get_preset(name_or_path, **overrides)
    path = Path(name_or_path)
    if not path.exists():
        raise ArchConfigError(
            "arch",
            name_or_path,
            f"is neither a preset ({', '.join(list_presets(pipeline=None))}) nor an existing "
            "architecture file",
        )
    config = load_arch(path)
    return dataclasses.replace(config, **overrides) if overrides else config


def get_preset(name: str, **overrides) -> ArchConfig:
    """The config registered as ``name``, with top-level fields replaced by ``overrides``."""
    config = preset_info(name).build()
    return dataclasses.replace(config, **overrides) if overrides else config


# --------------------------------------------------------------------------------------------
# HigherHRNet family
# --------------------------------------------------------------------------------------------

HRNET_MODULES = (1, 4, 3)  # modules in stages 2, 3, 4


def hrnet_stages(width: int, block_maps: tuple[tuple[int, ...], ...] | None = None):
    """Stages 2-4 with widths W, 2W, 4W, 8W.

    ``block_maps[s]`` gives the block count of every branch of stage s, shared by its modules;
    default 4 blocks per branch (the original).
    """
    stages = []
    for s, modules in enumerate(HRNET_MODULES):
        branches = s + 2
        per_branch = (4,) * branches if block_maps is None else tuple(block_maps[s])
        stages.append(
            HRNetStageConfig(
                widths=tuple(width * 2**b for b in range(branches)),
                blocks=(per_branch,) * modules,
            )
        )
    return tuple(stages)


def higherhrnet(width: int, stem_planes: int, head_blocks: int, block_maps=None, input_size=512):
    return HigherHRNetConfig(
        input_size=input_size,
        stem_planes=stem_planes,
        stages=hrnet_stages(width, block_maps),
        head=HigherHRNetHeadConfig(num_basic_blocks=head_blocks),
    )


@register("higherhrnet_w32", published_gmacs=47.9)
def higherhrnet_w32() -> HigherHRNetConfig:
    """HigherHRNet-W32 as released: stem planes 64, four BasicBlocks after the deconv."""
    return higherhrnet(32, stem_planes=64, head_blocks=4)


@register("higherhrnet_w24", published_gmacs=25.3)
def higherhrnet_w24() -> HigherHRNetConfig:
    """HigherHRNet-W24, paper-style: stem planes 2W, no BasicBlocks after the deconv."""
    return higherhrnet(24, stem_planes=48, head_blocks=0)


@register("higherhrnet_w16", published_gmacs=12.50)
def higherhrnet_w16() -> HigherHRNetConfig:
    """HigherHRNet-W16, paper-style (the shrinking baseline): stem planes 2W, no head blocks."""
    return higherhrnet(16, stem_planes=32, head_blocks=0)


# Gradual shrinking. Stage s's block map lists each branch's blocks (highest resolution first);
# every module of the stage uses it. Each map keeps a subset of the previous one's blocks.
SHRINK1_BLOCKS = ((4, 4), (0, 4, 4), (0, 2, 4, 4))
SHRINK2_BLOCKS = ((0, 4), (0, 1, 4), (0, 0, 3, 4))
SHRINK3_BLOCKS = ((0, 4), (0, 0, 4), (0, 0, 0, 4))


@register("shrink1", published_gmacs=10.12)
def shrink1() -> HigherHRNetConfig:
    """Shrink1 (W16): the 1/4 branch emptied in stages 3-4, the 1/8 branch halved in stage 4.

    The paper publishes only the MACs (10.12 G) and a removed share, not the block map. Ours, per
    stage and highest resolution first: stage 2 [4, 4], stage 3 [0, 4, 4], stage 4 [0, 2, 4, 4].
    It was chosen among all maps that remove higher-resolution blocks no later than lower ones as
    the one nearest 10.12 G that empties whole branches first: 10.11 G paper convention.
    """
    return higherhrnet(16, stem_planes=32, head_blocks=0, block_maps=SHRINK1_BLOCKS)


@register("shrink2", published_gmacs=10.02)
def shrink2() -> HigherHRNetConfig:
    """Shrink2 (W18): the 1/4 branch emptied everywhere, the 1/8 and 1/16 branches thinned.

    Published: 10.02 G, no block map. Ours: stage 2 [0, 4], stage 3 [0, 1, 4], stage 4
    [0, 0, 3, 4] — a subset of Shrink1's blocks and a superset of Shrink3's, at 10.02 G.
    """
    return higherhrnet(18, stem_planes=36, head_blocks=0, block_maps=SHRINK2_BLOCKS)


@register("shrink3", published_gmacs=9.15)
def shrink3() -> HigherHRNetConfig:
    """Shrink3 (W18): each stage keeps only its lowest-resolution branch's blocks."""
    return higherhrnet(18, stem_planes=36, head_blocks=0, block_maps=SHRINK3_BLOCKS)


# --------------------------------------------------------------------------------------------
# LitePose family
# --------------------------------------------------------------------------------------------

LITEPOSE_DEPTHS = (6, 8, 10, 10)
LITEPOSE_STRIDES = (2, 2, 2, 1)


def litepose(
    input_size, stem, channels, deconv, kernel=7, expansion=6, head="fusion", depths=LITEPOSE_DEPTHS
) -> LitePoseConfig:
    """A LitePose net with the same kernel and expansion in every block."""
    block = InvertedResidualConfig(kernel=kernel, expansion=expansion)
    stages = tuple(
        LiteStageConfig(channels=c, stride=s, blocks=(block,) * d)
        for c, s, d in zip(channels, LITEPOSE_STRIDES, depths, strict=True)
    )
    return LitePoseConfig(
        input_size=input_size,
        stem_channels=stem,
        stages=stages,
        head=DeconvHeadConfig(kind=head, channels=tuple(deconv)),
    )


@register("litepose_xs", 1.2, tags=PAPER, short="XS", crowdpose_ap=49.4, coco_ap=40.6)
def litepose_xs() -> LitePoseConfig:
    """LitePose-XS (released subnet, 256 px)."""
    return litepose(256, 16, (16, 32, 48, 80), (16, 24, 24))


@register("litepose_s", 5.0, tags=PAPER, short="S", crowdpose_ap=58.3, coco_ap=56.8)
def litepose_s() -> LitePoseConfig:
    """LitePose-S (released subnet, 448 px)."""
    return litepose(448, 16, (16, 32, 48, 120), (32, 24, 32))


@register("litepose_m", 7.8, tags=PAPER, short="M", crowdpose_ap=59.9, coco_ap=59.8)
def litepose_m() -> LitePoseConfig:
    """LitePose-M (released subnet, 448 px)."""
    return litepose(448, 16, (24, 48, 72, 120), (64, 40, 32))


@register("litepose_l", 13.7, tags=PAPER, short="L", crowdpose_ap=61.9, coco_ap=62.5)
def litepose_l() -> LitePoseConfig:
    """LitePose-L (released subnet, 512 px)."""
    return litepose(512, 24, (24, 64, 96, 160), (64, 40, 32))


@register("litepose_supernet")
def litepose_supernet() -> LitePoseConfig:
    """The largest LitePose member: the released supernet's widths at 512 px."""
    return litepose(512, 24, (32, 64, 96, 160), (64, 48, 32))


MULTIBRANCH_DEPTH = 4  # blocks per branch, as in each HRNet branch


@register("litepose_supernet_multibranch")
def litepose_supernet_multibranch() -> LitePoseConfig:
    """The largest member of the branch-removal space: litepose_supernet in the HRNet shape.

    Stage 2 carries a 1/4 branch, stages 3 and 4 a 1/4 and a 1/8 branch, each of 4 inverted
    residuals (kernel 7, expansion 6) as wide as stage 1 / stage 2; dropping every branch gives
    litepose_supernet.
    """
    single = litepose_supernet()
    block = single.stages[0].blocks[0]
    stages = tuple(
        dataclasses.replace(
            stage,
            branches=tuple(
                LiteBranchConfig(feature_stride=f, blocks=(block,) * MULTIBRANCH_DEPTH)
                for f in branch_feature_strides(s)
            ),
        )
        for s, stage in enumerate(single.stages)
    )
    return dataclasses.replace(single, stages=stages)


ABLATION_KERNEL_GMACS = {3: 3.77, 5: 4.14, 7: 4.69, 9: 5.33}


def _kernel_ablation(kernel: int, head: str = "fusion") -> LitePoseConfig:
    return litepose(512, 16, (16, 32, 48, 80), (32, 24, 16), kernel=kernel, head=head)


def _register_kernel_ablations() -> None:
    for kernel, gmacs in ABLATION_KERNEL_GMACS.items():

        def build(kernel=kernel) -> LitePoseConfig:
            return _kernel_ablation(kernel)

        build.__doc__ = (
            f"Kernel-size ablation: every depthwise kernel {kernel} (512 px, fusion head)."
        )
        register(f"litepose_ablation_k{kernel}", published_gmacs=gmacs)(build)


_register_kernel_ablations()


@register("litepose_ablation_plain_head", published_gmacs=4.06)
def litepose_ablation_plain_head() -> LitePoseConfig:
    """Head ablation: the kernel-7 ablation model with a plain deconv head (no skip deconvs)."""
    return _kernel_ablation(7, head="plain")
