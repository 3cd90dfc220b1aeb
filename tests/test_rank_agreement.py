"""Rank agreement: hand-checkable taus, pooled within groups, intervals, the seed ceiling."""

import numpy as np
import pytest

from evaluators.rank_agreement import agreement, grouped_correlation, seed_ceiling


def test_tau_and_rho_of_one_swapped_pair():
    x, y = [1, 2, 3, 4], [1, 2, 4, 3]  # 5 concordant pairs, 1 discordant
    assert grouped_correlation(x, y, None, "kendall") == pytest.approx(4 / 6)
    assert grouped_correlation(x, y, None, "spearman") == pytest.approx(1 - 6 * 2 / (4 * 15))


def test_within_groups_pools_pairs_inside_each_group_only():
    # Group a is reversed (3 pairs, tau -1); group b has one swap (6 pairs, tau 2/3). Across the
    # groups everything is concordant, which the pooled value must ignore.
    x = [1, 2, 3, 11, 12, 13, 14]
    y = [3, 2, 1, 11, 12, 14, 13]
    groups = ["a"] * 3 + ["b"] * 4
    assert grouped_correlation(x, y, groups, "kendall") == pytest.approx((-3 + 4) / 9)
    assert grouped_correlation(x, y, None, "kendall") > 0.6


def test_interval_of_a_perfect_ranking_is_one_and_of_noise_straddles_zero():
    x = np.arange(12.0)
    perfect = agreement(x, x * 2, n_boot=200)
    assert perfect.n == 12
    assert [perfect.value, perfect.low, perfect.high] == pytest.approx([1.0, 1.0, 1.0])
    rng = np.random.default_rng(0)
    noise = agreement(rng.normal(size=300), rng.normal(size=300), n_boot=300)
    assert noise.low < 0 < noise.high and noise.high - noise.low < 0.2


def test_non_finite_scores_are_dropped():
    result = agreement([1, 2, np.nan, 4, -np.inf], [1, 2, 3, 4, 5], n_boot=10)
    assert result.n == 3 and result.value == pytest.approx(1.0)


def test_seed_ceiling_falls_with_seed_noise():
    mean = np.linspace(0, 1, 30)
    assert seed_ceiling(mean, 0.0, draws=5) == pytest.approx(1.0)
    assert abs(seed_ceiling(mean, 100.0, draws=200)) < 0.05
    assert 0.3 < seed_ceiling(mean, 0.1, draws=200) < 0.95


@pytest.mark.parametrize("statistic", ["kendall", "spearman"])
def test_the_small_table_path_gives_scipys_values_with_ties_and_constants(statistic):
    from scipy.stats import kendalltau, spearmanr

    from evaluators.rank_agreement import _correlation

    rng = np.random.default_rng(3)
    reference = kendalltau if statistic == "kendall" else spearmanr
    for _ in range(20):
        n = int(rng.integers(2, 40))
        x = rng.integers(0, 6, n).astype(float)  # many ties, as in a bootstrap resample
        y = x + rng.integers(0, 4, n)
        assert _correlation(x, y, statistic) == pytest.approx(reference(x, y).statistic)
    assert np.isnan(_correlation(np.ones(5), np.arange(5.0), statistic))


def test_an_empty_scope_has_no_value_rather_than_an_error():
    from evaluators.rank_agreement import paired_difference

    empty = agreement([], [], [], n_boot=10)
    assert empty.n == 0 and np.isnan(empty.value)
    assert np.isnan(paired_difference([], [], [], [], n_boot=10).value)
