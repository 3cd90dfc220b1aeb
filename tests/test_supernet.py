"""The LitePose supernet (single-branch and multi-branch): exported members compute exactly what
the active supernet computes, branch removal by elastic branch depth (0 drops a branch and its
fusion layers), the one membership check, recalibration and checkpoints."""

import dataclasses

import numpy as np
import pytest
import torch
from perturbed_supernet import perturbed_supernet

from evaluators.macs import count_macs
from evaluators.macs_fast import fast_macs
from posenets.checkpoint import save_checkpoint
from search_space import (
    ArchConfigError,
    InvertedResidualConfig,
    LiteBranchConfig,
    get_preset,
    list_presets,
)
from search_space.space import LitePoseSpace
from supernet import LitePoseSupernet
from supernet.checkpoint import load_supernet, supernet_state
from supernet.recalibrate import recalibrate_bn
from supernet.training import sandwich_subnets

SIZE = 64
EXPORT_SIZE = 32  # exactness does not depend on the size; 32 px keeps 70 exports fast
RELEASED = list_presets(tag="paper")


def _perturbed_supernet(seed: int = 0, preset: str = "litepose_supernet_multibranch"):
    return perturbed_supernet(preset, SIZE, seed)


def _space(net: LitePoseSupernet) -> LitePoseSpace:
    return LitePoseSpace(largest=net.largest, resolutions=(net.largest.input_size,))


def _max_diff(net: LitePoseSupernet, exported: torch.nn.Module, image: torch.Tensor) -> float:
    with torch.no_grad():
        ours, theirs = net(image), exported(image)
    assert [a.shape for a in ours] == [b.shape for b in theirs]
    return max((a - b).abs().max().item() for a, b in zip(ours, theirs, strict=True))


@pytest.mark.parametrize(
    "preset, count", [("litepose_supernet", 20), ("litepose_supernet_multibranch", 50)]
)
def test_random_members_export_exactly(preset, count):
    """Random members (of the multi-branch space: at least half keep a branch, some drop one)
    export to networks that compute what the active supernet computes; the first also
    counts the fast path's MACs under fvcore (tests/test_macs.py proves that path in general)."""
    net = perturbed_supernet(preset, EXPORT_SIZE, seed=0)
    space = _space(net)
    rng = np.random.default_rng(0)
    image = torch.randn(1, 3, EXPORT_SIZE, EXPORT_SIZE)
    branchy = net.largest.has_branches
    configs = []
    while len(configs) < count:
        config = space.sample(rng)
        if not branchy or config.has_branches or sum(c.has_branches for c in configs) >= count // 2:
            configs.append(config)
    if branchy:
        assert sum(c.has_branches for c in configs) >= count // 2
        assert any(
            len(s.branches) < len(b.branches)
            for c in configs
            for s, b in zip(c.stages, net.largest.stages, strict=True)
        )
    for i, config in enumerate(configs):
        net.set_active(config)
        exported = net.export(config).eval()
        assert exported.config == config
        assert _max_diff(net, exported, image) <= 1e-5
        if i == 0:
            assert count_macs(exported).macs == fast_macs(config).macs


@pytest.mark.parametrize("name", RELEASED)
def test_released_models_export_with_their_preset_macs(name):
    net = LitePoseSupernet(get_preset("litepose_supernet"))
    config = get_preset(name)
    exported = net.export(config)
    assert exported.config == config
    assert count_macs(exported, 64).macs == count_macs(config, 64).macs
    assert fast_macs(exported.config).macs == fast_macs(config).macs


def test_kernel_transforms_change_small_kernels_only():
    net = _perturbed_supernet(1, "litepose_supernet")
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


@pytest.mark.parametrize("name", RELEASED)
def test_released_models_export_from_the_multibranch_supernet(name):
    net = LitePoseSupernet(get_preset("litepose_supernet_multibranch"))
    config = get_preset(name)
    assert LitePoseSpace(largest=net.largest).contains(config)
    exported = net.export(config)
    assert exported.config == config and not hasattr(exported, "branches")
    assert count_macs(exported, SIZE).macs == count_macs(config, SIZE).macs
    assert fast_macs(exported.config).macs == fast_macs(config).macs


def test_all_branches_dropped_and_largest_member_export_exactly():
    net = _perturbed_supernet(1)
    space = _space(net)
    image = torch.randn(1, 3, SIZE, SIZE)
    for config in (space.smallest(), space.largest_member()):
        net.set_active(config)
        assert _max_diff(net, net.export(config).eval(), image) <= 1e-5


def test_single_branch_supernet_has_no_branch_layers():
    """Supernet checkpoints written before branches existed still load."""
    net = LitePoseSupernet(get_preset("litepose_supernet", input_size=SIZE))
    assert not any(k.startswith(("branches.", "fuse.")) for k in net.state_dict())


def test_non_members_are_refused_with_the_field():
    net = LitePoseSupernet(get_preset("litepose_supernet_multibranch", input_size=SIZE))
    xs = get_preset("litepose_xs", input_size=SIZE)

    def with_stage(s: int, branches):
        stages = list(xs.stages)
        stages[s] = dataclasses.replace(stages[s], branches=branches)
        return dataclasses.replace(xs, stages=tuple(stages))

    deep = with_stage(2, (LiteBranchConfig(8, (InvertedResidualConfig(),) * 5),))
    with pytest.raises(ArchConfigError, match=r"^stage3.branch1.depth=5: must be one of 0\.\.4$"):
        net.set_active(deep)
    wide = with_stage(1, (LiteBranchConfig(4, (InvertedResidualConfig(expansion=8),)),))
    with pytest.raises(
        ArchConfigError, match=r"^stage2.branch0.block0.expansion=8: must be one of 1\.\.6$"
    ):
        net.set_active(wide)
    k9 = with_stage(3, (LiteBranchConfig(4, (InvertedResidualConfig(kernel=9),)),))
    with pytest.raises(
        ArchConfigError, match=r"^stage4.branch0.block0.kernel=9: must be one of \(3, 5, 7\)$"
    ):
        net.export(k9)
    single = LitePoseSupernet(get_preset("litepose_supernet", input_size=SIZE))
    with pytest.raises(ArchConfigError, match=r"stages\[2\].branches\[0\].feature_stride"):
        single.set_active(with_stage(2, (LiteBranchConfig(8, (InvertedResidualConfig(),)),)))


def test_dropped_branches_and_their_fusion_get_no_gradient():
    net = LitePoseSupernet(get_preset("litepose_supernet_multibranch", input_size=SIZE)).train()
    genes = _space(net).encode(_space(net).smallest())
    genes["stage3.branch1.depth"] = 2  # keep only stage 3's 1/8 branch, 2 of its 4 blocks
    net.set_active(_space(net).decode(genes))
    loss = sum(o.square().mean() for o in net(torch.randn(2, 3, SIZE, SIZE)))
    loss.backward()

    def grad(module) -> float:
        return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)

    kept = net.branches["stage3_at8"]
    assert grad(kept[0]) > 0 and grad(kept[1]) > 0 and grad(kept[2]) == 0
    assert grad(net.fuse["stage3_8to16"]) > 0 and grad(net.fuse["stage3_16to8"]) > 0
    assert grad(net.branches["stage3_at4"]) == 0 and grad(net.fuse["stage3_4to16"]) == 0
    assert grad(net.branches["stage2_at4"]) == 0 and grad(net.fuse["stage4_8to16"]) == 0


def test_recalibration_touches_the_active_branches_only_and_export_follows():
    net = _perturbed_supernet(2)
    genes = _space(net).encode(_space(net).smallest())
    genes["stage2.branch0.depth"] = 2
    config = _space(net).decode(genes)
    net.set_active(config)
    used = net.fuse["stage2_4to8"][0][1]  # the first step's BN
    unused = net.fuse["stage3_4to16"][0][1]
    used_before, unused_before = used.running_mean.clone(), unused.running_mean.clone()
    recalibrate_bn(net, [torch.randn(2, 3, SIZE, SIZE) for _ in range(2)], num_batches=2)
    assert not torch.equal(used.running_mean, used_before)
    assert torch.equal(unused.running_mean, unused_before)
    assert _max_diff(net, net.export(config).eval(), torch.randn(1, 3, SIZE, SIZE)) <= 1e-5


def test_checkpoint_round_trip_and_sandwich_subnets(tmp_path):
    net = _perturbed_supernet(3)
    path = save_checkpoint({"model": net.state_dict(), **supernet_state(net)}, tmp_path / "s.pt")
    loaded = load_supernet(path).eval()
    assert loaded.largest == net.largest
    space = _space(net)
    largest, smallest, random = sandwich_subnets(space, 1, seed=0, global_step=0)
    assert largest == net.largest and not smallest.has_branches
    image = torch.randn(1, 3, SIZE, SIZE)
    for config in (largest, random):
        net.set_active(config)
        loaded.set_active(config)
        with torch.no_grad():
            assert all(torch.equal(a, b) for a, b in zip(net(image), loaded(image), strict=True))
