"""From a proxy's score to an estimate of AP, fitted on the trained ground truth.

A zero-cost proxy (``jacob_cov`` by default) is not an AP: plotting it as accuracy would invent a
scale. The honest estimate is a monotone (isotonic, non-decreasing) calibration of the score to
the trained AP, fitted on the architectures whose score ``experiments.rank_proxies`` recorded
against the ground-truth table (the committed one is ``results/rank_proxies/scores.csv``, which the
entry points pass by default: ``experiments.committed``). Between the fitted points the
estimate is interpolated linearly; beyond them it is clamped to the end values, so a search's
candidate never gets an AP outside what was trained. The ``supernet`` proxy's score already is
recalibrated AP and passes through unchanged. Proxies with no recorded scores get no estimator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import isotonic_regression

TRUTH = "truth_AP"  # scores.csv's column of the mean trained AP


@dataclass(frozen=True)
class ApEstimator:
    """``estimate(scores)``: AP estimates; ``name`` says how they were made (an axis label)."""

    name: str
    scores: np.ndarray  # fitted points, increasing
    ap: np.ndarray

    def estimate(self, scores) -> np.ndarray:
        values = np.asarray(scores, dtype=float)
        if self.scores.size == 0:  # identity: the score is AP itself
            return values
        return np.interp(values, self.scores, self.ap)


def ap_estimator(proxy: str, scores_csv: Path | str) -> ApEstimator | None:
    """The AP estimator for ``proxy``'s scores, or None when ``scores_csv`` (``rank_proxies``'s
    ``scores.csv``) has no column for it or does not exist."""
    if proxy == "supernet":
        return ApEstimator("recalibrated supernet AP (demo val)", np.empty(0), np.empty(0))
    path = Path(scores_csv)
    if not path.exists():
        return None
    table = pd.read_csv(path)
    if proxy not in table.columns or TRUTH not in table.columns:
        return None
    fitted = table[[proxy, TRUTH]].replace([np.inf, -np.inf], np.nan).dropna()
    if len(fitted) < 2:
        return None
    fitted = fitted.groupby(proxy, as_index=False)[TRUTH].mean().sort_values(proxy)
    ap = isotonic_regression(fitted[TRUTH].to_numpy(), increasing=True).x
    name = f"AP estimated from {proxy} (isotonic fit on the {len(table)}-arch ground truth)"
    return ApEstimator(name, fitted[proxy].to_numpy(), ap)


def ground_truth_ap(table_csv: Path | str) -> pd.Series:
    """Trained AP by architecture hash (mean over seeds), from a ground-truth ``table.csv``;
    empty when the file does not exist."""
    path = Path(table_csv)
    if not path.exists():
        return pd.Series(dtype=float)
    table = pd.read_csv(path)
    return table.set_index("arch")["AP"]
