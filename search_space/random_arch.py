"""Random valid architectures of either family, for tests and for exploring beyond the presets.

This is a broad sampler over the *language* (every field varied within its valid range), not the
search space of the supernet: that one is declared separately with its own, narrower choices.
Seeded through a ``numpy.random.Generator`` so that a test's configs are reproducible.
"""

from __future__ import annotations

import numpy as np

from search_space.config import (
    HRNET_BLOCK_TYPES,
    KERNEL_SIZES,
    NUM_JOINTS_CHOICES,
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
from search_space.topdown import (
    DECONV_KERNELS,
    FINAL_KERNELS,
    TOPDOWN_BLOCKS,
    DeconvLayerConfig,
    MobileEncoderConfig,
    ResNetEncoderConfig,
    ResNetStageConfig,
    TopDownConfig,
    TopDownHeadConfig,
)

PLAIN_HEAD_STRIDES = ((2, 2, 2, 1), (2, 2, 1, 2), (2, 1, 2, 2))


def random_litepose(
    rng: np.random.Generator, input_sizes=(64, 96, 128), max_width: int = 48, max_depth: int = 3
) -> LitePoseConfig:
    head_kind = str(rng.choice(["fusion", "plain"]))
    strides = (2, 2, 2, 1) if head_kind == "fusion" else PLAIN_HEAD_STRIDES[rng.integers(3)]

    def width() -> int:
        return int(rng.integers(1, max_width // 4 + 1)) * 4

    def blocks() -> tuple[InvertedResidualConfig, ...]:
        return tuple(
            InvertedResidualConfig(
                kernel=int(rng.choice(KERNEL_SIZES)), expansion=int(rng.integers(1, 7))
            )
            for _ in range(int(rng.integers(1, max_depth + 1)))
        )

    # Half of the configs that can have branches (fusion head) get some, each kept with p = 1/2.
    branchy = head_kind == "fusion" and rng.random() < 0.5
    stages = []
    for s, stride in enumerate(strides):
        branches = tuple(
            LiteBranchConfig(feature_stride=f, blocks=blocks())
            for f in (branch_feature_strides(s) if branchy else ())
            if rng.random() < 0.5
        )
        stages.append(
            LiteStageConfig(
                channels=width(), stride=int(stride), blocks=blocks(), branches=branches
            )
        )
    return LitePoseConfig(
        input_size=int(rng.choice(input_sizes)),
        num_joints=int(rng.choice(NUM_JOINTS_CHOICES)),
        tag_dim=int(rng.integers(1, 3)),
        stem_channels=width(),
        stages=tuple(stages),
        head=DeconvHeadConfig(
            kind=head_kind,
            channels=(width(), width(), width()),
            final_kernel=int(rng.choice(KERNEL_SIZES)),
        ),
    )


def random_higherhrnet(
    rng: np.random.Generator,
    input_sizes=(64, 96, 128),
    max_base_width: int = 12,
    max_modules: int = 2,
    max_blocks: int = 2,
) -> HigherHRNetConfig:
    base = int(rng.integers(1, max_base_width // 2 + 1)) * 2
    block = str(rng.choice(HRNET_BLOCK_TYPES))
    stages = []
    for s in range(3):
        branches = s + 2
        modules = int(rng.integers(1, max_modules + 1))
        blocks = tuple(
            tuple(int(rng.integers(0, max_blocks + 1)) for _ in range(branches))
            for _ in range(modules)
        )
        stages.append(
            HRNetStageConfig(
                widths=tuple(base * 2**b for b in range(branches)), blocks=blocks, block=block
            )
        )
    return HigherHRNetConfig(
        input_size=int(rng.choice(input_sizes)),
        num_joints=int(rng.choice(NUM_JOINTS_CHOICES)),
        tag_dim=int(rng.integers(1, 3)),
        stem_planes=int(rng.integers(1, 5)) * 4,
        stem_blocks=int(rng.integers(1, 3)),
        stages=tuple(stages),
        head=HigherHRNetHeadConfig(
            final_conv_kernel=int(rng.choice([1, 3])),
            cat_output=bool(rng.integers(2)),
            deconv_channels=int(rng.integers(1, 5)) * 4,
            deconv_kernel=int(rng.choice([2, 3, 4])),
            num_basic_blocks=int(rng.integers(0, 2)),
        ),
    )


def random_config(rng: np.random.Generator, family: str | None = None) -> ArchConfig:
    """A random valid config of ``family`` ('higherhrnet', 'litepose', 'topdown', or None for
    either bottom-up family)."""
    family = family or str(rng.choice(["higherhrnet", "litepose"]))
    if family == "litepose":
        return random_litepose(rng)
    if family == "higherhrnet":
        return random_higherhrnet(rng)
    if family == "topdown":
        return random_topdown(rng)
    raise ValueError(f"unknown family {family!r}: use 'higherhrnet', 'litepose' or 'topdown'")


def random_topdown(rng: np.random.Generator, max_side: int = 128, max_width: int = 32):
    """A random top-down config: either encoder, 1-4 stages, as many deconvs as fit (at most
    3), every kernel, crops of any multiple of the encoder's stride up to ``max_side``."""

    def width() -> int:
        return int(rng.integers(1, max_width // 4 + 1)) * 4

    stages = []
    if rng.random() < 0.5:
        block = str(rng.choice(TOPDOWN_BLOCKS))
        for _ in range(int(rng.integers(1, 5))):
            stages.append(ResNetStageConfig(
                planes=width(), blocks=int(rng.integers(1, 3)), stride=int(rng.integers(1, 3))
            ))  # fmt: skip
        encoder = ResNetEncoderConfig(block=block, stem_channels=width(), stages=tuple(stages))
    else:
        for _ in range(int(rng.integers(1, 5))):
            blocks = tuple(
                InvertedResidualConfig(
                    kernel=int(rng.choice(KERNEL_SIZES)), expansion=int(rng.integers(1, 7))
                )
                for _ in range(int(rng.integers(1, 3)))
            )
            stages.append(
                LiteStageConfig(channels=width(), stride=int(rng.integers(1, 3)), blocks=blocks)
            )
        encoder = MobileEncoderConfig(stem_channels=width(), stages=tuple(stages))
    fit = min(encoder.stride.bit_length() - 1, 3)
    deconvs = tuple(
        DeconvLayerConfig(channels=width(), kernel=int(rng.choice(DECONV_KERNELS)))
        for _ in range(int(rng.integers(0, fit + 1)))
    )
    stride = encoder.stride
    sides = [stride * int(rng.integers(1, max(max_side // stride, 1) + 1)) for _ in range(2)]
    return TopDownConfig(
        input_size=(sides[0], sides[1]),
        num_joints=int(rng.choice(NUM_JOINTS_CHOICES)),
        encoder=encoder,
        head=TopDownHeadConfig(deconvs=deconvs, final_kernel=int(rng.choice(FINAL_KERNELS))),
    )
