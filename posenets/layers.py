"""Modules made from layer-plan records (``search_space.plan``) and the runner that wires them.

``build_modules`` puts one module per record at the record's name (containers named by digits
are ``nn.Sequential``, others ``nn.ModuleDict``), so the state-dict keys follow from the plan and
match the LitePose / HigherHRNet releases layer for layer. ``PlanRunner`` runs a plan's records
in order, each on the outputs of its ``inputs``, dropping a tensor after its last reader. The
standalone networks (``posenets.litepose``, ``posenets.higherhrnet``) make static modules; the
supernet makes elastic ones from its largest member's plan and runs the active member's plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from search_space.plan import INPUT, Layer, output_names

OUTPUT_INIT_STD = 0.001


def init_output_conv(conv: nn.Conv2d) -> None:
    """Start an output conv near zero (HigherHRNet's std 0.001), so that initial heatmaps are
    about zero rather than unit-scale noise the network must first unlearn."""
    nn.init.normal_(conv.weight, std=OUTPUT_INIT_STD)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def static_module(layer: Layer) -> nn.Module:
    """The plain torch module of one record (conv without bias unless the record has one)."""
    op = layer.op
    if op in ("conv", "dwconv"):
        return nn.Conv2d(
            layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding,
            groups=layer.groups, bias=layer.bias,
        )  # fmt: skip
    if op == "deconv":
        return nn.ConvTranspose2d(
            layer.in_channels, layer.out_channels, layer.kernel, stride=layer.stride,
            padding=layer.padding, output_padding=layer.output_padding, bias=False,
        )  # fmt: skip
    if op == "bn":
        return nn.BatchNorm2d(layer.out_channels)
    if op == "relu":
        return nn.ReLU(inplace=True)
    if op == "relu6":
        return nn.ReLU6(inplace=True)
    if op == "upsample":
        return nn.Upsample(scale_factor=layer.stride, mode="nearest")
    if op == "maxpool":
        return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding)
    raise ValueError(f"record {layer.name}: op {op!r} has no module")


def _parent(root: nn.Module, path: str) -> tuple[nn.Module, str]:
    """The container that holds ``path``'s module (created on the way), and the leaf name."""
    *parents, leaf = path.split(".")
    node = root
    for seg, child in zip(parents, [*parents[1:], leaf], strict=False):
        if seg not in node._modules:
            node.add_module(seg, nn.Sequential() if child.isdigit() else nn.ModuleDict())
        node = node._modules[seg]
    return node, leaf


def build_modules(
    root: nn.Module, plan: Iterable[Layer], make: Callable[[Layer], nn.Module] = static_module
) -> None:
    """Add ``make(record)`` to ``root`` at each record's module path, in plan order (the order
    the parameters are initialised in). A module several records share is made once."""
    for layer in plan:
        if layer.module is None:
            continue
        parent, leaf = _parent(root, layer.module)
        if leaf not in parent._modules:
            parent.add_module(leaf, make(layer))


class PlanRunner:
    """Runs a plan's records in order on the modules of ``root``: ``runner(root, image)``.

    Modules are looked up by name at every call, so replacing one (BN folding) takes effect."""

    def __init__(self, plan: tuple[Layer, ...]):
        last_use: dict[str, int] = {}
        for i, layer in enumerate(plan):
            for name in layer.inputs:
                last_use[name] = i
        self.outputs = output_names(plan)
        keep = set(self.outputs)
        frees: list[list[str]] = [[] for _ in plan]
        for name, i in last_use.items():
            if name not in keep:
                frees[i].append(name)
        self.steps = [
            (layer.name, layer.module, layer.op, layer.inputs, tuple(frees[i]))
            for i, layer in enumerate(plan)
        ]

    def __call__(self, root: nn.Module, x: Tensor) -> list[Tensor]:
        env = {INPUT: x}
        for name, module, op, inputs, frees in self.steps:
            if op == "add":
                y = env[inputs[0]]
                for other in inputs[1:]:
                    y = y + env[other]
            elif op == "concat":
                y = torch.cat([env[i] for i in inputs], dim=1)
            else:
                y = root.get_submodule(module)(env[inputs[0]])
            env[name] = y
            for gone in frees:
                del env[gone]
        return [env[name] for name in self.outputs]
