"""Elastic layers: one weight tensor serves every smaller width and kernel size.

Once-for-all style. A layer is built at its largest shape; the active sub-layer takes the *first*
channels (so widths nest: the 16-channel subnet's filters are the 24-channel subnet's first 16),
and a depthwise kernel of size k is the centre k x k crop of the largest kernel, passed through a
learned k^2 x k^2 transform per size step (7 -> 5 -> 3) so that a small kernel is not forced to
equal the middle of a big one. Input widths are read from the incoming tensor.

Each elastic layer can return the plain tensors a static layer of the active shape would hold
(``active_weight`` and friends), which is how subnets are exported: the exported network is built
by ``posenets.build_model`` and only receives these tensors: ``static_state(record)`` is the state
dict of the static module a layer-plan record stands for.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from search_space.plan import Layer


def first(tensor: Tensor, *counts: int) -> Tensor:
    """The first ``counts[d]`` entries along each leading dim ``d``; the tensor itself where a
    count covers the whole dim, so that full-width layers record no slicing in autograd (its
    backward pass would allocate a zero gradient of the full shape and copy into it)."""
    for dim, count in enumerate(counts):
        if count != tensor.shape[dim]:
            tensor = tensor.narrow(dim, 0, count)
    return tensor


class ElasticConv2d(nn.Conv2d):
    """A dense (groups=1) conv whose active output width is ``active_out``."""

    def __init__(self, max_in: int, max_out: int, kernel: int, stride: int = 1):
        super().__init__(max_in, max_out, kernel, stride, kernel // 2, bias=False)
        self.active_out = max_out

    def active_weight(self, in_ch: int) -> Tensor:
        return first(self.weight, self.active_out, in_ch)

    def static_state(self, layer: Layer) -> dict[str, Tensor]:
        return {"weight": first(self.weight, layer.out_channels, layer.in_channels)}

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.active_weight(x.shape[1]), None, self.stride, self.padding)


class ElasticDepthwiseConv2d(nn.Module):
    """A depthwise conv with elastic width (from the input) and kernel size (``active_kernel``)."""

    def __init__(self, max_channels: int, kernel_sizes: tuple[int, ...], stride: int = 1):
        super().__init__()
        self.kernel_sizes = tuple(sorted(kernel_sizes, reverse=True))
        self.max_kernel = self.kernel_sizes[0]
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(max_channels, 1, self.max_kernel, self.max_kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        # One transform per step down (7->5, 5->3), initialised to the identity.
        self.transforms = nn.ParameterDict(
            {
                f"{big}to{small}": nn.Parameter(torch.eye(small * small))
                for big, small in zip(self.kernel_sizes, self.kernel_sizes[1:], strict=False)
            }
        )
        self.active_kernel = self.max_kernel

    def active_weight(self, channels: int, kernel: int | None = None) -> Tensor:
        """The first ``channels`` filters at ``kernel`` (default: the active kernel)."""
        kernel = self.active_kernel if kernel is None else kernel
        weight = first(self.weight, channels)
        for big, small in zip(self.kernel_sizes, self.kernel_sizes[1:], strict=False):
            if big <= kernel:
                break
            start = (big - small) // 2
            crop = weight[:, :, start : start + small, start : start + small]
            flat = crop.reshape(channels, small * small) @ self.transforms[f"{big}to{small}"]
            weight = flat.reshape(channels, 1, small, small)
        return weight

    def static_state(self, layer: Layer) -> dict[str, Tensor]:
        return {"weight": self.active_weight(layer.in_channels, layer.kernel)}

    def forward(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        k = self.active_kernel
        return F.conv2d(x, self.active_weight(channels), None, self.stride, k // 2, 1, channels)


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """Batch norm over the first ``C`` channels of its statistics and affine parameters."""

    def static_state(self, layer: Layer) -> dict[str, Tensor]:
        c = layer.out_channels
        state = {k: first(v, c) for k, v in self.state_dict().items() if k != "num_batches_tracked"}
        return {**state, "num_batches_tracked": self.num_batches_tracked}

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
        use_batch_stats = self.training or not self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        return F.batch_norm(
            x,
            first(self.running_mean, c),
            first(self.running_var, c),
            first(self.weight, c),
            first(self.bias, c),
            use_batch_stats,
            momentum,
            self.eps,
        )


class ElasticConvTranspose2d(nn.ConvTranspose2d):
    """A stride-2 transposed conv (kernel 4) with elastic input and output widths."""

    def __init__(self, max_in: int, max_out: int):
        super().__init__(max_in, max_out, 4, stride=2, padding=1, bias=False)
        self.active_out = max_out

    def active_weight(self, in_ch: int) -> Tensor:
        return first(self.weight, in_ch, self.active_out)

    def static_state(self, layer: Layer) -> dict[str, Tensor]:
        return {"weight": first(self.weight, layer.in_channels, layer.out_channels)}

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.active_weight(x.shape[1]), None, 2, 1)
