"""Rankers that combine proxies: the rank aggregation on a hand-made table, the folds of the
learned ranker, its out-of-sample predictions, and both as search proxies."""

import numpy as np
import pandas as pd
import pytest

from arch_search.proxies import ProxyContext, get_proxy, list_proxies
from arch_search.rankers import (
    RidgeRanker,
    aggregate_ranks,
    arch_features,
    fold_ids,
    out_of_fold,
)
from evaluators.rank_agreement import paired_difference
from search_space import arch_hash, get_preset, list_presets, to_json


def test_rank_aggregation_of_two_proxies_gives_the_hand_computed_order():
    # Ranks of a: 1 2 3 4; of b: 4 1 2 3 (of 4 rows). log_rank sums log(rank / 4):
    # row 0 log(4/16), row 1 log(2/16), row 2 log(6/16), row 3 log(12/16): order 1 < 0 < 2 < 3.
    # mean_rank: (5, 3, 5, 7) / 8: rows 0 and 2 tie, which the logs break (3 * 2 > 1 * 4).
    table = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [40.0, 10.0, 20.0, 30.0]})
    combined = aggregate_ranks(table, ["a", "b"], "log_rank")
    assert list(np.argsort(combined.to_numpy())) == [1, 0, 2, 3]
    assert combined.to_numpy() == pytest.approx(np.log([4 / 16, 2 / 16, 6 / 16, 12 / 16]))
    mean = aggregate_ranks(table, ["a", "b"], "mean_rank").to_numpy()
    assert mean == pytest.approx(np.array([5, 3, 5, 7]) / 8)


def test_a_fold_split_never_puts_an_architecture_in_its_own_training_fold():
    arch = np.repeat([f"a{i}" for i in range(23)], [1 + i % 3 for i in range(23)])  # repeated rows
    folds = fold_ids(arch, 5, seed=4)
    for k in range(5):
        held, train = set(arch[folds == k]), set(arch[folds != k])
        assert held and not held & train
    assert (fold_ids(arch, 5, seed=4) == folds).all()  # fixed by the seed
    assert not (fold_ids(arch, 5, seed=5) == folds).all()
    sizes = np.bincount([folds[list(arch).index(a)] for a in np.unique(arch)])
    assert sizes.max() - sizes.min() <= 1  # architectures, not rows, are dealt evenly


def test_out_of_fold_predictions_use_only_the_other_folds():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.1, 40)
    arch = np.array([f"a{i}" for i in range(40)])
    predicted, alphas = out_of_fold(x, y, arch, folds=4, seed=0)
    assert np.corrcoef(predicted, y)[0, 1] > 0.95 and len(alphas) == 4
    # A row's prediction does not move when its own target does: it was not trained on.
    moved = y.copy()
    moved[0] += 100.0
    again, _ = out_of_fold(x, moved, arch, folds=4, seed=0)
    assert again[0] == pytest.approx(predicted[0])
    assert RidgeRanker(alphas=(1.0,)).fit(x, y).alpha == 1.0


def test_a_trend_ranker_keeps_the_trend_a_strong_penalty_would_shrink():
    x = np.column_stack([np.arange(10.0), np.tile([0.0, 1.0], 5)])
    y = 2.0 * x[:, 0] + 3.0  # all trend: a straight line in column 0
    heavy = (1e6,)
    plain = RidgeRanker(alphas=heavy).fit(x, y).predict(x)
    trend = RidgeRanker(alphas=heavy, trend=0).fit(x, y)
    assert np.ptp(plain) < 0.01 * np.ptp(y), "the penalty flattens the plain ridge"
    assert trend.line == pytest.approx((2.0, 3.0))
    assert trend.predict(x) == pytest.approx(y)


def test_the_paired_interval_of_a_proxy_against_itself_is_zero():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=30), rng.normal(size=30)
    groups = np.repeat(["XS", "S", "M"], 10)
    same = paired_difference(x, x, y, groups, n_boot=200)
    assert [same.value, same.low, same.high] == [0.0, 0.0, 0.0]
    better = paired_difference(y + rng.normal(0, 0.1, 30), x, y, groups, n_boot=200)
    assert better.low > 0


def test_combined_and_learned_serve_a_search_as_proxies(tmp_path):
    assert {"combined", "learned"} <= set(list_proxies())
    names = list_presets(tag="paper")
    configs = [get_preset(n, num_joints=14) for n in names]
    macs = get_proxy("macs")
    context = ProxyContext()
    rows = [{"arch": arch_hash(c), "macs": macs.score(c, context), "params": p}
            for c, p in zip(configs, [4.0, 3.0, 2.0, 1.0], strict=True)]  # fmt: skip
    scores = tmp_path / "scores.csv"
    pd.DataFrame(rows).to_csv(scores, index=False)
    combined = get_proxy("combined", proxies=["macs", "params"], scores=str(scores))
    assert not combined.needs_data
    # XS among the reference and itself: its MACs tie the reference's lowest (rank 1.5 of 5);
    # its real parameter count is above the made-up 1-4 of the reference (rank 5 of 5).
    value = combined.score(configs[0], context)
    assert value == pytest.approx(np.log(1.5 / 5) + np.log(5 / 5))
    table = tmp_path / "table.csv"
    pd.DataFrame({
        "arch": [r["arch"] for r in rows], "kind": "preset", "name": names,
        "gmacs_paper": [1.2, 5.0, 7.8, 13.7], "AP": [0.1, 0.2, 0.3, 0.4], "AP_sd": 0.01,
        "n_seeds": 1, "config": [to_json(c, indent=None) for c in configs],
    }).to_csv(table, index=False)  # fmt: skip
    learned = get_proxy(
        "learned", ground_truth=str(table), scores=str(scores), proxies=["macs"], alphas=[1.0]
    )
    predicted = [learned.score(c, context) for c in configs]
    assert np.all(np.diff(predicted) > 0)  # AP grows with MACs here, and so does the prediction
    with pytest.raises(Exception, match="ground_truth"):
        get_proxy("learned", scores=str(scores), proxies=["macs"])


def test_arch_features_leave_out_kernels_past_a_stages_depth():
    small = get_preset("litepose_xs", num_joints=14)
    features = arch_features(small)
    assert features["stage1.depth"] == len(small.stages[0].blocks)
    assert features["resolution"] == small.input_size and np.isfinite(list(features.values())).all()
