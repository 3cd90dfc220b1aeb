"""LitePose configs with higher-resolution branches, shared by the tests of the language, the
models, the MACs counter and the space."""

import dataclasses

from search_space import InvertedResidualConfig, LiteBranchConfig, get_preset

SIZE = 64
BLOCK = InvertedResidualConfig(kernel=5, expansion=4)


def with_branches(config, branches: dict[int, tuple[LiteBranchConfig, ...]]):
    stages = tuple(
        dataclasses.replace(stage, branches=branches.get(s, ()))
        for s, stage in enumerate(config.stages)
    )
    return dataclasses.replace(config, stages=stages)


def branchy(config=None):
    """XS at 64 px with a 1/4 branch in stage 2 and both branches in stage 3 (stage 4 has none)."""
    config = config or get_preset("litepose_xs", input_size=SIZE)
    return with_branches(
        config,
        {
            1: (LiteBranchConfig(4, (BLOCK, BLOCK)),),
            2: (LiteBranchConfig(4, (BLOCK,)), LiteBranchConfig(8, (BLOCK,))),
        },
    )
