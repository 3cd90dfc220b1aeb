"""The declared LitePose search space (single-branch and with branch removal): members, the one
membership check, sampling, mutation, crossover, size."""

import dataclasses
import itertools

import numpy as np
import pytest
from branchy import BLOCK, SIZE, with_branches

from evaluators.macs import count_macs
from evaluators.macs_fast import fast_macs
from posenets import build_model
from search_space import (
    ArchConfigError,
    InvertedResidualConfig,
    LiteBranchConfig,
    get_preset,
    list_presets,
    preset_info,
    to_dict,
)
from search_space.presets import litepose
from search_space.space import LitePoseSpace

SPACE = LitePoseSpace()
MULTI = LitePoseSpace(largest=get_preset("litepose_supernet_multibranch"))
RELEASED = list_presets(tag="paper")


def test_the_paper_models_are_one_query_with_their_published_numbers():
    """The paper's four, stated once (tags on the presets), with the numbers the paper gives:
    paper-convention GMACs, CrowdPose test AP and COCO val AP (LitePose, Table 2 / 3)."""
    assert RELEASED == ["litepose_xs", "litepose_s", "litepose_m", "litepose_l"]
    published = [
        (i.short, i.published_gmacs, i.crowdpose_ap, i.coco_ap) for i in map(preset_info, RELEASED)
    ]
    assert published == [
        ("XS", 1.2, 49.4, 40.6),
        ("S", 5.0, 58.3, 56.8),
        ("M", 7.8, 59.9, 59.8),
        ("L", 13.7, 61.9, 62.5),
    ]
    assert list_presets(tag="no such tag") == []


@pytest.mark.parametrize("name", RELEASED)
def test_released_models_are_members(name):
    config = get_preset(name)
    assert SPACE.contains(config)
    assert SPACE.decode(SPACE.encode(config)) == config


def test_non_members_are_refused_with_the_dimension():
    xs = get_preset("litepose_xs")
    with pytest.raises(ArchConfigError, match="stage1.width"):
        SPACE.encode(
            dataclasses.replace(
                xs, stages=(dataclasses.replace(xs.stages[0], channels=40),) + xs.stages[1:]
            )
        )
    with pytest.raises(ArchConfigError, match="resolution"):
        SPACE.encode(dataclasses.replace(xs, input_size=288))
    with pytest.raises(ArchConfigError, match="num_joints"):
        SPACE.encode(dataclasses.replace(xs, num_joints=17))
    assert not SPACE.contains(get_preset("litepose_ablation_k9"))
    assert not SPACE.contains(get_preset("shrink3"))


def test_samples_mutations_and_crossovers_stay_in_the_space():
    rng = np.random.default_rng(0)
    smallest, largest = fast_macs(SPACE.smallest()).macs, fast_macs(SPACE.largest_member()).macs
    configs = [SPACE.sample(rng) for _ in range(40)]
    configs += [SPACE.mutate(c, rng, probability=0.3) for c in configs[:20]]
    configs += [
        SPACE.crossover(a, b, rng) for a, b in zip(configs[:20], configs[20:40], strict=False)
    ]
    for config in configs:
        assert SPACE.contains(config)
        assert smallest <= fast_macs(config).macs <= largest
    assert len({SPACE.decode(SPACE.encode(c)) for c in configs}) > 50


def test_mutation_with_probability_zero_is_identity_and_one_changes():
    rng = np.random.default_rng(1)
    config = get_preset("litepose_s")
    assert SPACE.mutate(config, rng, probability=0.0) == config
    assert SPACE.mutate(config, rng, probability=1.0) != config


def test_size_counts_distinct_architectures():
    tiny = LitePoseSpace(
        largest=get_preset("litepose_xs"),
        width_multipliers=(1.0,),
        kernel_sizes=(3, 7),
        depth_reductions=(0,),
        resolutions=(256,),
    )
    # only kernels vary: 2 ** (6 + 8 + 10 + 10) architectures
    assert tiny.size() == 2**34
    assert SPACE.size() > 10**20


# ------------------------------------------------------------------ branches
# Exact true MACs of the single-branch presets before branches were added to the language.
SINGLE_BRANCH_MACS = {
    "litepose_xs": 916283392,
    "litepose_s": 3725505280,
    "litepose_m": 5405874432,
    "litepose_l": 10186784768,
}
SINGLE_BRANCH_MODULES = {
    "stem",
    "stages",
    "deconv_refined",
    "deconv_skip",
    "deconv_bn_relu",
    "final_refined",
    "final_raw",
}


@pytest.mark.parametrize("name", RELEASED)
def test_every_branch_dropped_is_todays_litepose(name):
    """The member of the branch space with every branch at depth 0 is the single-branch network:
    no extra modules or state_dict keys, the same MACs, and no 'branches' key written (so the
    same hash), so older files, checkpoints and studies stay valid."""
    config = get_preset(name)
    genes = MULTI.encode(config)
    assert all(genes[f"{prefix}.depth"] == 0 for prefix, _, _ in MULTI.branches())
    dropped = MULTI.decode(genes)
    assert dropped == config and not dropped.has_branches
    model = build_model(dropped)
    assert {n for n, _ in model.named_children()} == SINGLE_BRANCH_MODULES
    assert {k.split(".")[0] for k in model.state_dict()} == SINGLE_BRANCH_MODULES
    assert all("branches" not in stage for stage in to_dict(dropped)["stages"])
    assert fast_macs(dropped).macs == SINGLE_BRANCH_MACS[name]
    assert count_macs(dropped, SIZE).macs == fast_macs(dropped, SIZE).macs


def test_branch_genes_and_extremes():
    choices = MULTI.choices()
    prefixes = [prefix for prefix, _, _ in MULTI.branches()]
    assert prefixes == [
        "stage2.branch0",
        "stage3.branch0",
        "stage3.branch1",
        "stage4.branch0",
        "stage4.branch1",
    ]
    for prefix in prefixes:
        assert choices[f"{prefix}.depth"] == (0, 2, 4)
        assert choices[f"{prefix}.block3.kernel"] == (3, 5, 7)
    assert not MULTI.smallest().has_branches
    assert MULTI.smallest() == LitePoseSpace().smallest()
    assert MULTI.largest_member() == get_preset("litepose_supernet_multibranch")
    assert fast_macs(MULTI.largest_member()).macs > fast_macs(get_preset("litepose_supernet")).macs


@pytest.mark.parametrize("name", RELEASED)
def test_released_models_are_members_of_the_branch_space(name):
    config = get_preset(name)
    assert MULTI.contains(config)
    assert MULTI.decode(MULTI.encode(config)) == config


def test_samples_mutations_and_crossovers_cover_branches():
    rng = np.random.default_rng(0)
    smallest = fast_macs(MULTI.smallest()).macs
    largest = fast_macs(MULTI.largest_member()).macs
    configs = [MULTI.sample(rng) for _ in range(30)]
    configs += [MULTI.mutate(c, rng, probability=0.3) for c in configs[:15]]
    configs += [
        MULTI.crossover(a, b, rng) for a, b in zip(configs[:15], configs[15:30], strict=True)
    ]
    kept = set()
    for config in configs:
        assert MULTI.contains(config) and MULTI.decode(MULTI.encode(config)) == config
        assert smallest <= fast_macs(config).macs <= largest
        kept |= {
            (s, b.feature_stride, b.depth)
            for s, st in enumerate(config.stages)
            for b in st.branches
        }
    assert {(s, f) for s, f, _ in kept} == {(1, 4), (2, 4), (2, 8), (3, 4), (3, 8)}
    assert {d for _, _, d in kept} == {2, 4}
    # mutation can drop a branch and grow it back
    xs = get_preset("litepose_xs")
    grown = MULTI.mutate(xs, np.random.default_rng(3), probability=1.0)
    assert grown.has_branches


def test_non_members_name_the_branch():
    big = MULTI.largest
    deep = with_branches(
        get_preset("litepose_xs"),
        {2: (LiteBranchConfig(4, (InvertedResidualConfig(),) * 6),)},
    )
    with pytest.raises(ArchConfigError, match="stage3.branch0.depth"):
        MULTI.encode(deep)
    odd = with_branches(get_preset("litepose_xs"), {2: (LiteBranchConfig(4, (BLOCK,) * 2),)})
    with pytest.raises(
        ArchConfigError, match=r"^stage3.branch0.block0.expansion=4: must be one of \(6,\)"
    ):
        MULTI.encode(odd)
    with pytest.raises(ArchConfigError, match=r"stages\[1\].branches\[0\].feature_stride"):
        LitePoseSpace().encode(with_branches(big, {1: big.stages[1].branches}))


def test_size_counts_distinct_architectureswith_branches():
    largest = litepose(64, 16, (16, 16, 24, 24), (16, 16, 16), depths=(1, 1, 1, 1))
    block = InvertedResidualConfig()
    largest = with_branches(
        largest, {1: (LiteBranchConfig(4, (block, block)),), 2: (LiteBranchConfig(8, (block,)),)}
    )
    tiny = LitePoseSpace(
        largest=largest,
        width_multipliers=(1.0,),
        kernel_sizes=(3, 7),
        depth_reductions=(0, 1),
        resolutions=(64,),
    )
    choices = tiny.choices()
    assert choices["stage2.branch0.depth"] == (0, 1, 2) and choices["stage3.branch1.depth"] == (
        0,
        1,
    )
    names = list(choices)
    distinct = {
        tiny.decode(dict(zip(names, values, strict=True)))
        for values in itertools.product(*choices.values())
    }
    # stage kernels 2**4, the 1/4 branch 1 + 2 + 4 ways, the 1/8 branch 1 + 2
    assert tiny.size() == len(distinct) == 16 * 7 * 3


def test_space_sizes():
    assert LitePoseSpace().size() > 10**21
    assert MULTI.size() > 10**31
    assert MULTI.size() % LitePoseSpace().size() == 0
