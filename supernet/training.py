"""Supernet training: the sandwich rule with in-place distillation, on the generic trainer.

Each batch trains the largest subnet, the smallest (optional), and ``num_random`` random members.
The largest learns from the ground truth; every other subnet from the ground truth plus the
largest's heatmaps (detached), which the BigNAS / OFA line found to train small subnets far better
than the paper's one-random-subnet-per-step. Subnets are drawn from ``(seed, global step)``, so
every DDP rank trains the same subnets on its shard and a resumed run draws exactly the subnets the
interrupted one would have. Gradients of all subnets accumulate before one optimiser step; the
trainer averages them over ranks itself (``manages_ddp``), so subnets that leave parameters
unused need no ``find_unused_parameters``.

The input resolution is a per-batch choice (``resolution_for_batch``): the dataset builds the
batch's images and targets at that size; every subnet of the step sees the same batch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from bottomup.losses import in_place_distillation
from posecore.errors import SettingError
from posetrain.steps import autocast_for
from search_space.config import LitePoseConfig
from search_space.space import Genes, LitePoseSpace
from supernet.litepose_supernet import LitePoseSupernet

# The elastic dimensions a phase can open, named after their genes (``gene_dimension``).
DIMENSIONS = ("kernel", "depth", "width", "branch")


def gene_dimension(name: str) -> str | None:
    """The dimension a gene belongs to: ``kernel`` (``*.kernel``), ``branch`` (a branch's depth),
    ``depth`` (a stage's), ``width`` (stem, stage and head widths); ``None`` for the resolution,
    which the batch decides (``resolution_for_batch``), not the member."""
    if name == "resolution":
        return None
    if name.endswith(".kernel"):
        return "kernel"
    if ".branch" in name:
        return "branch"
    if name.endswith(".depth"):
        return "depth"
    return "width"


@dataclass(frozen=True)
class Phase:
    """From global step ``start`` on, members vary in the ``open`` dimensions only; every other
    gene keeps the largest member's choice. No open dimension: the largest alone is trained
    (once-for-all's first phase); all of ``DIMENSIONS``: the plain sandwich rule."""

    start: int
    open: tuple[str, ...] = DIMENSIONS


def check_phases(phases: Sequence[Phase], where: str = "sandwich.phases") -> tuple[Phase, ...]:
    """``phases`` validated: the first starts at step 0, starts increase, dimensions are known."""
    phases = tuple(phases)
    if not phases:
        raise SettingError(f"{where}: give at least one phase, e.g. [{{start: 0}}]")
    if phases[0].start != 0:
        raise SettingError(f"{where}[0].start={phases[0].start}: the first phase starts at 0")
    for i, (a, b) in enumerate(zip(phases, phases[1:], strict=False), start=1):
        if b.start <= a.start:
            raise SettingError(
                f"{where}[{i}].start={b.start}: must be after the previous phase's {a.start}"
            )
    for i, phase in enumerate(phases):
        unknown = sorted(set(phase.open) - set(DIMENSIONS))
        if unknown:
            raise SettingError(
                f"{where}[{i}].open={list(phase.open)}: {unknown} unknown; "
                f"choose from {list(DIMENSIONS)}"
            )
    return phases


def phase_at(phases: Sequence[Phase], global_step: int) -> Phase:
    """The phase step ``global_step`` belongs to (a function of the step, so resume is exact)."""
    return [p for p in phases if p.start <= global_step][-1]


def _restricted(space: LitePoseSpace, genes: Genes, largest: Genes, open: tuple[str, ...]):
    """``genes`` with every gene of a closed dimension set to the largest's (the resolution is
    kept: the batch, not the member, decides the input size during training)."""
    keep = (None, *open)
    return space.decode(
        {n: v if gene_dimension(n) in keep else largest[n] for n, v in genes.items()}
    )


def member_slots(num_random: int, with_smallest: bool = True) -> list[str]:
    """The slots of a step's members in training order: ``largest`` (the teacher), ``smallest``
    unless left out, ``random<i>``; ``metrics.csv`` has a ``loss_<slot>`` column for each."""
    fixed = ["largest", "smallest"] if with_smallest else ["largest"]
    return fixed + [f"random{i}" for i in range(num_random)]


def sandwich_members(
    space: LitePoseSpace,
    num_random: int,
    seed: int,
    global_step: int,
    open: tuple[str, ...] = DIMENSIONS,
    with_smallest: bool = True,
) -> list[tuple[str, LitePoseConfig]]:
    """``(slot, member)``: ``largest`` first (it is the teacher), then ``smallest`` (unless
    ``with_smallest`` is false), then ``random<i>``, varied in the ``open`` dimensions only; a
    member equal to an earlier one is left out (with nothing open, only the largest). With every
    dimension open the draws are those of ``space.sample``, the same whether or not the smallest
    is trained."""
    rng = np.random.default_rng([seed, global_step])
    largest = space.encode(space.largest_member())
    smallest = {n: c[0] for n, c in space.choices().items()}
    drawn = [space.encode(space.sample(rng)) for _ in range(num_random)]
    others = ([smallest] if with_smallest else []) + drawn
    slots = member_slots(num_random, with_smallest)
    members = [("largest", space.largest_member())] + [
        (slot, _restricted(space, genes, largest, open))
        for slot, genes in zip(slots[1:], others, strict=True)
    ]
    size = members[0][1].input_size  # the batch decides the size, not the member
    shapes = [dataclasses.replace(c, input_size=size) for _, c in members]
    return [m for i, m in enumerate(members) if shapes[i] not in shapes[:i]]


def sandwich_subnets(
    space: LitePoseSpace,
    num_random: int,
    seed: int,
    global_step: int,
    open: tuple[str, ...] = DIMENSIONS,
    with_smallest: bool = True,
) -> list[LitePoseConfig]:
    """The members of ``sandwich_members``, without their slots."""
    members = sandwich_members(space, num_random, seed, global_step, open, with_smallest)
    return [c for _, c in members]


def resolution_for_batch(resolutions: tuple[int, ...], seed: int):
    """A ``batch_extra`` function for the trainer: a resolution drawn from (seed, epoch, batch)."""

    def pick(epoch: int, batch: int) -> int:
        rng = np.random.default_rng([seed, epoch, batch, 7])
        return int(resolutions[int(rng.integers(len(resolutions)))])

    return pick


class SandwichStep:
    """One batch of the sandwich rule (see the module): per member forward, loss, backward, the
    gradients summed before the trainer's one optimiser step.

    Options (defaults: the plain rule with distillation from step 0):

    * ``member_weight``: weight of every other member's loss (pose + distillation) against the
      largest's 1; below 1 the shared weights follow the largest more.
    * ``distill_start`` / ``distill_ramp``: no distillation before ``distill_start`` (the largest
      is not yet a teacher worth copying), then its weight grows linearly to ``distill_weight``
      over ``distill_ramp`` steps.
    * ``phases``: progressive shrinking (``Phase``): which dimensions members vary in, by step.
    * ``smallest``: false leaves the smallest member out of every step. The sandwich trains it
      every step and a random member rarely, so members near the smallest end up better trained
      than the members between the extremes; for ranking members (the ``supernet`` proxy) every
      non-largest member should get the same share (docs/supernet.md).
    """

    manages_ddp = True

    def __init__(
        self,
        supernet: LitePoseSupernet,
        space: LitePoseSpace,
        loss_fn: nn.Module,
        num_random: int = 2,
        distill_weight: float = 1.0,
        seed: int = 0,
        amp: bool = True,
        member_weight: float = 1.0,
        distill_start: int = 0,
        distill_ramp: int = 0,
        phases: Sequence[Phase] = (Phase(0),),
        smallest: bool = True,
    ):
        if member_weight < 0 or distill_weight < 0:
            raise SettingError(
                f"sandwich.member_weight={member_weight}, distill_weight={distill_weight}: "
                "weights must be >= 0"
            )
        if distill_start < 0 or distill_ramp < 0:
            raise SettingError(
                f"sandwich.distill_start={distill_start}, distill_ramp={distill_ramp}: "
                "steps must be >= 0"
            )
        self.supernet = supernet
        self.space = space
        self.loss_fn = loss_fn
        self.num_random = num_random
        self.distill_weight = distill_weight
        self.seed = seed
        self.amp = amp
        self.member_weight = member_weight
        self.distill_start = distill_start
        self.distill_ramp = distill_ramp
        self.phases = check_phases(phases)
        self.num_joints = supernet.largest.num_joints
        self.distill_fn = in_place_distillation(self.num_joints)
        self.smallest = smallest
        self.names = member_slots(num_random, smallest)

    def distill_weight_at(self, global_step: int) -> float:
        if global_step < self.distill_start:
            return 0.0
        if not self.distill_ramp:
            return self.distill_weight
        return self.distill_weight * min(
            1.0, (global_step - self.distill_start + 1) / self.distill_ramp
        )

    def members(self, global_step: int) -> list[tuple[str, LitePoseConfig]]:
        phase = phase_at(self.phases, global_step)
        return sandwich_members(
            self.space, self.num_random, self.seed, global_step, phase.open, self.smallest
        )

    def __call__(
        self, model: nn.Module, image: Tensor, targets: dict[str, Tensor], global_step: int
    ) -> dict[str, Tensor]:
        """Detached parts: ``loss`` (the sum trained) and ``loss_<member>`` per member (NaN for
        a member the phase leaves out, so that every log row has the same columns)."""
        members = self.members(global_step)
        distill_weight = self.distill_weight_at(global_step)
        teacher: list[Tensor] | None = None
        totals = {f"loss_{name}": torch.tensor(math.nan) for name in self.names}
        trained: list[Tensor] = []
        for name, config in members:
            self.supernet.set_active(config)
            with autocast_for(image, self.amp):
                outputs = [o.float() for o in model(image)]
            loss = self.loss_fn(outputs, targets)["loss"]
            if teacher is None:
                teacher = [o.detach() for o in outputs]
            else:
                if distill_weight:
                    distill = sum(self.distill_fn(outputs, teacher, targets).values())
                    loss = loss + distill * distill_weight
                loss = loss * self.member_weight
            if not torch.isfinite(loss):
                return {"loss": loss.detach()}
            loss.backward()
            totals[f"loss_{name}"] = loss.detach()
            trained.append(loss.detach())
        self.supernet.set_active(members[0][1])
        return {"loss": sum(trained), **totals}
