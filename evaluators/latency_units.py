"""The units a latency table times: a network's layer records grouped as runtimes fuse them,
their keys, and every distinct unit a search space can produce.

What a *layer* is comes from the layer plan (``search_space.plan.layer_plan``): one record per
layer with its op, channels, kernel, stride, groups, padding and input size. Runtimes fuse a BN
and an activation into the conv before them, so the table times *units* (a record and the BN /
activation records that follow it); a unit's *key* is what changes its cost, so two units that
compute the same thing share one entry (docs/latency.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from posecore.errors import UserError
from search_space.plan import Layer, layer_plan

KEY_FORMAT = 1  # of the keys and the space fingerprint; a table of another one is refused


class LatencyTableError(UserError, ValueError):
    """A table that does not fit the run (runtime, threads, space, format) or lacks a layer."""


# Records that runtimes fuse into the layer before them (ONNX Runtime folds a BN into its conv
# and runs the activation inside the conv kernel): timed with that layer, as one unit.
FOLLOWERS = ("bn", "relu", "relu6")


@dataclass(frozen=True)
class Unit:
    """One timed unit: a layer record and the BN / activation records that follow it (each the
    sole reader of the one before), as runtimes fuse them. ``name`` is its first record's."""

    layers: tuple[Layer, ...]

    @property
    def name(self) -> str:
        return self.layers[0].name

    @property
    def op(self) -> str:
        return "+".join(layer.op for layer in self.layers)

    @property
    def key(self) -> str:
        """The first record's ``Layer.key`` and everything else that changes its cost (padding,
        output padding, bias, number of inputs), then the ops fused after it:
        ``conv:24>144:k1s1g1p0o0b0:n1:256x256+bn+relu6``."""
        first = self.layers[0]
        h, w = first.in_size
        text = (
            f"{first.op}:{first.in_channels}>{first.out_channels}:k{first.kernel}s{first.stride}"
            f"g{first.groups}p{first.padding}o{first.output_padding}b{int(first.bias)}:"
            f"n{len(first.inputs)}:{h}x{w}"
        )
        return "+".join([text, *(layer.op for layer in self.layers[1:])])

    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        first = self.layers[0]
        if first.op == "concat":
            raise LatencyTableError(
                f"layer {first.name}: concat layers (HigherHRNet's head) are not timed per layer; "
                "latency tables cover the LitePose family"
            )
        return tuple((1, first.in_channels, *first.in_size) for _ in first.inputs)

    def build(self) -> nn.Module:
        """The unit as one module, of the modules ``build_model`` makes for its records
        (``posenets.layers.static_module``): a ``nn.Sequential`` (so ``posenets.io.fold_batchnorm``
        folds its BN as in a whole-network export), after a sum for an ``add``."""
        from posenets.layers import static_module

        first, *rest = self.layers
        tail = [static_module(layer) for layer in rest]
        if first.op == "add":
            return _SumThen(nn.Sequential(*tail))
        return nn.Sequential(static_module(first), *tail)

    def spec(self) -> LayerSpec:
        return LayerSpec(self.key, self.op, self.build, self.input_shapes())


class _SumThen(nn.Module):
    def __init__(self, tail: nn.Module):
        super().__init__()
        self.tail = tail

    def forward(self, *xs):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return self.tail(y)


def plan_units(plan: tuple[Layer, ...]) -> list[Unit]:
    """The plan's records grouped into timed units (see :class:`Unit`), in plan order."""
    readers: dict[str, int] = {}
    for layer in plan:
        for name in layer.inputs:
            readers[name] = readers.get(name, 0) + 1
    units: list[list[Layer]] = []
    for layer in plan:
        previous = units[-1][-1] if units else None
        joins = (
            previous is not None
            and layer.op in FOLLOWERS
            and layer.inputs == (previous.name,)
            and readers.get(previous.name, 0) == 1
        )
        if joins:
            units[-1].append(layer)
        else:
            units.append([layer])
    return [Unit(tuple(group)) for group in units]


def config_units(config) -> list[Unit]:
    """A network's timed units at its own input size."""
    return plan_units(layer_plan(config))


def space_units(space) -> dict[str, Unit]:
    """Every distinct unit (by key) any member of ``space`` can contain, found without sampling:
    a unit depends on the resolution and on at most two other genes (a layer's input and output
    widths, or a width and a kernel; depths only decide whether it exists, and deeper members
    contain every layer a shallower one has). So the members planned are, for each resolution
    and each pair of genes and each pair of their values, the member with those two values and
    every other gene at its largest choice; the kernel genes move together, as one gene (a layer
    has at most one kernel). ``tests/test_latency_table.py`` checks the result against every
    member of a small space."""
    choices = space.choices()
    kernels = [name for name in choices if name.endswith(".kernel")]
    genes = {n: c for n, c in choices.items() if n != "resolution" and n not in kernels}
    if kernels:
        genes["kernel"] = tuple(sorted(space.kernel_sizes))
    largest = {n: c[-1] for n, c in genes.items()}
    names = list(genes)
    seen_members = set()
    found: dict[str, Unit] = {}
    for resolution in choices["resolution"]:
        for i, a in enumerate(names):
            for b in names[i + 1 :] or [a]:
                for va in genes[a]:
                    for vb in genes[b]:
                        member = {**largest, a: va, b: vb}
                        frozen = (resolution, tuple(sorted(member.items())))
                        if frozen in seen_members:
                            continue
                        seen_members.add(frozen)
                        for unit in config_units(space.decode(_expand(member, resolution,
                                                                      kernels))):  # fmt: skip
                            found.setdefault(unit.key, unit)
    return found


def _expand(member: dict, resolution: int, kernels: list[str]) -> dict:
    genes = {n: v for n, v in member.items() if n != "kernel"}
    genes.update({name: member["kernel"] for name in kernels})
    genes["resolution"] = resolution
    return genes


def space_fingerprint(space) -> str:
    """What a table is valid for: the space's largest member and choices, and the key format.
    Two spaces with one fingerprint produce the same layers."""
    from search_space import arch_hash

    description = {
        "format": KEY_FORMAT,
        "largest": arch_hash(space.largest),
        "choices": {name: list(values) for name, values in space.choices().items()},
    }
    text = json.dumps(description, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_space(space) -> str:
    """One line for the table's header: what the fingerprint stands for, for a reader."""
    from search_space import arch_hash

    c = space.choices()
    return (
        f"LitePose space: largest member {arch_hash(space.largest)}, resolutions "
        f"{list(c['resolution'])}, {len(c)} genes"
    )


@dataclass(frozen=True)
class LayerSpec:
    """One distinct layer to time: its key, its op, a factory for the one-layer module and the
    shapes of its inputs, ``(N, C, H, W)`` each."""

    key: str
    op: str
    build: Callable[[], nn.Module]
    input_shapes: tuple[tuple[int, ...], ...]
