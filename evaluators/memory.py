"""Memory a network will need, estimated from its layer plan before anything is built or traced.

A config within the architecture bounds can still be far too large for the machine (a 1024-px
input on a wide HigherHRNet, or a training batch of 64 of them): building and tracing it would
then run for minutes and end in the kernel's OOM killer, with half an export folder written. The
layer plan (``search_space.plan``) knows every feature map's channels and size, so the bytes of
the activations and parameters are a sum over its records, in microseconds, and the entry points
refuse such a config up front with the estimate, the limit and the fix.

The estimate counts each record's output once (float32) and, for training, keeps all of them for
the backward pass and adds gradients and Adam's two moments to the parameters. It is meant to be
of the right size, not exact: the allocator, in-place ReLUs and freed temporaries move the truth
by a small factor, which the ``headroom`` of ``check_memory`` absorbs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from posecore.errors import SettingError
from search_space.config import ArchConfig
from search_space.plan import Layer, layer_plan

BYTES_PER_VALUE = 4  # float32
ALLOCATING_OPS = ("conv", "dwconv", "deconv", "bn", "upsample", "maxpool", "add", "concat")


class InsufficientMemoryError(SettingError):
    """The network would not fit in this machine's memory."""


@dataclass(frozen=True)
class MemoryEstimate:
    activations: int  # bytes of the feature maps kept at once
    parameters: int  # bytes of weights (with gradients and optimiser state when training)

    @property
    def total(self) -> int:
        return self.activations + self.parameters


def layer_parameters(layer: Layer) -> int:
    """Weights of one record (convs, transposed convs, BN's scale and shift)."""
    if layer.op in ("conv", "dwconv", "deconv"):
        weights = layer.out_channels * (layer.in_channels // layer.groups) * layer.kernel**2
        return weights + (layer.out_channels if layer.bias else 0)
    if layer.op == "bn":
        return 2 * layer.out_channels
    return 0


def estimate_memory(config: ArchConfig, batch: int = 1, training: bool = False) -> MemoryEstimate:
    """Bytes ``config`` needs for a forward pass (``training``: forward, backward and an Adam
    step) on ``batch`` images of its input size."""
    plan = layer_plan(config)
    values = sum(
        layer.out_channels * layer.out_size[0] * layer.out_size[1]
        for layer in plan
        if layer.op in ALLOCATING_OPS
    )
    params = sum(layer_parameters(layer) for layer in plan)
    copies = 4 if training else 1  # weights, gradients, Adam's two moments
    return MemoryEstimate(values * batch * BYTES_PER_VALUE, params * copies * BYTES_PER_VALUE)


def available_memory() -> int:
    """Bytes this process may still allocate: Linux's ``MemAvailable``, else physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(
    config: ArchConfig,
    what: str,
    batch: int = 1,
    training: bool = False,
    limit: int | None = None,
    headroom: float = 1.5,
) -> MemoryEstimate:
    """Refuse ``config`` when ``headroom`` times its estimate exceeds ``limit`` (default: the
    memory available now), naming the estimate, the limit and the fix."""
    estimate = estimate_memory(config, batch, training)
    limit = available_memory() if limit is None else limit
    if estimate.total * headroom > limit:
        gib = 2**30
        per = f"a batch of {batch}" if training or batch > 1 else "one image"
        state = " and optimiser state" if training else ""
        raise InsufficientMemoryError(
            f"{what}: input_size={config.input_size} needs about {estimate.total / gib:.1f} GiB "
            f"for {per} ({estimate.activations / gib:.1f} GiB of feature maps, "
            f"{estimate.parameters / gib:.2f} GiB of weights{state}; "
            f"estimated from its layer plan, x{headroom:g} headroom), more than the "
            f"{limit / gib:.1f} GiB available: give a smaller input_size"
            + (" or trainer.batch_size" if training else "")
        )
    return estimate
