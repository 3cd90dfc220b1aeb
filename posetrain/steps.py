"""What one training step computes: a strategy the trainer calls between zero_grad and step.

The trainer owns the loop, the optimiser, checkpoints and distribution; a step strategy owns the
forward and backward passes of one batch. ``StandardStep`` trains one network; the supernet's
sandwich step (``supernet/training.py``) trains several subnets per batch.

Protocol: ``step(model, image, targets, global_step) -> parts`` runs forward and backward and
returns the detached loss parts (``parts['loss']`` is checked for NaN / inf by the trainer before
any weight changes). ``manages_ddp``: if True the trainer does not wrap the model in
DistributedDataParallel and instead all-reduces the gradients itself after the step, which lets a
step run several differently shaped subnets without DDP's unused-parameter machinery.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn


class TrainStep(Protocol):
    manages_ddp: bool

    def __call__(
        self, model: nn.Module, image: Tensor, targets: dict[str, Tensor], global_step: int
    ) -> dict[str, Tensor]: ...


def autocast_for(image: Tensor, enabled: bool):
    """bf16 autocast on CUDA when enabled; a no-op context on CPU."""
    use = enabled and image.device.type == "cuda"
    return torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=use)


class StandardStep:
    """One forward, one loss, one backward."""

    manages_ddp = False

    def __init__(self, loss_fn: nn.Module, amp: bool = True):
        self.loss_fn = loss_fn
        self.amp = amp

    def __call__(self, model, image, targets, global_step):
        with autocast_for(image, self.amp):
            outputs = model(image)
        parts = self.loss_fn([o.float() for o in outputs], targets)
        if torch.isfinite(parts["loss"]):
            parts["loss"].backward()
        return {k: v.detach() for k, v in parts.items()}
