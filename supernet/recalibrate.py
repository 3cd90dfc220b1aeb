"""Batch-norm recalibration of an active subnet before it is evaluated.

Statistics a supernet accumulates during training mix every subnet it trained; a subnet evaluated
with them is handicapped. Recalibration recomputes the population statistics of the layers the
active subnet uses, on a few calibration batches with fixed weights (fvcore's precise BN).
Layers the subnet does not use keep their statistics, so recalibrating one subnet never disturbs
another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from fvcore.nn.precise_bn import update_bn_stats
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


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


def export_recalibrated(
    supernet: nn.Module,
    config,
    images: Sequence[torch.Tensor] | None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """``config``'s standalone network with the supernet's weights, its BN statistics recomputed
    on ``images`` (batches; ``None``: kept as trained). Recalibrating the exported copy leaves the
    supernet's own statistics untouched for the next member."""
    model = supernet.export(config).to(device)
    if images is not None:
        batches = [batch.to(device) for batch in images]
        recalibrate_bn(model, batches, len(batches))
    return model
