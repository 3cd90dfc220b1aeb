"""Networks built from architecture configs: ``build_model(config) -> nn.Module``.

Every model returns HigherHRNet-style outputs ``[out_quarter, out_half]``:
``out_quarter: (N, K + K * tag_dim, H/4, W/4)`` (heatmaps then tags) and
``out_half: (N, K, H/2, W/2)`` (heatmaps); ``config.output_channels`` gives both channel counts.
"""

from posenets.builder import build_model

__all__ = ["build_model"]
