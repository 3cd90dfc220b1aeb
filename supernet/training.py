"""Supernet training: the sandwich rule with in-place distillation, on the generic trainer.

Each batch trains the largest subnet, the smallest, and ``num_random`` random members. The largest
learns from the ground truth; every other subnet from the ground truth plus the largest's
heatmaps (detached), which the BigNAS / OFA line found to train small subnets far better than
the paper's one-random-subnet-per-step. Subnets are drawn from ``(seed, global step)``, so every
DDP rank trains the same subnets on its shard and a resumed run draws exactly the subnets the
interrupted one would have. Gradients of all subnets accumulate before one optimiser step; the
trainer averages them over ranks itself (``manages_ddp``), so subnets that leave parameters
unused need no ``find_unused_parameters``.

The input resolution is a per-batch choice (``resolution_for_batch``): the dataset builds the
batch's images and targets at that size; every subnet of the step sees the same batch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_space.config import LitePoseConfig
from search_space.space import LitePoseSpace
from supernet.litepose_supernet import LitePoseSupernet
from training.steps import autocast_for


def sandwich_subnets(
    space: LitePoseSpace, num_random: int, seed: int, global_step: int
) -> list[LitePoseConfig]:
    """Largest first (it is the teacher), then the smallest, then random members."""
    rng = np.random.default_rng([seed, global_step])
    return [space.largest_member(), space.smallest()] + [
        space.sample(rng) for _ in range(num_random)
    ]


def resolution_for_batch(resolutions: tuple[int, ...], seed: int):
    """A ``batch_extra`` function for the trainer: a resolution drawn from (seed, epoch, batch)."""

    def pick(epoch: int, batch: int) -> int:
        rng = np.random.default_rng([seed, epoch, batch, 7])
        return int(resolutions[int(rng.integers(len(resolutions)))])

    return pick


class SandwichStep:
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
    ):
        self.supernet = supernet
        self.space = space
        self.loss_fn = loss_fn
        self.num_random = num_random
        self.distill_weight = distill_weight
        self.seed = seed
        self.amp = amp
        self.num_joints = supernet.largest.num_joints

    def __call__(
        self, model: nn.Module, image: Tensor, targets: dict[str, Tensor], global_step: int
    ) -> dict[str, Tensor]:
        subnets = sandwich_subnets(self.space, self.num_random, self.seed, global_step)
        teacher: list[Tensor] | None = None
        totals: dict[str, Tensor] = {}
        for i, config in enumerate(subnets):
            self.supernet.set_active(config)
            with autocast_for(image, self.amp):
                outputs = [o.float() for o in model(image)]
            parts = self.loss_fn(outputs, targets)
            loss = parts["loss"]
            if teacher is None:
                teacher = [outputs[0][:, : self.num_joints].detach(), outputs[1].detach()]
            else:
                distill = F.mse_loss(outputs[0][:, : self.num_joints], teacher[0]) + F.mse_loss(
                    outputs[1], teacher[1]
                )
                parts["distill"] = distill * self.distill_weight
                loss = loss + parts["distill"]
            if not torch.isfinite(loss):
                return {"loss": loss.detach()}
            loss.backward()
            name = "largest" if i == 0 else "smallest" if i == 1 else f"random{i - 2}"
            totals[f"loss_{name}"] = loss.detach()
        totals["loss"] = sum(totals.values())
        self.supernet.set_active(subnets[0])
        return totals
