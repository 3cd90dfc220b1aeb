"""MACs in both conventions: fvcore's rules, the reference counts, the fast path's exactness."""

import numpy as np
import pytest
from branchy import SIZE, branchy
from torch import nn

from evaluators.macs import count_macs
from evaluators.macs_fast import fast_macs
from search_space import get_preset, list_presets, preset_info
from search_space.random_arch import random_config
from search_space.space import LitePoseSpace

# True MACs (fvcore) of the reference implementation, CrowdPose heads, from
# shared/reference/litepose.md (two decimals, GMACs).
REFERENCE_TRUE_GMACS = {
    "litepose_xs": 0.92,
    "litepose_s": 3.73,
    "litepose_m": 5.41,
    "litepose_l": 10.19,
    "higherhrnet_w16": 11.34,
    "higherhrnet_w24": 23.95,
    "higherhrnet_w32": 46.40,
    "shrink3": 7.95,
}
PAPER_CHECKED = list(REFERENCE_TRUE_GMACS)


class _DeconvOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 6, 4, stride=2, padding=1, bias=False)

    def forward(self, x):
        return self.up(x)


def test_deconv_counted_per_input_pixel_and_paper_per_output_pixel():
    report = count_macs(_DeconvOnly(), input_size=(5, 7))
    per_input = 3 * 6 * 4 * 4 * 5 * 7
    assert report.macs == per_input
    assert report.macs_paper == 4 * per_input  # 4x as many output pixels at stride 2
    assert report.params == 3 * 6 * 16
    row = report.by_layer.set_index("layer").loc["up"]
    assert row["macs"] == per_input and row["type"] == "ConvTranspose2d"


def test_batchnorm_counted_and_relu_not():
    model = nn.Sequential(nn.Conv2d(3, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
    report = count_macs(model, input_size=4)
    assert report.macs == 3 * 8 * 16 + 2 * 8 * 16
    assert report.by_layer["macs"].sum() == report.macs


def test_model_without_config_needs_input_size():
    with pytest.raises(ValueError, match="input_size is required"):
        count_macs(nn.Conv2d(3, 3, 1))


@pytest.mark.parametrize(
    "name", ["litepose_xs", "litepose_s", "litepose_m", "litepose_l", "shrink3", "higherhrnet_w16"]
)
def test_fvcore_true_macs_match_reference_within_half_percent(name):
    report = count_macs(get_preset(name))
    assert report.gmacs == pytest.approx(REFERENCE_TRUE_GMACS[name], rel=5e-3)
    assert report.macs == fast_macs(get_preset(name)).macs
    assert report.by_layer["macs"].sum() == report.macs


@pytest.mark.parametrize("name", ["higherhrnet_w24", "higherhrnet_w32"])
def test_large_baselines_match_reference(name):
    # Full-resolution fvcore traces of these take seconds; the fast path is proven equal to
    # fvcore on every preset at a smaller size below and on hundreds of random configs.
    macs = fast_macs(get_preset(name)).macs
    assert macs / 1e9 == pytest.approx(REFERENCE_TRUE_GMACS[name], rel=5e-3)


@pytest.mark.parametrize("name", PAPER_CHECKED)
def test_paper_convention_matches_published_within_1p5_percent(name):
    published = preset_info(name).published_gmacs
    assert fast_macs(get_preset(name)).macs_paper / 1e9 == pytest.approx(published, rel=0.015)


@pytest.mark.parametrize("name", ["shrink1", "shrink2"])
def test_shrink1_and_2_within_3_percent_of_published(name):
    published = preset_info(name).published_gmacs
    assert fast_macs(get_preset(name)).macs_paper / 1e9 == pytest.approx(published, rel=0.03)


@pytest.mark.parametrize("name", list_presets())
def test_fast_path_equals_fvcore_on_every_preset(name):
    config = get_preset(name, input_size=128)
    report = count_macs(config)
    fast = fast_macs(config)
    assert (fast.macs, fast.macs_paper) == (report.macs, report.macs_paper)


def _features(config) -> set[tuple]:
    """What a MACs rule could get wrong, as labels: every structural choice a config makes."""
    size = ("size", config.family, config.input_size)
    if config.family == "litepose":
        head = config.head
        found = {
            size,
            ("head", head.kind, head.final_kernel),
            ("strides", *(s.stride for s in config.stages)),
        }
        for s, stage in enumerate(config.stages):
            blocks = list(stage.blocks)
            for branch in stage.branches:
                found.add(("branch", s, branch.feature_stride))
                blocks += branch.blocks
            found |= {("block", b.kernel, b.expansion) for b in blocks}
        return found
    head = config.head
    found = {size, ("hr_head", head.final_conv_kernel, head.cat_output, head.deconv_kernel),
             ("hr_basic_blocks", min(head.num_basic_blocks, 1))}  # fmt: skip
    for s, stage in enumerate(config.stages):
        found.add(("hr_block", s, stage.block))
        found |= {("hr_removed", s, b) for m in stage.blocks for b, n in enumerate(m) if n == 0}
        found.add(("hr_depth", s, max(max(m) for m in stage.blocks)))
    return found


def stratified_configs(seed: int, pool: int = 500, rounds: int = 1) -> list:
    """Few random configs that together make every choice ``_features`` names, each at least
    ``rounds`` times (greedy covers of a random pool): as telling as hundreds of random configs at
    a fraction of the fvcore traces."""
    rng = np.random.default_rng(seed)
    candidates = [(c, _features(c)) for c in (random_config(rng) for _ in range(pool))]
    chosen = []
    for _ in range(rounds):
        wanted = set().union(*(f for _, f in candidates))
        while wanted:
            best = max(range(len(candidates)), key=lambda i: len(candidates[i][1] & wanted))
            config, found = candidates.pop(best)
            chosen.append(config)
            wanted -= found
    return chosen


def test_fast_path_equals_fvcore_on_stratified_random_configs():
    configs = stratified_configs(2026)
    mismatches = []
    for config in configs:
        report, fast = count_macs(config), fast_macs(config)
        if (fast.macs, fast.macs_paper) != (report.macs, report.macs_paper):
            mismatches.append((config, fast, report.macs, report.macs_paper))
    assert not mismatches, mismatches[:2]
    # both families, and multi-branch LitePose configs (every branch position) among them
    assert {c.family for c in configs} == {"litepose", "higherhrnet"}
    assert sum(getattr(c, "has_branches", False) for c in configs) >= 2


def test_fast_path_at_other_resolutions():
    config = get_preset("litepose_s")
    assert fast_macs(config, (256, 384)).macs == count_macs(config, (256, 384)).macs


def test_fast_macs_equal_fvcore_on_branchy_configs():
    rng = np.random.default_rng(5)
    space = LitePoseSpace(
        largest=get_preset("litepose_supernet_multibranch"), resolutions=(SIZE, 128)
    )
    configs = [branchy()] + [space.sample(rng) for _ in range(6)]
    for config in configs:
        report = count_macs(config)
        assert (fast_macs(config).macs, fast_macs(config).macs_paper) == (
            report.macs,
            report.macs_paper,
        )
