"""Branch removal in the architecture language and the search space: higher-resolution branches
of inverted residuals beside LitePose stages, and the single-branch network when all are dropped."""

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from evaluators.macs import count_macs
from evaluators.macs_fast import fast_macs
from models import build_model
from models.io import fold_batchnorm
from search_space import (
    ArchConfigError,
    InvertedResidualConfig,
    LiteBranchConfig,
    arch_hash,
    from_dict,
    from_json,
    from_yaml,
    get_preset,
    to_dict,
    to_json,
    to_litepose_release,
    to_yaml,
)
from search_space.presets import litepose
from search_space.space import LitePoseSpace

SIZE = 64
RELEASED = ["litepose_xs", "litepose_s", "litepose_m", "litepose_l"]
MULTI = LitePoseSpace(largest=get_preset("litepose_supernet_multibranch"))
BLOCK = InvertedResidualConfig(kernel=5, expansion=4)


def _with_branches(config, branches: dict[int, tuple[LiteBranchConfig, ...]]):
    stages = tuple(
        dataclasses.replace(stage, branches=branches.get(s, ()))
        for s, stage in enumerate(config.stages)
    )
    return dataclasses.replace(config, stages=stages)


def _branchy(config=None):
    """XS at 64 px with a 1/4 branch in stage 2 and both branches in stage 3 (stage 4 has none)."""
    config = config or get_preset("litepose_xs", input_size=SIZE)
    return _with_branches(
        config,
        {
            1: (LiteBranchConfig(4, (BLOCK, BLOCK)),),
            2: (LiteBranchConfig(4, (BLOCK,)), LiteBranchConfig(8, (BLOCK,))),
        },
    )


# ------------------------------------------------------------------ the language


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


def test_older_architectures_keep_their_hash():
    # The hash of LitePose-XS before branches were added to the language.
    assert arch_hash(get_preset("litepose_xs")) == "13e948e6080ab962"
    old_file = to_dict(get_preset("litepose_xs"))
    assert from_dict(old_file) == get_preset("litepose_xs")


def test_branchy_configs_round_trip_and_hash_apart():
    config = _branchy()
    assert from_json(to_json(config)) == config
    assert from_yaml(to_yaml(config)) == config
    assert to_dict(config)["stages"][2]["branches"][1] == {
        "feature_stride": 8,
        "blocks": [{"kernel": 5, "expansion": 4}],
    }
    assert arch_hash(config) != arch_hash(get_preset("litepose_xs", input_size=SIZE))
    assert config.parallel_paths(2) == ((4, 16), (8, 32), (16, 48))
    assert config.parallel_paths(3) == ()


def _stage(data: dict, s: int) -> dict:
    return data["stages"][s]


@pytest.mark.parametrize(
    "mutate, path, fragment",
    [
        (
            lambda d: _stage(d, 0).update(branches=[{"feature_stride": 4, "blocks": [{}]}]),
            "stages[0].branches",
            "finest resolution",
        ),
        (
            lambda d: _stage(d, 2)["branches"][0].update(feature_stride=16),
            "stages[2].branches[0].feature_stride",
            "{4, 8}",
        ),
        (
            lambda d: _stage(d, 1)["branches"][0].update(feature_stride=8),
            "stages[1].branches[0].feature_stride",
            "{4}",
        ),
        (
            lambda d: _stage(d, 1)["branches"][0].update(blocks=[]),
            "stages[1].branches[0].blocks",
            "a dropped branch is left out",
        ),
        (
            lambda d: _stage(d, 2)["branches"].reverse(),
            "stages[2].branches[1].feature_stride",
            "highest resolution first",
        ),
        (
            lambda d: _stage(d, 2)["branches"][1].update(feature_stride=4),
            "stages[2].branches[1].feature_stride",
            "each resolution once",
        ),
        (
            lambda d: _stage(d, 2)["branches"][0]["blocks"][0].update(kernel=4),
            "stages[2].branches[0].blocks[0].kernel",
            "odd size",
        ),
        (
            lambda d: _stage(d, 2)["branches"][1]["blocks"][0].update(expansion=0),
            "stages[2].branches[1].blocks[0].expansion",
            ">= 1",
        ),
        (
            lambda d: _stage(d, 1)["branches"][0].update(depth=2),
            "stages[1].branches[0].depth",
            "unknown field",
        ),
        (
            lambda d: _stage(d, 1)["branches"][0].pop("feature_stride"),
            "stages[1].branches[0].feature_stride",
            "is required",
        ),
        (
            lambda d: _stage(d, 1).update(branches={"feature_stride": 4}),
            "stages[1].branches",
            "must be a list",
        ),
        (
            lambda d: d["head"].update(kind="plain"),
            "stages[1].branches",
            "fusion head",
        ),
    ],
)
def test_invalid_branches_name_the_field(mutate, path, fragment):
    data = to_dict(_branchy())
    mutate(data)
    with pytest.raises(ArchConfigError) as err:
        from_dict(data)
    assert str(err.value).startswith(f"{path}="), str(err.value)
    assert fragment in str(err.value)


def test_branches_must_be_branch_configs_and_have_no_release_format():
    xs = get_preset("litepose_xs")
    with pytest.raises(ArchConfigError, match=r"^stages\[1\].branches\[0\]="):
        _with_branches(xs, {1: ((BLOCK,),)})
    with pytest.raises(ArchConfigError, match=r"^stages\[1\].branches="):
        _with_branches(xs, {1: [LiteBranchConfig(4, (BLOCK,))]})
    with pytest.raises(ArchConfigError, match=r"^stages\[1\].branches="):
        to_litepose_release(_branchy())


def test_branchy_model_runs_and_folds_batchnorm():
    torch.manual_seed(0)
    config = _branchy()
    model = build_model(config).eval()
    image = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        quarter, half = model(image)
        folded = fold_batchnorm(model)(image)
    assert quarter.shape == (1, 28, SIZE // 4, SIZE // 4) and half.shape == (
        1,
        14,
        SIZE // 2,
        SIZE // 2,
    )
    assert (folded[0] - quarter).abs().max() < 1e-4 and (folded[1] - half).abs().max() < 1e-4
    assert set(model.branches) == {"stage2_at4", "stage3_at4", "stage3_at8"}
    # every path of a stage receives every other: 2 * 1 layers in stage 2, 3 * 2 in stage 3
    assert len(model.fuse) == 2 + 6


def test_fast_macs_equal_fvcore_on_branchy_configs():
    rng = np.random.default_rng(5)
    space = LitePoseSpace(largest=MULTI.largest, resolutions=(SIZE, 128))
    configs = [_branchy()] + [space.sample(rng) for _ in range(6)]
    for config in configs:
        report = count_macs(config)
        assert (fast_macs(config).macs, fast_macs(config).macs_paper) == (
            report.macs,
            report.macs_paper,
        )


# ------------------------------------------------------------------ the space


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
    deep = _with_branches(
        get_preset("litepose_xs"),
        {2: (LiteBranchConfig(4, (InvertedResidualConfig(),) * 6),)},
    )
    with pytest.raises(ArchConfigError, match="stage3.branch0.depth"):
        MULTI.encode(deep)
    odd = _with_branches(get_preset("litepose_xs"), {2: (LiteBranchConfig(4, (BLOCK,) * 2),)})
    with pytest.raises(
        ArchConfigError, match=r"^stage3.branch0.block0.expansion=4: must be one of \(6,\)"
    ):
        MULTI.encode(odd)
    with pytest.raises(ArchConfigError, match=r"stages\[1\].branches\[0\].feature_stride"):
        LitePoseSpace().encode(_with_branches(big, {1: big.stages[1].branches}))


def test_size_counts_distinct_architectures_with_branches():
    largest = litepose(64, 16, (16, 16, 24, 24), (16, 16, 16), depths=(1, 1, 1, 1))
    block = InvertedResidualConfig()
    largest = _with_branches(
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
