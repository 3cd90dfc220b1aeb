"""Accuracy-vs-MACs figures: the AP estimate from a proxy, and several runs on one figure."""

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from arch_search.calibration import ap_estimator, ground_truth_ap
from experiments.committed import GROUND_TRUTH, PROXY_SCORES
from experiments.pareto import ParetoConfig, load_runs, overlay
from posecore.errors import SettingError


def _scores(tmp_path, proxy="jacob_cov"):
    table = pd.DataFrame(
        {proxy: [1.0, 2.0, 3.0, 4.0, 5.0], "truth_AP": [0.10, 0.30, 0.20, 0.40, 0.50]}
    )
    table.to_csv(tmp_path / "scores.csv", index=False)
    return tmp_path / "scores.csv"


def test_isotonic_estimate_is_monotone_and_stays_within_the_trained_range(tmp_path):
    estimator = ap_estimator("jacob_cov", _scores(tmp_path))
    assert (
        "jacob_cov" in estimator.name
        and "isotonic" in estimator.name
        and "5-arch" in estimator.name
    )
    grid = np.linspace(-10, 20, 200)
    ap = estimator.estimate(grid)
    assert (np.diff(ap) >= 0).all(), "a higher score never gets a lower AP"
    assert ap.min() == pytest.approx(0.10) and ap.max() == pytest.approx(0.50)
    assert estimator.estimate([2.0])[0] == pytest.approx(0.25)  # the 0.3 / 0.2 violation pooled


def test_supernet_scores_are_ap_and_unknown_proxies_get_no_estimate(tmp_path):
    assert ap_estimator("supernet", tmp_path / "missing.csv").estimate([0.2, 0.05]).tolist() == [
        0.2,
        0.05,
    ]
    assert ap_estimator("short_train", _scores(tmp_path)) is None
    assert ap_estimator("jacob_cov", tmp_path / "missing.csv") is None


def test_the_committed_calibration_covers_the_default_proxy():
    estimator = ap_estimator("jacob_cov", PROXY_SCORES)
    assert estimator is not None and len(estimator.scores) > 10
    assert len(ground_truth_ap(GROUND_TRUTH)) > 10


def _trials(path, proxy="jacob_cov", n=12, seed=0):
    rng = np.random.default_rng(seed)
    macs_paper = rng.uniform(0.3e9, 15e9, n)
    table = pd.DataFrame(
        {
            "number": range(n),
            "hash": [f"{seed:02d}{i:014x}" for i in range(n)],
            "macs": macs_paper * 0.8,
            "macs_paper": macs_paper,
            "feasible": macs_paper <= 13.7e9,
            "state": "COMPLETE",
            f"{proxy}_score": np.where(macs_paper <= 13.7e9, rng.uniform(1, 5, n), -np.inf),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return table


def _cfg(**values):
    return OmegaConf.merge(OmegaConf.structured(ParetoConfig), values)


def test_overlay_draws_every_run_with_the_ground_truth(tmp_path):
    searched = _trials(tmp_path / "a" / "trials.csv")
    _trials(tmp_path / "b" / "trials.csv", seed=1)
    truth = pd.DataFrame({"arch": [searched["hash"][0]], "AP": [0.3]})
    truth.to_csv(tmp_path / "table.csv", index=False)
    cfg = _cfg(
        runs=[str(tmp_path / "a" / "trials.csv"), str(tmp_path / "b" / "trials.csv")],
        styles=["front", "points"],
        calibration=str(_scores(tmp_path)),
        ground_truth=str(tmp_path / "table.csv"),
        out=str(tmp_path / "fig"),
    )
    runs, objective = load_runs(cfg)
    assert [r.label for r in runs] == ["a", "b"] and objective == "jacob_cov_score"
    written = overlay(cfg)
    assert [p.name for p in written] == ["pareto.png", "pareto.pdf"]
    assert written[0].stat().st_size > 10_000


def test_overlay_refuses_runs_of_different_proxies_and_bad_settings(tmp_path):
    _trials(tmp_path / "a" / "trials.csv")
    _trials(tmp_path / "b" / "trials.csv", proxy="synflow")
    both = [str(tmp_path / "a" / "trials.csv"), str(tmp_path / "b" / "trials.csv")]
    with pytest.raises(SettingError, match="different proxies"):
        load_runs(_cfg(runs=both))
    with pytest.raises(SettingError, match=r"styles=\['front'\]: give one per run \(2\)"):
        load_runs(_cfg(runs=both, styles=["front"]))
    with pytest.raises(SettingError, match=r"styles\[0\]='dots': must be one of"):
        load_runs(_cfg(runs=both[:1], styles=["dots"]))
    with pytest.raises(SettingError, match=r"runs\[0\]=.*nope.csv': no such file"):
        load_runs(_cfg(runs=[str(tmp_path / "nope.csv")]))
