"""Outputs of every preset and of 50 supernet members, saved before the builder and the supernet
were rebuilt from the layer plan (``search_space.plan``), so that ``tests/test_plan.py`` can show
that the rebuilt networks compute exactly what the old ones did.

Made with (from the repository root, at commit 6d3cbbb + this file)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python tests/plan_outputs.py

Two kinds of weights, both on a fixed 32 px image (``image()``):

* ``seeded``: ``torch.manual_seed(0)`` then ``build_model`` -- the initialisation itself;
* ``keyed``: every state-dict entry filled from a generator seeded by its key (``keyed_state``),
  which does not depend on the order modules are created in, so it checks the wiring alone.

Supernet members (25 of ``litepose_supernet``, 25 of ``litepose_supernet_multibranch``, sampled
with seed 0 from their spaces at 32 px) run on the supernet with keyed weights; the file keeps the
supernet's state-dict keys and shapes, so a renamed supernet can be fed the same weights through
its checkpoint migration.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

SIZE = 32
FILE = Path(__file__).resolve().parent / "data" / "plan_outputs.pt"
SUPERNETS = ("litepose_supernet", "litepose_supernet_multibranch")
MEMBERS_PER_SUPERNET = 25


def image() -> torch.Tensor:
    return torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2026))


def keyed_tensor(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """A deterministic value for state-dict entry ``key``: BN statistics and affine parameters in
    safe ranges, kernel transforms near the identity, conv weights scaled by their fan-in."""
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.long)
    if leaf == "running_var" or (leaf == "weight" and len(shape) == 1):
        return 0.5 + torch.rand(shape, generator=g)
    if leaf in ("running_mean", "bias"):
        return 0.4 * torch.rand(shape, generator=g) - 0.2
    if ".transforms." in key:
        return torch.eye(shape[0]) + 0.05 * torch.randn(shape, generator=g)
    fan_in = int(np.prod(shape[1:]))
    return torch.randn(shape, generator=g) / fan_in**0.5


def keyed_state(keys_and_shapes) -> dict[str, torch.Tensor]:
    return {key: keyed_tensor(key, tuple(shape)) for key, shape in keys_and_shapes}


def shapes_of(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


@torch.no_grad()
def run(model: nn.Module) -> list[torch.Tensor]:
    return [o.clone() for o in model.eval()(image())]


def members(space, count: int) -> list:
    rng = np.random.default_rng(0)
    return [space.sample(rng) for _ in range(count)]


def make() -> dict:
    from posenets import build_model
    from search_space import get_preset, list_presets, to_dict
    from search_space.space import LitePoseSpace
    from supernet import LitePoseSupernet

    presets = {}
    for name in list_presets():
        config = get_preset(name, input_size=SIZE)
        torch.manual_seed(0)
        model = build_model(config)
        seeded = run(model)
        model.load_state_dict(keyed_state(shapes_of(model)))
        presets[name] = {"seeded": seeded, "keyed": run(model)}
    supernets = {}
    for name in SUPERNETS:
        net = LitePoseSupernet(get_preset(name, input_size=SIZE))
        keys = shapes_of(net)
        net.load_state_dict(keyed_state(keys))
        space = LitePoseSpace(largest=net.largest, resolutions=(SIZE,))
        rows = []
        for config in members(space, MEMBERS_PER_SUPERNET):
            net.set_active(config)
            rows.append({"config": to_dict(config), "outputs": run(net)})
        supernets[name] = {"keys": keys, "members": rows}
    return {"size": SIZE, "presets": presets, "supernets": supernets}


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.save(make(), FILE)
    print(f"wrote {FILE} ({FILE.stat().st_size / 1e6:.2f} MB)")
