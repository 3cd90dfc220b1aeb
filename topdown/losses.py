"""The top-down loss: SimpleBaseline's weighted heatmap MSE.

``0.5 * mean((w * (pred - target))^2)`` over crops, joints and cells, with ``w`` each joint's
weight (0 for a joint unlabelled or outside the crop), as SimpleBaseline's ``JointsMSELoss``.
``foreground_weight`` (0, SimpleBaseline's loss, unless the loss group sets it: the CPU demo's
``loss=demo`` has 20) weighs each cell's squared error by ``1 + foreground_weight * target`` as
the bottom-up heatmap loss does (``bottomup.losses.heatmap_loss``), so a short run leaves the
all-zero plateau as soon in either family.
"""

from __future__ import annotations

from torch import Tensor, nn


class TopDownLoss(nn.Module):
    """``loss(outputs: [heatmaps (N, K, h, w)], targets) -> {"loss", "heatmap_loss"}``; the
    targets are ``topdown.training_data.PersonCrops``' ``heatmaps`` and ``weights (N, K)``."""

    def __init__(self, foreground_weight: float = 0.0):
        super().__init__()
        self.foreground_weight = foreground_weight

    def forward(self, outputs: list[Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
        (pred,) = outputs
        target = targets["heatmaps"]
        weights = targets["weights"][..., None, None].to(pred.dtype)
        squared = ((pred - target) * weights).pow(2)
        if self.foreground_weight:
            squared = squared * (1 + self.foreground_weight * target)
        loss = 0.5 * squared.mean()
        return {"loss": loss, "heatmap_loss": loss.detach()}
