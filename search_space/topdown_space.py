"""A declared top-down search space: the genes of a MobileNet-encoder top-down network.

Around a largest member (``TopDownSpace.largest``, by default ``rethinking_mobile_demo``), a
member chooses:

* ``crop``: the crop (height, width), one of ``crops``, as the gene ``"<h>x<w>"`` (Optuna's
  categorical choices are plain values, and its storages keep no tuples);
* ``stage<s>.width`` (the largest member's channels times one of ``width_scales``, rounded to a
  multiple of 8 by ``search_space.channels.make_divisible``) and ``stage<s>.depth`` (1 to the
  largest member's depth) for every encoder stage, and ``stage<s>.block<b>.kernel`` /
  ``.expansion`` for every block it keeps;
* ``deconv<i>.width`` and ``deconv<i>.kernel`` for each deconvolution: the widths "Rethinking
  Deconvolution" cuts.

The stem, the strides and the number of deconvolutions are the largest member's. ``genes(config)``
reads a member's genes back; a config outside the space (another encoder, another depth of
decoder, a value the space does not offer) is refused naming the gene, and ``decode`` refuses a
gene the space does not have by its name.

The search driver (``arch_search.driver``, ``experiments.search family=topdown``) reads this
space through the interface it reads ``LitePoseSpace`` by: ``choices`` (every gene's values,
ascending in cost: crops by area, so the sampler's repair can lower a gene to fit),
``decode`` of every gene (block genes beyond a depth carried along, ignored), ``encode`` /
``contains``, ``smallest``, ``mutate_genes`` and ``crossover_genes``. Budgets are MACs *per
person* (one crop through the network), applied by the search, which may count MACs; this
module cannot (it sits below the evaluators).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from search_space.channels import make_divisible
from search_space.config import KERNEL_SIZES, InvertedResidualConfig, LiteStageConfig
from search_space.errors import ArchConfigError
from search_space.topdown import (
    DECONV_KERNELS,
    DeconvLayerConfig,
    MobileEncoderConfig,
    TopDownConfig,
)

DECONV_WIDTHS = (8, 16, 32, 64, 128, 256)


def crop_gene(crop: tuple[int, int]) -> str:
    """``(128, 96)`` -> ``"128x96"``: the crop as a gene value."""
    return f"{crop[0]}x{crop[1]}"


def _default_largest() -> TopDownConfig:
    from search_space.presets import get_preset  # the registry fills on import of the package

    return get_preset("rethinking_mobile_demo")


class SpaceError(ArchConfigError):
    """A gene or value outside a declared space (path = the gene's name)."""


@dataclass(frozen=True)
class TopDownSpace:
    largest: TopDownConfig = field(default_factory=_default_largest)
    crops: tuple[tuple[int, int], ...] = ((128, 96), (96, 64), (160, 128))
    width_scales: tuple[float, ...] = (0.5, 0.75, 1.0)
    kernels: tuple[int, ...] = (3, 5, 7)
    expansions: tuple[int, ...] = (3, 6)
    deconv_widths: tuple[int, ...] = DECONV_WIDTHS
    deconv_kernels: tuple[int, ...] = DECONV_KERNELS

    def __post_init__(self) -> None:
        if not isinstance(self.largest.encoder, MobileEncoderConfig):
            raise SpaceError("largest.encoder.kind", self.largest.encoder.kind,
                             "the declared top-down space has a mobilenet encoder")  # fmt: skip
        for crop in self.crops:  # every crop must suit the encoder's stride
            dataclasses.replace(self.largest, input_size=tuple(crop))
        for k in self.kernels:
            if k not in KERNEL_SIZES:
                raise SpaceError("kernels", k, f"must be in {KERNEL_SIZES}")

    # ------------------------------------------------------------------ the genes
    def choices(self) -> dict[str, tuple]:
        """Every gene and its allowed values (a member uses the block genes of the blocks it
        keeps)."""
        by_area = sorted({tuple(c) for c in self.crops}, key=lambda c: (c[0] * c[1], c))
        genes: dict[str, tuple] = {"crop": tuple(crop_gene(c) for c in by_area)}
        for s, stage in enumerate(self.largest.encoder.stages):
            genes[f"stage{s}.width"] = self.widths_of(s)
            genes[f"stage{s}.depth"] = tuple(range(1, stage.depth + 1))
            for b in range(stage.depth):
                genes[f"stage{s}.block{b}.kernel"] = tuple(sorted(self.kernels))
                genes[f"stage{s}.block{b}.expansion"] = tuple(sorted(self.expansions))
        for i in range(len(self.largest.head.deconvs)):
            genes[f"deconv{i}.width"] = tuple(sorted(self.deconv_widths))
            genes[f"deconv{i}.kernel"] = tuple(sorted(self.deconv_kernels))
        return genes

    def widths_of(self, stage: int) -> tuple[int, ...]:
        full = self.largest.encoder.stages[stage].channels
        return tuple(sorted({make_divisible(full * scale) for scale in self.width_scales}))

    def sample(self, rng: np.random.Generator) -> TopDownConfig:
        """A uniformly drawn member (each gene independently)."""
        chosen = {}
        choices = self.choices()
        for s, _ in enumerate(self.largest.encoder.stages):
            for name in (f"stage{s}.width", f"stage{s}.depth"):
                chosen[name] = _pick(rng, choices[name])
            for b in range(chosen[f"stage{s}.depth"]):
                for gene in ("kernel", "expansion"):
                    name = f"stage{s}.block{b}.{gene}"
                    chosen[name] = _pick(rng, choices[name])
        for name in choices:
            if name == "crop" or name.startswith("deconv"):
                chosen[name] = _pick(rng, choices[name])
        return self.decode(chosen)

    def decode(self, genes: dict) -> TopDownConfig:
        """The member with these genes; a gene the space lacks or a value it does not offer is
        an error naming the gene."""
        choices = self.choices()
        for name, value in genes.items():
            if name not in choices:
                raise SpaceError(name, value, "is not a gene of this top-down space; its genes: "
                                 "crop, stage<s>.width / .depth / .block<b>.kernel / .expansion, "
                                 "deconv<i>.width / .kernel")  # fmt: skip
            if value not in choices[name]:
                raise SpaceError(name, value, f"must be one of {list(choices[name])}")
        for name in self._needed(genes):
            if name not in genes:
                raise SpaceError(name, None, f"gene missing; allowed values {list(choices[name])}")
        stages = []
        for s, stage in enumerate(self.largest.encoder.stages):
            depth = genes[f"stage{s}.depth"]
            blocks = tuple(
                InvertedResidualConfig(kernel=genes[f"stage{s}.block{b}.kernel"],
                                       expansion=genes[f"stage{s}.block{b}.expansion"])
                for b in range(depth)
            )  # fmt: skip
            stages.append(LiteStageConfig(genes[f"stage{s}.width"], stage.stride, blocks))
        deconvs = tuple(
            DeconvLayerConfig(genes[f"deconv{i}.width"], genes[f"deconv{i}.kernel"])
            for i in range(len(self.largest.head.deconvs))
        )
        encoder = dataclasses.replace(self.largest.encoder, stages=tuple(stages))
        height, width = (int(side) for side in genes["crop"].split("x"))
        return dataclasses.replace(
            self.largest,
            input_size=(height, width),
            encoder=encoder,
            head=dataclasses.replace(self.largest.head, deconvs=deconvs),
        )

    def genes(self, config: TopDownConfig) -> dict:
        """The genes of a member; a config the space cannot make is refused naming the first
        gene (or structural field) that differs."""
        if not isinstance(config, TopDownConfig):
            raise SpaceError("family", getattr(config, "family", type(config).__name__),
                             "a top-down space holds top-down configs")  # fmt: skip
        if not isinstance(config.encoder, MobileEncoderConfig):
            raise SpaceError(
                "encoder.kind", config.encoder.kind, "the space's encoder is mobilenet"
            )
        largest = self.largest
        fixed = {
            "num_joints": (config.num_joints, largest.num_joints),
            "encoder.stem_channels": (config.encoder.stem_channels,
                                      largest.encoder.stem_channels),
            "encoder.stages": (len(config.encoder.stages), len(largest.encoder.stages)),
            "head.deconvs": (len(config.head.deconvs), len(largest.head.deconvs)),
            "head.final_kernel": (config.head.final_kernel, largest.head.final_kernel),
        }  # fmt: skip
        for path, (got, want) in fixed.items():
            if got != want:
                raise SpaceError(path, got, f"is fixed at {want} in this space")
        genes: dict = {"crop": crop_gene(config.input_size)}
        for s, stage in enumerate(config.encoder.stages):
            if stage.stride != largest.encoder.stages[s].stride:
                raise SpaceError(f"encoder.stages[{s}].stride", stage.stride,
                                 f"is fixed at {largest.encoder.stages[s].stride}")  # fmt: skip
            genes[f"stage{s}.width"] = stage.channels
            genes[f"stage{s}.depth"] = stage.depth
            for b, block in enumerate(stage.blocks):
                genes[f"stage{s}.block{b}.kernel"] = block.kernel
                genes[f"stage{s}.block{b}.expansion"] = block.expansion
        for i, layer in enumerate(config.head.deconvs):
            genes[f"deconv{i}.width"] = layer.channels
            genes[f"deconv{i}.kernel"] = layer.kernel
        self.decode(genes)  # every value checked against the space
        return genes

    def _needed(self, genes: dict) -> list[str]:
        """The genes a member with these depths reads (the crop, every stage's width and depth,
        the kept blocks' kernel and expansion, every deconvolution's width and kernel)."""
        needed = ["crop"]
        for s, _ in enumerate(self.largest.encoder.stages):
            needed += [f"stage{s}.width", f"stage{s}.depth"]
            for b in range(genes.get(f"stage{s}.depth", 0)):
                needed += [f"stage{s}.block{b}.kernel", f"stage{s}.block{b}.expansion"]
        for i in range(len(self.largest.head.deconvs)):
            needed += [f"deconv{i}.width", f"deconv{i}.kernel"]
        return needed

    # ------------------------------------------------------------------ what the search reads
    def encode(self, config: TopDownConfig) -> dict:
        """Every gene of ``choices`` for ``config`` (``genes``), the blocks beyond a stage's
        depth filled with their largest values (carried along, not read); a config outside the
        space is refused naming the gene."""
        kept = self.genes(config)
        return {name: kept.get(name, values[-1]) for name, values in self.choices().items()}

    def contains(self, config) -> bool:
        try:
            self.genes(config)
        except ArchConfigError:
            return False
        return True

    def smallest(self) -> TopDownConfig:
        """Every gene at its first (cheapest) choice: the search's reachability floor."""
        return self.decode({name: values[0] for name, values in self.choices().items()})

    def largest_member(self) -> TopDownConfig:
        return self.decode({name: values[-1] for name, values in self.choices().items()})

    def mutate_genes(self, genes: dict, rng: np.random.Generator, probability: float) -> dict:
        """Each gene drawn anew with ``probability`` (block genes beyond a depth included, so a
        depth grown back recovers them)."""
        out = dict(genes)
        for name, allowed in self.choices().items():
            if rng.random() < probability:
                out[name] = _pick(rng, allowed)
        return out

    def crossover_genes(self, a: dict, b: dict, rng: np.random.Generator) -> dict:
        return {name: a[name] if rng.random() < 0.5 else b[name] for name in self.choices()}


def _pick(rng: np.random.Generator, values: tuple):
    return values[int(rng.integers(len(values)))]
