"""The declared search space of the LitePose supernet: choices per dimension, as data.

A member is described by its *genes*, a flat ``{name: choice}`` dict (``resolution``, ``stem``,
``stage2.width``, ``stage2.depth``, ``stage2.block3.kernel``, ``head1.width``, ...), which is what
samplers, mutation, crossover and Optuna see; ``decode`` turns genes into a validated
:class:`LitePoseConfig` and ``encode`` does the reverse. Kernel genes of blocks beyond a stage's
depth are carried along (so mutation can grow a stage back) but do not change the network.

Dimensions (reference section 2, widened as our search does): width multipliers {1, .75, .5, .25}
of the largest member's widths, rounded MobileNet-style to a multiple of 8; depth per stage
(the largest depth minus {0, 2, 4}); depthwise kernel per block {3, 5, 7}; input resolution
{256, ..., 512}; the three head widths. Expansion stays at the largest member's value, as in the
paper. Branch removal over a multi-branch backbone is not part of this space yet.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.layers import make_divisible
from search_space.config import (
    InvertedResidualConfig,
    LitePoseConfig,
    LiteStageConfig,
)
from search_space.errors import ArchConfigError
from search_space.presets import get_preset

Genes = dict[str, Any]


@dataclass(frozen=True)
class LitePoseSpace:
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

    def choices(self) -> dict[str, tuple]:
        """Every gene and its allowed values (ascending)."""
        big = self.largest
        genes: dict[str, tuple] = {
            "resolution": tuple(sorted(self.resolutions)),
            "stem": self.widths_of(big.stem_channels),
        }
        for s, stage in enumerate(big.stages, start=1):
            genes[f"stage{s}.width"] = self.widths_of(stage.channels)
            genes[f"stage{s}.depth"] = tuple(
                sorted({stage.depth - r for r in self.depth_reductions if stage.depth - r >= 1})
            )
            for b in range(stage.depth):
                genes[f"stage{s}.block{b}.kernel"] = tuple(sorted(self.kernel_sizes))
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
        return total * math.prod(len(c[f"head{i}.width"]) for i in range(3))

    # ------------------------------------------------------------------ genes <-> configs
    def decode(self, genes: Genes) -> LitePoseConfig:
        choices = self.choices()
        for name, allowed in choices.items():
            if name not in genes:
                raise ArchConfigError(name, None, f"gene missing; allowed values {allowed}")
            if genes[name] not in allowed:
                raise ArchConfigError(name, genes[name], f"must be one of {allowed}")
        big = self.largest
        expansion = big.stages[0].blocks[0].expansion
        stages = []
        for s, top in enumerate(big.stages, start=1):
            blocks = tuple(
                InvertedResidualConfig(
                    kernel=genes[f"stage{s}.block{b}.kernel"], expansion=expansion
                )
                for b in range(genes[f"stage{s}.depth"])
            )
            stages.append(
                LiteStageConfig(channels=genes[f"stage{s}.width"], stride=top.stride, blocks=blocks)
            )
        return dataclasses.replace(
            big,
            input_size=genes["resolution"],
            stem_channels=genes["stem"],
            stages=tuple(stages),
            head=dataclasses.replace(
                big.head, channels=tuple(genes[f"head{i}.width"] for i in range(3))
            ),
        )

    def encode(self, config: LitePoseConfig) -> Genes:
        """Genes of a member; raises an error naming the first dimension outside the space."""
        if not isinstance(config, LitePoseConfig):
            raise ArchConfigError("family", getattr(config, "family", None), "must be litepose")
        big = self.largest
        for name in ("num_joints", "tag_dim"):
            if getattr(config, name) != getattr(big, name):
                raise ArchConfigError(
                    name, getattr(config, name), f"the space has {getattr(big, name)}"
                )
        if config.head.kind != big.head.kind or config.head.final_kernel != big.head.final_kernel:
            raise ArchConfigError("head", config.head, f"the space's head is {big.head}")
        genes: Genes = {"resolution": config.input_size, "stem": config.stem_channels}
        expansion = big.stages[0].blocks[0].expansion
        for s, stage in enumerate(config.stages, start=1):
            genes[f"stage{s}.width"] = stage.channels
            genes[f"stage{s}.depth"] = stage.depth
            for b, block in enumerate(stage.blocks):
                if block.expansion != expansion:
                    raise ArchConfigError(
                        f"stages[{s - 1}].blocks[{b}].expansion",
                        block.expansion,
                        f"the space fixes {expansion}",
                    )
                genes[f"stage{s}.block{b}.kernel"] = block.kernel
            for b in range(stage.depth, big.stages[s - 1].depth):
                genes[f"stage{s}.block{b}.kernel"] = max(self.kernel_sizes)
        for i, width in enumerate(config.head.channels):
            genes[f"head{i}.width"] = width
        if self.decode(genes) != config:  # strides or anything else the genes do not carry
            raise ArchConfigError("stages", config.stages, "strides differ from the space's")
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
        genes = self.encode(config)
        for name, allowed in self.choices().items():
            if rng.random() < probability:
                genes[name] = _pick(rng, allowed)
        return self.decode(genes)

    def crossover(
        self, a: LitePoseConfig, b: LitePoseConfig, rng: np.random.Generator
    ) -> LitePoseConfig:
        """Each gene from either parent with equal chance."""
        ga, gb = self.encode(a), self.encode(b)
        return self.decode({n: ga[n] if rng.random() < 0.5 else gb[n] for n in ga})


def _pick(rng: np.random.Generator, allowed: tuple) -> Any:
    return allowed[int(rng.integers(len(allowed)))]
