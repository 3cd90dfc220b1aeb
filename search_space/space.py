"""The declared search space of the LitePose supernet: choices per dimension, as data.

A member is described by its *genes*, a flat ``{name: choice}`` dict (``resolution``, ``stem``,
``stage2.width``, ``stage2.depth``, ``stage2.block3.kernel``, ``stage3.branch0.depth``,
``stage3.branch0.block1.kernel``, ``head1.width``, ...), which is what samplers, mutation,
crossover and Optuna see; ``decode`` turns genes into a validated :class:`LitePoseConfig` and
``encode`` does the reverse. Kernel genes of blocks beyond a stage's or branch's depth are carried
along (so mutation can grow it back) but do not change the network.

Dimensions (reference section 2, widened as our search does): width multipliers {1, .75, .5, .25}
of the largest member's widths, rounded MobileNet-style to a multiple of 8; depth per stage
(the largest depth minus {0, 2, 4}); depthwise kernel per block {3, 5, 7}; input resolution
{256, ..., 512}; the three head widths. Expansion stays at the largest member's value, as in the
paper.

Branch removal: the space has a branch for every higher-resolution branch of its largest member
(preset ``litepose_supernet_multibranch``: the HRNet shape, every branch of stages 2-4 present).
Gene ``stage{s}.branch{b}`` is stage s's branch at 1/(4 * 2**b), i.e. at stage b + 1's resolution
and width; its depth is 0 (the branch and its fusion layers are dropped) or the largest depth
minus {0, 2, 4}. A member with every branch at 0 is a single-branch LitePose network, so
LitePose-XS/S/M/L are members and the smallest member has no branches. The default largest
member, ``litepose_supernet``, has no branches, which gives the single-branch space of the paper.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_space.channels import make_divisible
from search_space.config import (
    STAGE_FEATURE_STRIDES,
    InvertedResidualConfig,
    LiteBranchConfig,
    LitePoseConfig,
    LiteStageConfig,
)
from search_space.errors import ArchConfigError
from search_space.presets import get_preset, resolve_arch

Genes = dict[str, Any]


@dataclass(frozen=True)
class LitePoseSpace:
    """The architectures a search may visit: the members of one supernet's space, as genes.

    Built around its largest member (default: ``litepose_supernet``) and the choices per
    dimension; the search driver and its samplers (random, evolution, Optuna) draw and change
    genes through ``sample`` / ``mutate`` / ``crossover`` / ``decode``, and ``encode`` maps a
    config back, refusing a non-member through ``check_member`` (the check the supernet makes,
    with the same messages). A supernet checkpoint stores its space (``supernet.checkpoint``)."""

    largest: LitePoseConfig = dataclasses.field(
        default_factory=lambda: get_preset("litepose_supernet")
    )
    width_multipliers: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25)
    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    depth_reductions: tuple[int, ...] = (0, 2, 4)
    resolutions: tuple[int, ...] = (256, 320, 384, 448, 512)

    # ------------------------------------------------------------------ choices
    def widths_of(self, largest_width: int) -> tuple[int, ...]:
        return tuple(sorted({make_divisible(largest_width * m) for m in self.width_multipliers}))

    def depths_of(self, largest_depth: int) -> tuple[int, ...]:
        """The nonzero depths (ascending) of a stage or branch at most ``largest_depth`` deep."""
        return tuple(sorted(d for d in {largest_depth - r for r in self.depth_reductions} if d > 0))

    def branches(self) -> list[tuple[str, int, int]]:
        """``(gene prefix, stage index, feature stride)`` of every branch the space can keep."""
        return [
            (f"stage{s + 1}.branch{_branch_index(b.feature_stride)}", s, b.feature_stride)
            for s, stage in enumerate(self.largest.stages)
            for b in stage.branches
        ]

    def choices(self) -> dict[str, tuple]:
        """Every gene and its allowed values (ascending)."""
        big = self.largest
        kernels = tuple(sorted(self.kernel_sizes))
        genes: dict[str, tuple] = {
            "resolution": tuple(sorted(self.resolutions)),
            "stem": self.widths_of(big.stem_channels),
        }
        for s, stage in enumerate(big.stages, start=1):
            genes[f"stage{s}.width"] = self.widths_of(stage.channels)
            genes[f"stage{s}.depth"] = self.depths_of(stage.depth)
            for b in range(stage.depth):
                genes[f"stage{s}.block{b}.kernel"] = kernels
        for prefix, s, stride in self.branches():
            depth = big.stages[s].branch(stride).depth
            genes[f"{prefix}.depth"] = (0, *self.depths_of(depth))
            for b in range(depth):
                genes[f"{prefix}.block{b}.kernel"] = kernels
        for i, width in enumerate(big.head.channels):
            genes[f"head{i}.width"] = self.widths_of(width)
        return genes

    def size(self) -> int:
        """The number of distinct architectures in the space."""
        c = self.choices()
        total = len(c["resolution"]) * len(c["stem"])
        k = len(self.kernel_sizes)
        for s in range(1, len(self.largest.stages) + 1):
            total *= len(c[f"stage{s}.width"]) * sum(k**d for d in c[f"stage{s}.depth"])
        for prefix, _, _ in self.branches():
            total *= sum(k**d for d in c[f"{prefix}.depth"])  # depth 0: one way, dropped
        return total * math.prod(len(c[f"head{i}.width"]) for i in range(3))

    def allowed(self) -> dict[str, tuple]:
        """What a member may take in every dimension: the genes' choices, and the fixed expansion
        of every block (not a gene: the space keeps the largest member's)."""
        allowed = self.choices()
        expansion = (self.largest.stages[0].blocks[0].expansion,)
        for name in [n for n in allowed if n.endswith(".kernel")]:
            allowed[name.removesuffix(".kernel") + ".expansion"] = expansion
        return allowed

    # ------------------------------------------------------------------ genes <-> configs
    def decode(self, genes: Genes) -> LitePoseConfig:
        choices = self.choices()
        for name, allowed in choices.items():
            if name not in genes:
                raise ArchConfigError(name, None, f"gene missing; allowed values {allowed}")
            if genes[name] not in allowed:
                raise refusal(name, genes[name], allowed)
        big = self.largest
        expansion = big.stages[0].blocks[0].expansion

        def blocks(prefix: str) -> tuple[InvertedResidualConfig, ...]:
            return tuple(
                InvertedResidualConfig(
                    kernel=genes[f"{prefix}.block{b}.kernel"], expansion=expansion
                )
                for b in range(genes[f"{prefix}.depth"])
            )

        branches: dict[int, list[LiteBranchConfig]] = {s: [] for s in range(len(big.stages))}
        for prefix, s, stride in self.branches():
            if genes[f"{prefix}.depth"] > 0:
                branches[s].append(LiteBranchConfig(feature_stride=stride, blocks=blocks(prefix)))
        stages = tuple(
            LiteStageConfig(
                channels=genes[f"stage{s + 1}.width"],
                stride=top.stride,
                blocks=blocks(f"stage{s + 1}"),
                branches=tuple(branches[s]),
            )
            for s, top in enumerate(big.stages)
        )
        return dataclasses.replace(
            big,
            input_size=genes["resolution"],
            stem_channels=genes["stem"],
            stages=stages,
            head=dataclasses.replace(
                big.head, channels=tuple(genes[f"head{i}.width"] for i in range(3))
            ),
        )

    def encode(self, config: LitePoseConfig) -> Genes:
        """Genes of a member; raises an error naming the first gene outside the space and its
        allowed values (``check_member``, the check the supernet makes too)."""
        dims = check_member(config, self.largest, self.allowed())
        filler = max(self.kernel_sizes)  # kernels of blocks beyond the depth: carried along
        genes = {name: dims.get(name, filler) for name in self.choices()}
        if self.decode(genes) != config:  # anything else the genes do not carry
            raise ArchConfigError("stages", config.stages, "differs from the space's members")
        return genes

    def contains(self, config: LitePoseConfig) -> bool:
        try:
            self.encode(config)
        except ArchConfigError:
            return False
        return True

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: np.random.Generator) -> LitePoseConfig:
        """Uniform over every gene (not over distinct architectures)."""
        return self.decode({n: _pick(rng, c) for n, c in self.choices().items()})

    def smallest(self) -> LitePoseConfig:
        """Every gene at its smallest choice: the cheapest member."""
        return self.decode({n: c[0] for n, c in self.choices().items()})

    def largest_member(self) -> LitePoseConfig:
        """Every gene at its largest choice: the supernet itself at the top resolution."""
        return self.decode({n: c[-1] for n, c in self.choices().items()})

    def mutate(
        self, config: LitePoseConfig, rng: np.random.Generator, probability: float = 0.1
    ) -> LitePoseConfig:
        """Resample each gene with ``probability`` (the paper's evolution uses 0.1)."""
        return self.decode(self.mutate_genes(self.encode(config), rng, probability))

    def crossover(
        self, a: LitePoseConfig, b: LitePoseConfig, rng: np.random.Generator
    ) -> LitePoseConfig:
        """Each gene from either parent with equal chance."""
        return self.decode(self.crossover_genes(self.encode(a), self.encode(b), rng))

    def mutate_genes(self, genes: Genes, rng: np.random.Generator, probability: float) -> Genes:
        """``mutate`` on genes: the kernels of blocks beyond a depth are kept as they were (a
        config's ``encode`` would reset them), so a depth grown back recovers them."""
        out = dict(genes)
        for name, allowed in self.choices().items():
            if rng.random() < probability:
                out[name] = _pick(rng, allowed)
        return out

    def crossover_genes(self, a: Genes, b: Genes, rng: np.random.Generator) -> Genes:
        return {n: a[n] if rng.random() < 0.5 else b[n] for n in self.choices()}


# ---------------------------------------------------------------------------------- membership
@dataclass(frozen=True)
class AtMost:
    """Allowed values of a dimension a supernet slices: any integer in ``minimum..maximum``."""

    maximum: int
    minimum: int = 1

    def __contains__(self, value: object) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and (self.minimum <= value <= self.maximum)
        )

    def __str__(self) -> str:
        return f"{self.minimum}..{self.maximum}"


Allowed = tuple | AtMost


def refusal(gene: str, value: object, allowed: Allowed) -> ArchConfigError:
    """The one message for a value outside a space or a supernet: the gene, its value and the
    allowed values, e.g. ``stage2.width=48: must be one of (32, 64)`` or ``... one of 1..64``."""
    return ArchConfigError(gene, value, f"must be one of {allowed}")


def member_dims(config: LitePoseConfig, largest: LitePoseConfig) -> Genes:
    """Every dimension in which ``config`` may differ from ``largest``, as genes (the space's,
    plus each kept block's ``.expansion``); raises for a difference that is no dimension (family,
    outputs, head type, strides, a branch where ``largest`` has none)."""
    if not isinstance(config, LitePoseConfig):
        raise ArchConfigError("family", getattr(config, "family", None), "must be litepose")
    for name in ("num_joints", "tag_dim"):
        if getattr(config, name) != getattr(largest, name):
            raise ArchConfigError(
                name, getattr(config, name), f"must be {getattr(largest, name)}, the largest's"
            )
    for name in ("kind", "final_kernel"):
        if getattr(config.head, name) != getattr(largest.head, name):
            raise ArchConfigError(
                f"head.{name}",
                getattr(config.head, name),
                f"must be {getattr(largest.head, name)!r}",
            )
    dims: Genes = {"resolution": config.input_size, "stem": config.stem_channels}
    for s, (stage, top) in enumerate(zip(config.stages, largest.stages, strict=True)):
        if stage.stride != top.stride:
            raise ArchConfigError(f"stages[{s}].stride", stage.stride, f"must be {top.stride}")
        dims[f"stage{s + 1}.width"] = stage.channels
        _block_dims(dims, f"stage{s + 1}", stage.blocks)
    for s, (stage, top) in enumerate(zip(config.stages, largest.stages, strict=True)):
        for i, branch in enumerate(stage.branches):
            if top.branch(branch.feature_stride) is None:
                raise ArchConfigError(
                    f"stages[{s}].branches[{i}].feature_stride",
                    branch.feature_stride,
                    f"stage {s + 1} of the largest member has branches at feature strides "
                    f"{[b.feature_stride for b in top.branches]}",
                )
        for b in top.branches:
            kept = stage.branch(b.feature_stride)
            prefix = f"stage{s + 1}.branch{_branch_index(b.feature_stride)}"
            _block_dims(dims, prefix, kept.blocks if kept is not None else ())
    for i, width in enumerate(config.head.channels):
        dims[f"head{i}.width"] = width
    return dims


def _block_dims(dims: Genes, prefix: str, blocks: tuple[InvertedResidualConfig, ...]) -> None:
    dims[f"{prefix}.depth"] = len(blocks)
    for b, block in enumerate(blocks):
        dims[f"{prefix}.block{b}.kernel"] = block.kernel
        dims[f"{prefix}.block{b}.expansion"] = block.expansion


def check_member(
    config: LitePoseConfig, largest: LitePoseConfig, allowed: Mapping[str, Allowed]
) -> Genes:
    """The membership check of spaces and supernets alike: ``config``'s dimensions
    (``member_dims``), each within ``allowed`` (a dimension ``allowed`` does not name is free);
    the first one outside raises :func:`refusal`. Depths come before their blocks' genes, so a
    stage or branch too deep is reported by its depth."""
    dims = member_dims(config, largest)
    for name, value in dims.items():
        options = allowed.get(name)
        if options is not None and value not in options:
            raise refusal(name, value, options)
    return dims


def slicing_allowed(largest: LitePoseConfig, kernel_sizes: tuple[int, ...]) -> dict[str, Allowed]:
    """What a weight-sharing supernet built on ``largest`` can slice, dimension by dimension:
    any width, depth and expansion up to the largest's, the kernels it holds, any resolution."""
    allowed: dict[str, Allowed] = {"stem": AtMost(largest.stem_channels)}

    def blocks(prefix: str, top: tuple[InvertedResidualConfig, ...], minimum: int) -> None:
        allowed[f"{prefix}.depth"] = AtMost(len(top), minimum)
        for b, block in enumerate(top):
            allowed[f"{prefix}.block{b}.kernel"] = tuple(kernel_sizes)
            allowed[f"{prefix}.block{b}.expansion"] = AtMost(block.expansion)

    for s, stage in enumerate(largest.stages):
        allowed[f"stage{s + 1}.width"] = AtMost(stage.channels)
        blocks(f"stage{s + 1}", stage.blocks, 1)
        for b in stage.branches:
            blocks(f"stage{s + 1}.branch{_branch_index(b.feature_stride)}", b.blocks, 0)
    for i, width in enumerate(largest.head.channels):
        allowed[f"head{i}.width"] = AtMost(width)
    return allowed


def _branch_index(feature_stride: int) -> int:
    """Branch b runs at stage b + 1's resolution (1/4, 1/8), as HRNet numbers branches."""
    return STAGE_FEATURE_STRIDES.index(feature_stride)


def largest_member_of(supernet: str, **overrides) -> LitePoseConfig:
    """The largest member a space is built around: a LitePose preset or arch file (``overrides``
    replace top-level fields); anything else is an error naming the ``supernet`` setting."""
    largest = resolve_arch(supernet, **overrides)
    if not isinstance(largest, LitePoseConfig):
        raise ArchConfigError("supernet", supernet, "must be a LitePose architecture")
    return largest


def _pick(rng: np.random.Generator, allowed: tuple) -> Any:
    return allowed[int(rng.integers(len(allowed)))]
