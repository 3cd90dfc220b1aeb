"""The declared LitePose search space: members, sampling, mutation, crossover, size."""

import dataclasses

import numpy as np
import pytest

from evaluators.macs_fast import fast_macs
from search_space import ArchConfigError, get_preset
from search_space.space import LitePoseSpace

SPACE = LitePoseSpace()


@pytest.mark.parametrize("name", ["litepose_xs", "litepose_s", "litepose_m", "litepose_l"])
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
