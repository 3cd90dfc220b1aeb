"""Batch-norm recalibration of an active subnet before it is evaluated.

Statistics a supernet accumulates during training mix every subnet it trained; a subnet evaluated
with them is handicapped. Recalibration recomputes the population statistics of the layers the
active subnet uses, on a few calibration batches with fixed weights (fvcore's precise BN).
Layers the subnet does not use keep their statistics, so recalibrating one subnet never disturbs
another.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from fvcore.nn.precise_bn import update_bn_stats
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import Dataset


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: Iterable[torch.Tensor], num_batches: int) -> None:
    """Recompute BN statistics from ``num_batches`` image batches (N, 3, H, W); leaves the model
    in eval mode."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    backup = {m: (m.running_mean.clone(), m.running_var.clone()) for m in layers}
    used: set[nn.Module] = set()
    hooks = [m.register_forward_pre_hook(lambda module, _: used.add(module)) for m in layers]
    model.train()
    try:
        update_bn_stats(model, images, num_iters=num_batches)
    finally:
        for hook in hooks:
            hook.remove()
        model.eval()
    for module in layers:
        if module not in used:
            module.running_mean, module.running_var = backup[module]


def calibration_images(
    samples: Dataset, size: int, num_batches: int, batch_size: int
) -> list[torch.Tensor]:
    """``num_batches`` image batches (N, 3, size, size) from a training set keyed by
    ``(epoch, index, size)`` (``bottomup.training_data.TrainingSamples``): its first images,
    augmented as in training, cycling through later epochs if the set is smaller. The same
    arguments give the same batches, so subnets recalibrated on them are comparable."""
    count = len(samples)
    keys = [(i // count, i % count, size) for i in range(num_batches * batch_size)]
    images = [samples[key]["image"] for key in keys]
    return [torch.stack(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
