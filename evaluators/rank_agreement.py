"""How well one score ranks architectures like another: rank correlations with bootstrap
intervals, over a whole table and within groups (budget bands).

A search under a MACs budget only ever compares candidates of similar cost, so a proxy that
merely tracks MACs looks excellent over a whole table and is useless within a band. The
within-band statistic therefore pools pairs *inside* each band only: the pair-weighted mean of the
bands' Kendall tau (equal to the tau over all within-band pairs when nothing is tied), and the
size-weighted mean of their Spearman rho. Intervals are percentile bootstraps over architectures,
resampled within each band, so each band keeps its size.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import ConstantInputWarning, kendalltau, rankdata, spearmanr

from posecore.errors import SettingError

STATISTICS = ("kendall", "spearman")


@dataclass(frozen=True)
class Agreement:
    value: float
    low: float  # bootstrap percentile interval
    high: float
    n: int  # architectures that entered


# Up to this many rows, Kendall's tau-b and Spearman's rho are computed here with numpy (the
# bootstraps call them tens of thousands of times on tables of ~60 rows, where scipy's per-call
# overhead dominates); the values are scipy's (tests/test_rank_agreement.py).
_SMALL = 400


def _correlation(x: np.ndarray, y: np.ndarray, statistic: str) -> float:
    if len(x) < 2:
        return float("nan")
    if len(x) <= _SMALL:
        return _small_correlation(x, y, statistic)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        if statistic == "kendall":
            return float(kendalltau(x, y).statistic)
        return float(spearmanr(x, y).statistic)


def _small_correlation(x: np.ndarray, y: np.ndarray, statistic: str) -> float:
    """tau-b = (concordant - discordant) / sqrt(pairs untied in x * pairs untied in y); rho =
    Pearson's r of the mid-ranks. NaN where either is constant, as scipy gives."""
    if statistic == "kendall":
        sx = np.sign(x[:, None] - x[None, :])
        sy = np.sign(y[:, None] - y[None, :])
        untied = np.count_nonzero(sx) * np.count_nonzero(sy)
        return float((sx * sy).sum() / np.sqrt(untied)) if untied else float("nan")
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    norm = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / norm) if norm else float("nan")


def grouped_correlation(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, statistic: str = "kendall"
) -> float:
    """Correlation of ``x`` and ``y``; with ``groups``, the weighted mean of the per-group values
    (Kendall: weights = pairs in the group, Spearman: its size; groups under 2 members and groups
    where either score is constant carry no ranking and are left out)."""
    if statistic not in STATISTICS:
        raise SettingError(f"statistic={statistic!r}: must be one of {STATISTICS}")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if groups is None:
        return _correlation(x, y, statistic)
    groups = np.asarray(groups)
    values, weights = [], []
    for group in np.unique(groups):
        members = groups == group
        value = _correlation(x[members], y[members], statistic)
        if np.isfinite(value):
            n = int(members.sum())
            values.append(value)
            weights.append(n * (n - 1) / 2 if statistic == "kendall" else n)
    if not values:
        return float("nan")
    return float(np.average(values, weights=weights))


def agreement(
    x: Sequence[float],
    y: Sequence[float],
    groups: Sequence | None = None,
    statistic: str = "kendall",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Agreement:
    """The correlation and its percentile-bootstrap interval (rows resampled with replacement,
    within their group when ``groups`` is given). Non-finite pairs are dropped first."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    g = None if groups is None else np.asarray(groups)[keep]
    if not len(x):
        return Agreement(float("nan"), float("nan"), float("nan"), 0)

    def correlation(rows: np.ndarray) -> float:
        return grouped_correlation(x[rows], y[rows], None if g is None else g[rows], statistic)

    return _bootstrap(correlation, len(x), g, n_boot, confidence, seed)


def _bootstrap(
    statistic_of, n: int, groups: np.ndarray | None, n_boot: int, confidence: float, seed: int
) -> Agreement:
    """``statistic_of(rows)`` on all ``n`` rows, and its percentile interval over ``n_boot``
    resamples of the rows with replacement (within their group when ``groups`` is given)."""
    value = statistic_of(np.arange(n))
    rng = np.random.default_rng(seed)
    blocks = (
        [np.arange(n)]
        if groups is None
        else [np.flatnonzero(groups == v) for v in np.unique(groups)]
    )
    draws = np.asarray([
        statistic_of(np.concatenate([rng.choice(block, size=len(block)) for block in blocks]))
        for _ in range(n_boot)
    ])  # fmt: skip
    draws = draws[np.isfinite(draws)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail]) if len(draws) else (np.nan, np.nan)
    return Agreement(float(value), float(low), float(high), int(n))


def seed_ceiling(
    mean: Sequence[float],
    sd: float,
    groups: Sequence | None = None,
    statistic: str = "kendall",
    draws: int = 500,
    seed: int = 0,
) -> float:
    """The correlation two independent seeds of the same architectures would reach: two noisy
    copies of ``mean`` (Gaussian, SD ``sd``, the measured seed SD) ranked against each other,
    averaged over ``draws``. No proxy can rank a single-seed truth much better than this."""
    mean = np.asarray(mean, dtype=float)
    if not np.isfinite(sd):  # no architecture has several seeds yet
        return float("nan")
    rng = np.random.default_rng(seed)
    values = [
        grouped_correlation(
            mean + rng.normal(0, sd, mean.shape),
            mean + rng.normal(0, sd, mean.shape),
            None if groups is None else np.asarray(groups),
            statistic,
        )
        for _ in range(draws)
    ]
    return float(np.nanmean(values))


def paired_difference(
    x: Sequence[float],
    baseline: Sequence[float],
    y: Sequence[float],
    groups: Sequence | None = None,
    statistic: str = "kendall",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Agreement:
    """How much better ``x`` ranks ``y`` than ``baseline`` does: the difference of their
    correlations with ``y`` and its percentile interval, both computed on the *same* bootstrap
    resample each time (rows resampled within their group), so the noise of the architectures
    drawn, which both rankings share, cancels. Rows where any of the three is non-finite are
    dropped first."""
    x, b, y = (np.asarray(v, dtype=float) for v in (x, baseline, y))
    keep = np.isfinite(x) & np.isfinite(b) & np.isfinite(y)
    x, b, y = x[keep], b[keep], y[keep]
    g = None if groups is None else np.asarray(groups)[keep]
    if not len(x):
        return Agreement(float("nan"), float("nan"), float("nan"), 0)

    def difference(rows: np.ndarray) -> float:
        gr = None if g is None else g[rows]
        return grouped_correlation(x[rows], y[rows], gr, statistic) - grouped_correlation(
            b[rows], y[rows], gr, statistic
        )

    return _bootstrap(difference, len(x), g, n_boot, confidence, seed)


def seed_mean_ceiling(
    per_seed: np.ndarray,
    groups: Sequence | None = None,
    statistic: str = "kendall",
    draws: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> Agreement:
    """What a truth of seed means can be ranked to, measured rather than modelled: ``per_seed``
    is architectures x seeds (AP), and each draw resamples every architecture's seeds with
    replacement twice, independently, and correlates the two resampled means (within
    ``groups``). The value is the mean over draws, the interval their percentiles. Resampling
    k seeds with replacement understates their spread by (k - 1) / k, so with 3 seeds this
    ceiling is somewhat optimistic."""
    per_seed = np.asarray(per_seed, dtype=float)
    if per_seed.ndim != 2 or per_seed.shape[1] < 2 or np.isnan(per_seed).any():
        raise SettingError("seed_mean_ceiling needs architectures x seeds (>= 2), all measured")
    rng = np.random.default_rng(seed)
    n, k = per_seed.shape
    g = None if groups is None else np.asarray(groups)
    values = []
    for _ in range(draws):
        means = [
            np.take_along_axis(per_seed, rng.integers(k, size=(n, k)), axis=1).mean(axis=1)
            for _ in range(2)
        ]
        values.append(grouped_correlation(means[0], means[1], g, statistic))
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    if not len(values):
        return Agreement(float("nan"), float("nan"), float("nan"), n)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Agreement(float(values.mean()), float(low), float(high), n)
