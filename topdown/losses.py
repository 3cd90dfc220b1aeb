"""The top-down loss: SimpleBaseline's weighted heatmap MSE.

``0.5 * mean((w * (pred - target))^2)`` over crops, joints and cells, with ``w`` each joint's
weight (0 for a joint unlabelled or outside the crop), as SimpleBaseline's ``JointsMSELoss``.
"""

from __future__ import annotations

from torch import Tensor, nn


class TopDownLoss(nn.Module):
    """``loss(outputs: [heatmaps (N, K, h, w)], targets) -> {"loss", "heatmap_loss"}``; the
    targets are ``topdown.training_data.PersonCrops``' ``heatmaps`` and ``weights (N, K)``."""

    def forward(self, outputs: list[Tensor], targets: dict[str, Tensor]) -> dict[str, Tensor]:
        (pred,) = outputs
        weights = targets["weights"][..., None, None].to(pred.dtype)
        loss = 0.5 * ((pred - targets["heatmaps"]) * weights).pow(2).mean()
        return {"loss": loss, "heatmap_loss": loss.detach()}
