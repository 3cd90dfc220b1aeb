"""The building blocks both families use, each matching its reference layer for layer.

Layer order matters beyond accuracy: the MACs counters and the supernet's weight slicing rely on
these exact compositions (conv without bias, then BN, then activation).
"""

from __future__ import annotations

import torch
from torch import nn

from search_space.channels import make_divisible


def conv_bn(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    act: type[nn.Module] | None = None,
) -> nn.Sequential:
    """kxk conv (padding k//2, no bias) + BN (+ activation)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs); a 1x1 projection when the shape changes."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv_bn(in_ch, planes, 3, stride, act=nn.ReLU)
        self.conv2 = conv_bn(planes, planes, 3)
        self.shortcut = (
            conv_bn(in_ch, planes, 1, stride) if stride != 1 or in_ch != planes else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1, 3x3, 1x1 to 4x planes); a 1x1 projection when the shape changes."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1):
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = conv_bn(in_ch, planes, 1, act=nn.ReLU)
        self.conv2 = conv_bn(planes, planes, 3, stride, act=nn.ReLU)
        self.conv3 = conv_bn(planes, out_ch, 1)
        self.shortcut = (
            conv_bn(in_ch, out_ch, 1, stride) if stride != 1 or in_ch != out_ch else nn.Identity()
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


HRNET_BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def fuse_layer(in_ch: int, out_ch: int, levels: int) -> nn.Sequential:
    """HRNet's fusion step: bring a branch ``levels`` halvings of resolution down to another
    (levels > 0: a chain of 3x3 stride-2 convs) or up (levels < 0: 1x1 conv, BN, nearest
    upsampling, which is cheaper than convolving at the finer resolution)."""
    if levels < 0:
        return nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.Upsample(scale_factor=2 ** (-levels), mode="nearest"),
        )
    steps = [conv_bn(in_ch, in_ch, 3, 2, act=nn.ReLU) for _ in range(levels - 1)]
    steps.append(conv_bn(in_ch, out_ch, 3, 2))
    return nn.Sequential(*steps)


def inverted_residual_hidden(in_ch: int, expansion: int) -> int:
    """Hidden width of an inverted residual block (the LitePose release's rounding)."""
    return make_divisible(round(in_ch * expansion), 8)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, BN, ReLU6; kxk depthwise, BN, ReLU6; 1x1 project, BN.

    The residual is used when the stride is 1 and the widths match. The expand conv is kept even
    at expansion 1, as in the LitePose release.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, kernel: int, expansion: int):
        super().__init__()
        hidden = inverted_residual_hidden(in_ch, expansion)
        self.expand = conv_bn(in_ch, hidden, 1, act=nn.ReLU6)
        self.depthwise = conv_bn(hidden, hidden, kernel, stride, groups=hidden, act=nn.ReLU6)
        self.project = conv_bn(hidden, out_ch, 1)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return out + x if self.use_residual else out


class SeparableConv(nn.Sequential):
    """kxk depthwise, BN, ReLU, then a 1x1 pointwise conv without BN (LitePose's final layers)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int):
        super().__init__(
            nn.Conv2d(in_ch, in_ch, kernel, 1, kernel // 2, groups=in_ch, bias=False),
            nn.BatchNorm2d(in_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_ch, out_ch, 1, bias=False),
        )


def deconv_padding(kernel: int) -> tuple[int, int]:
    """(padding, output_padding) that make a stride-2 transposed conv exactly double the size."""
    return {4: (1, 0), 3: (1, 1), 2: (0, 0)}[kernel]


def deconv(in_ch: int, out_ch: int, kernel: int = 4) -> nn.ConvTranspose2d:
    padding, output_padding = deconv_padding(kernel)
    return nn.ConvTranspose2d(
        in_ch, out_ch, kernel, stride=2, padding=padding, output_padding=output_padding, bias=False
    )


OUTPUT_INIT_STD = 0.001


def init_output_conv(conv: nn.Conv2d) -> None:
    """Start an output conv near zero (HigherHRNet's std 0.001), so that initial heatmaps are
    about zero rather than unit-scale noise the network must first unlearn."""
    nn.init.normal_(conv.weight, std=OUTPUT_INIT_STD)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
