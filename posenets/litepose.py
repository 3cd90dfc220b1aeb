"""LitePose built from a :class:`~search_space.config.LitePoseConfig` through its layer plan.

Follows the LitePose release layer for layer (``search_space.plan`` lists the layers): stem to 1/2,
four inverted residual stages, and the fusion (or plain) deconv head whose final separable convs
add a refined path and a raw path: ``out_quarter = Sep(y_1) + Sep(stage1)``,
``out_half = Sep(y_2) + Sep(stem)``.

Higher-resolution branches (``LiteStageConfig.branches``) make the backbone HRNet-shaped: beside
stage s's main path, a branch at 1/4 or 1/8 continues the latest feature map at that resolution,
and the stage ends with HRNet's fusion, every path receiving every other. The fused maps replace
the ones the branches started from, so the head's skips (and the 1/4 raw output) take the latest
feature at each resolution. The fusion sum has no ReLU: the paths end in MobileNetV2's linear
projections, whose outputs a ReLU would clip. Without branches none of these modules exist and the
network is exactly the single-branch LitePose.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

from posenets.network import PlanNetwork
from search_space.config import LitePoseConfig


class LitePose(PlanNetwork):
    """The standalone LitePose network of one config: what training, evaluation, export and the
    latency benchmark run, and what ``LitePoseSupernet.export`` fills with a member's weights.

    Built by ``posenets.build_model(config)``; its modules sit at the names of the config's layer
    plan (``stem``, ``stages``, ``branches``, ``fuse``, ``deconv_refined`` / ``deconv_skip`` /
    ``deconv_bn_relu``, ``final_refined`` / ``final_raw``), which are the LitePose release's
    state-dict keys. ``forward(image) -> [out_quarter, out_half]``."""

    def __init__(self, config: LitePoseConfig):
        super().__init__(config)
        self.fusion = config.head.kind == "fusion"

    @torch.no_grad()
    def fold_head_batchnorm_(self) -> None:
        """Fold each head BN into the transposed conv(s) before it (eval mode only).

        In the fusion head the BN follows the sum of two deconvs: BN(a + b) = s*a + s*b + t, so
        both take the scale s and the refined one also the shift t."""
        for i, bn_relu in enumerate(self.deconv_bn_relu):
            bn = bn_relu[0]
            if not isinstance(bn, nn.BatchNorm2d):
                continue  # already folded
            self.deconv_refined[i] = fuse_conv_bn_eval(self.deconv_refined[i], bn, transpose=True)
            if self.fusion:
                skip = self.deconv_skip[i]
                weight, bias = fuse_conv_bn_weights(
                    skip.weight, None, torch.zeros_like(bn.running_mean), bn.running_var,
                    bn.eps, bn.weight, torch.zeros_like(bn.bias), transpose=True,
                )  # fmt: skip
                skip.weight = weight
                skip.bias = bias
            bn_relu[0] = nn.Identity()
