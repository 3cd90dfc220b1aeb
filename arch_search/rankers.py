"""Rankers that combine signals: a rank aggregation with no fitted weights, and a learned ranker.

No single proxy beats counting MACs inside a budget band (``results/rank_proxies``), while the
field's best rankers combine signals. Two ways of combining, both over the proxies of
``evaluators.proxies`` (MACs included), both usable by a search as a proxy:

* :func:`aggregate_ranks`: each proxy's scores turned into ranks within a population and the
  ranks combined, AZ-NAS style (Lee & Ham 2024): ``log_rank`` sums ``log(rank / n)`` (a member
  must be good on every proxy; one bad rank costs much), ``mean_rank`` averages ``rank / n``.
  Nothing is fitted, so it is scored on the whole ground truth. As a search proxy
  (``combined``) a candidate is ranked among a reference population (the ground truth's scores,
  ``experiments.rank_proxies``' ``scores.csv``) plus itself.
* :class:`RidgeRanker`: a ridge regression of trained AP on architecture features (resolution,
  widths, depths, kernels, branches: :func:`arch_features`), log MACs and proxy scores, its
  penalty picked by cross-validation inside the training rows only. It is scored only out of
  sample (:func:`out_of_fold`: k folds by architecture, fixed by a seed, no architecture in its
  own training fold). As a search proxy (``learned``) it is fitted on a ground-truth table the
  user names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from arch_search.ground_truth import configs_of, load_table
from evaluators.macs_fast import fast_macs
from evaluators.proxies import Proxy, ProxyContext, register_proxy
from posecore.errors import MissingFileError, SettingError
from search_space.config import ArchConfig, LitePoseConfig

AGGREGATIONS = ("log_rank", "mean_rank")
# Proxy scores that grow multiplicatively with the network: their log is what a linear model
# should see.
LOG_SCALED = ("params", "macs", "gmacs_paper")
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def aggregate_ranks(scores: pd.DataFrame, proxies: Sequence[str], how: str = "log_rank"):
    """The combined score of every row of ``scores`` (higher is better): each proxy's column
    ranked within the rows (1 = lowest, ties averaged), divided by the row count, then the logs
    summed (``log_rank``) or the values averaged (``mean_rank``)."""
    if how not in AGGREGATIONS:
        raise SettingError(f"aggregation={how!r}: must be one of {AGGREGATIONS}")
    missing = [p for p in proxies if p not in scores.columns]
    if missing or not proxies:
        raise SettingError(f"rank aggregation over {list(proxies)}: no scores for {missing}")
    ranks = np.stack([rankdata(scores[p].to_numpy(dtype=float)) for p in proxies], axis=1)
    ranks = ranks / len(scores)
    combined = np.log(ranks).sum(axis=1) if how == "log_rank" else ranks.mean(axis=1)
    return pd.Series(combined, index=scores.index)


def fold_ids(arch: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """The fold of each row: architectures (not rows) are dealt round-robin to ``folds`` folds
    in an order shuffled by ``seed``, so every row of an architecture shares its fold."""
    arch = np.asarray(arch)
    unique = np.unique(arch)
    if not 2 <= folds <= len(unique):
        raise SettingError(f"folds={folds}: need 2 <= folds <= {len(unique)} architectures")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[i]: n % folds for n, i in enumerate(order)}
    return np.array([fold_of[a] for a in arch])


def arch_features(config: ArchConfig) -> dict[str, float]:
    """What a LitePose architecture is, as numbers a linear model can weigh: the resolution
    gene, stem width, per stage its width, depth, mean kernel, mean expansion and the blocks of
    its higher-resolution branches, the head's widths and the log of both MACs conventions
    (kernels of blocks past a stage's depth, which the raw genes carry, are left out)."""
    if not isinstance(config, LitePoseConfig):
        raise SettingError(f"learned ranker: {type(config).__name__} is not a LitePose network")
    macs = fast_macs(config)
    features = {
        "resolution": config.input_size,
        "stem": config.stem_channels,
        "log_macs": np.log(macs.macs),
        "log_macs_paper": np.log(macs.macs_paper),
    }
    for s, stage in enumerate(config.stages, start=1):
        features[f"stage{s}.width"] = stage.channels
        features[f"stage{s}.depth"] = stage.depth
        features[f"stage{s}.kernel"] = np.mean([b.kernel for b in stage.blocks])
        features[f"stage{s}.expansion"] = np.mean([b.expansion for b in stage.blocks])
        features[f"stage{s}.branch_blocks"] = sum(b.depth for b in stage.branches)
    for h, width in enumerate(config.head.channels):
        features[f"head{h}.width"] = width
    return {k: float(v) for k, v in features.items()}


def feature_matrix(configs: Sequence[ArchConfig], scores: pd.DataFrame, proxies: Sequence[str]):
    """Architecture features beside the proxy scores (``scores``: one row per config, a column
    per proxy; those in ``LOG_SCALED`` as logs)."""
    frame = pd.DataFrame([arch_features(c) for c in configs])
    for proxy in proxies:
        values = scores[proxy].to_numpy(dtype=float)
        frame[proxy] = np.log(values) if proxy in LOG_SCALED else values
    return frame


class RidgeRanker:
    """Ridge regression on standardised features (numpy; the penalty from ``alphas`` by an
    inner ``inner_folds``-fold cross-validation over the training rows alone).

    With ``trend`` (a column index, e.g. that of ``log_macs``), AP's straight-line trend in that
    column is fitted first by plain least squares and the ridge learns only what is left: the
    penalty then shrinks the corrections to the trend, not the trend, which across the table is
    most of what there is to learn, while inside a budget band only the corrections can order
    members of similar MACs."""

    def __init__(
        self,
        alphas: Sequence[float] = ALPHAS,
        inner_folds: int = 5,
        seed: int = 0,
        trend: int | None = None,
    ):
        self.alphas, self.inner_folds, self.seed = tuple(alphas), inner_folds, seed
        self.trend = trend

    def fit(self, x: np.ndarray, y: np.ndarray) -> RidgeRanker:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        self.line = (0.0, 0.0)
        if self.trend is not None:
            slope, intercept = np.polyfit(x[:, self.trend], y, 1)
            self.line = (float(slope), float(intercept))
            y = y - self._line(x)
        if len(self.alphas) > 1:
            inner = fold_ids(
                np.arange(len(y)).astype(str), min(self.inner_folds, len(y)), self.seed
            )
            errors = []
            for alpha in self.alphas:
                sq = 0.0
                for k in np.unique(inner):
                    train = inner != k
                    w = _ridge(x[train], y[train], alpha)
                    sq += float(((_predict(w, x[~train]) - y[~train]) ** 2).sum())
                errors.append(sq)
            self.alpha = self.alphas[int(np.argmin(errors))]
        else:
            self.alpha = self.alphas[0]
        self.weights = _ridge(x, y, self.alpha)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return _predict(self.weights, x) + self._line(x)

    def _line(self, x: np.ndarray) -> np.ndarray:
        if self.trend is None:
            return np.zeros(len(x))
        slope, intercept = self.line
        return slope * x[:, self.trend] + intercept


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float):
    """(mean, scale, coefficients, intercept); constant columns get weight 0."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale
    centre = y.mean()
    coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - centre))
    return mean, scale, coef, centre


def _predict(weights, x: np.ndarray) -> np.ndarray:
    mean, scale, coef, centre = weights
    return ((x - mean) / scale) @ coef + centre


def out_of_fold(
    x: np.ndarray, y: np.ndarray, arch: Sequence[str], folds: int = 5, seed: int = 0, **ranker
) -> tuple[np.ndarray, list[float]]:
    """Every row's prediction by a :class:`RidgeRanker` fitted on the other folds only (folds by
    architecture, :func:`fold_ids`), and the penalty each fold picked."""
    fold = fold_ids(arch, folds, seed)
    predicted = np.full(len(y), np.nan)
    alphas = []
    for k in range(folds):
        held = fold == k
        model = RidgeRanker(seed=seed, **ranker).fit(x[~held], y[~held])
        predicted[held] = model.predict(x[held])
        alphas.append(model.alpha)
    return predicted, alphas


def _reference_scores(path: str | Path, proxies: Sequence[str]) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise MissingFileError(
            f"proxy scores {path} not found: write them with python -m experiments.rank_proxies "
            "(its scores.csv), or point scores= at one"
        )
    scores = pd.read_csv(path)
    missing = [p for p in proxies if p not in scores.columns]
    if missing:
        raise SettingError(
            f"{path} has no scores for {missing}: rerun experiments.rank_proxies with them in "
            "proxies="
        )
    return scores


class _ComponentProxies(Proxy):
    """Scores a candidate with each of ``proxies`` (their options in ``proxy_options``)."""

    def __init__(self, proxies: Sequence[str], proxy_options: dict | None = None):
        options = proxy_options or {}
        from arch_search.proxies import get_proxy  # the registry imports this module first

        self.components = {name: get_proxy(name, **options.get(name, {})) for name in proxies}
        self.needs_data = any(p.needs_data for p in self.components.values())
        self.cost = " + ".join(p.cost for p in self.components.values())

    def component_scores(self, config: ArchConfig, context: ProxyContext) -> dict[str, float]:
        return {name: float(p.score(config, context)) for name, p in self.components.items()}


@register_proxy
class CombinedProxy(_ComponentProxies):
    """The rank aggregation of ``proxies`` as a search proxy: a candidate's ranks among the
    reference population of ``scores`` (``experiments.rank_proxies``' ``scores.csv``, measured
    under the same seed and resolution rule) with the candidate added."""

    name = "combined"

    def __init__(
        self,
        proxies: Sequence[str] = ("macs", "synflow", "jacob_cov"),
        scores: str = "results/rank_proxies/scores.csv",
        aggregation: str = "log_rank",
        proxy_options: dict | None = None,
    ):
        super().__init__(proxies, proxy_options)
        if aggregation not in AGGREGATIONS:
            raise SettingError(f"aggregation={aggregation!r}: must be one of {AGGREGATIONS}")
        self.proxies, self.aggregation = list(proxies), aggregation
        self.reference = _reference_scores(scores, proxies)[self.proxies]

    def score(self, config, context):
        row = pd.DataFrame([self.component_scores(config, context)])
        population = pd.concat([self.reference, row], ignore_index=True)
        return float(aggregate_ranks(population, self.proxies, self.aggregation).iloc[-1])


@register_proxy
class LearnedProxy(_ComponentProxies):
    """The learned ranker as a search proxy: a :class:`RidgeRanker` fitted on every architecture
    of ``ground_truth`` (a ``table.csv``) with their proxy scores from ``scores`` (the
    ``scores.csv`` of ``experiments.rank_proxies`` on that table); a candidate scores its
    predicted AP. ``trend`` (e.g. ``log_macs``) fits AP's straight-line trend in that feature
    unpenalized first (``rank_proxies``' ``learned_trend``)."""

    name = "learned"

    def __init__(
        self,
        ground_truth: str | None = None,
        scores: str = "results/rank_proxies/scores.csv",
        proxies: Sequence[str] = ("params", "macs", "synflow", "grad_norm", "snip", "jacob_cov"),
        alphas: Sequence[float] = ALPHAS,
        seed: int = 0,
        trend: str | None = None,
        proxy_options: dict | None = None,
    ):
        if not ground_truth:
            raise SettingError(
                "proxy=learned needs the ground truth it learns from: "
                "+proxy_options.ground_truth=<table.csv> (e.g. results/ground_truth/table.csv)"
            )
        super().__init__(proxies, proxy_options)
        self.proxies = list(proxies)
        table = load_table(ground_truth)
        reference = _reference_scores(scores, proxies).set_index("arch")
        absent = sorted(set(table["arch"]) - set(reference.index))
        if absent:
            raise SettingError(
                f"{scores} lacks scores of {len(absent)} architectures of {ground_truth} (e.g. "
                f"{absent[0]}): rerun experiments.rank_proxies ground_truth={ground_truth}"
            )
        x = feature_matrix(configs_of(table), reference.loc[table["arch"]].reset_index(), proxies)
        self.columns = list(x.columns)
        if trend is not None and trend not in self.columns:
            raise SettingError(f"trend={trend!r}: not a feature; one of {self.columns}")
        column = None if trend is None else self.columns.index(trend)
        self.model = RidgeRanker(alphas, seed=seed, trend=column)
        self.model.fit(x.to_numpy(), table["AP"].to_numpy())

    def score(self, config, context):
        x = feature_matrix(
            [config], pd.DataFrame([self.component_scores(config, context)]), self.proxies
        )
        return float(self.model.predict(x[self.columns].to_numpy())[0])
