"""The LitePose supernet: exported subnets compute exactly what the active supernet computes."""

import dataclasses

import numpy as np
import pytest
import torch
from perturbed_supernet import perturbed_supernet

from evaluators.macs import count_macs
from evaluators.macs_fast import fast_macs
from search_space import ArchConfigError, get_preset
from search_space.space import LitePoseSpace
from supernet import LitePoseSupernet

SIZE = 64


def _perturbed_supernet(seed: int = 0) -> LitePoseSupernet:
    return perturbed_supernet("litepose_supernet", SIZE, seed)


def test_50_random_subnets_export_exactly():
    net = _perturbed_supernet()
    space = LitePoseSpace(largest=net.largest, resolutions=(SIZE,))
    rng = np.random.default_rng(0)
    image = torch.randn(2, 3, SIZE, SIZE)
    for _ in range(50):
        config = space.sample(rng)
        net.set_active(config)
        exported = net.export(config).eval()
        with torch.no_grad():
            ours, theirs = net(image), exported(image)
        for a, b in zip(ours, theirs, strict=True):
            assert a.shape == b.shape
            assert (a - b).abs().max().item() <= 1e-5
        assert count_macs(exported).macs == fast_macs(config).macs


@pytest.mark.parametrize("name", ["litepose_xs", "litepose_s", "litepose_m", "litepose_l"])
def test_released_models_export_with_their_preset_macs(name):
    net = LitePoseSupernet(get_preset("litepose_supernet"))
    config = get_preset(name)
    exported = net.export(config)
    assert exported.config == config
    assert count_macs(exported, 64).macs == count_macs(config, 64).macs
    assert fast_macs(exported.config).macs == fast_macs(config).macs


def test_kernel_transforms_change_small_kernels_only():
    net = _perturbed_supernet(1)
    block = net.stages[1][0].depthwise[0]
    full = block.active_weight(8)
    block.active_kernel = 3
    small = block.active_weight(8)
    assert full.shape[-1] == 7 and small.shape[-1] == 3
    centre = full[:, :, 2:5, 2:5]
    assert not torch.allclose(small, centre), "the learned 5->3 and 7->5 transforms must apply"


def test_non_members_are_refused():
    net = LitePoseSupernet(get_preset("litepose_supernet", input_size=SIZE))
    xs = get_preset("litepose_xs")
    with pytest.raises(ArchConfigError, match=r"^stage4.width=200: must be one of 1\.\.\d+$"):
        wide = dataclasses.replace(xs.stages[3], channels=200)
        net.set_active(dataclasses.replace(xs, stages=xs.stages[:3] + (wide,)))
    with pytest.raises(
        ArchConfigError, match=r"^stage1.block0.kernel=9: must be one of \(3, 5, 7\)"
    ):
        net.set_active(get_preset("litepose_ablation_k9"))
    with pytest.raises(ArchConfigError, match="family"):
        net.set_active(get_preset("shrink3"))


def test_training_step_reaches_shared_weights():
    net = LitePoseSupernet(get_preset("litepose_supernet", input_size=SIZE)).train()
    space = LitePoseSpace(largest=net.largest, resolutions=(SIZE,))
    net.set_active(space.smallest())
    loss = sum(o.square().mean() for o in net(torch.randn(2, 3, SIZE, SIZE)))
    loss.backward()
    first = net.stages[0][0].expand[0].weight.grad
    assert first is not None and first.abs().sum() > 0
    # Only the active slice (hidden 48 = 8 * 6 outputs, 8 stem inputs) receives gradient.
    assert first[:48, :8].abs().sum() > 0
    assert first[48:].abs().sum() == 0 and first[:, 8:].abs().sum() == 0
