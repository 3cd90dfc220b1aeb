"""How well does each proxy rank architectures? Rank agreement with the trained ground truth.

    python -m experiments.rank_proxies                         # the committed ground truth
    python -m experiments.rank_proxies ground_truth=<table.csv> supernet_checkpoint=<ckpt>

Reads the ground-truth table (``experiments.ground_truth``; nothing is retrained), scores each
of its architectures with every proxy in ``proxies`` at the architecture's own resolution gene
mapped by the rule the table was trained under (its ``run.json``), and writes to ``run_dir``:

* ``records.jsonl``: one line per (architecture, proxy) score; a rerun scores only the rest;
* ``scores.csv``: one row per architecture, a column per proxy, the truth (AP mean) beside them;
* ``ranking.csv`` / ``ranking.md``: per proxy and scope, Kendall's tau and Spearman's rho with
  bootstrap 95% intervals; scopes are the whole table, ``bands`` (pooled over the budget bands:
  members within +-``band`` of a paper budget's MACs, the ranking a constrained search needs) and
  each band alone; the ``seed ceiling`` rows give what two seeds of the same architectures reach;
* ``ranking.png`` / ``ranking.pdf`` (each proxy against the truth) and ``agreement.png`` (tau with
  its interval per proxy, whole table and within bands).

Beside the single proxies it ranks with combinations of them (``arch_search.rankers``): each
rank aggregation of ``combined`` (no fitted weights, so scored on the whole table) and the learned
ranker over ``learned_proxies`` (scored only out of sample: ``folds`` folds by architecture, fixed
by ``seed``). ``paired.csv`` / ``paired.md`` give each ranker's tau minus ``baseline``'s (MACs)
with a paired bootstrap interval, and the ``seed-mean ceiling`` rows what a truth of 3-seed means
can be ranked to, measured by resampling the seeds of the members that have 3.

A rerun in the same ``run_dir`` reuses its scores, so it must score the same truth with the same
seed: another ``seed`` or ``ground_truth`` than the folder's ``config.yaml`` is refused.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from tqdm import tqdm

from arch_search.budget import PAPER_BUDGETS
from arch_search.ground_truth import budget_bands, configs_of, load_table, run_records
from arch_search.proxies import get_proxy, list_proxies
from arch_search.rankers import AGGREGATIONS, aggregate_ranks, feature_matrix, out_of_fold
from arch_search.report import plot_agreement, plot_proxy_ranking
from evaluators.rank_agreement import (
    agreement,
    grouped_correlation,
    paired_difference,
    seed_ceiling,
    seed_mean_ceiling,
)
from experiments.cli import fail_clearly
from experiments.data import DatasetSchema
from experiments.proxy_data import proxy_context
from experiments.sections import LossSchema
from experiments.tables import to_markdown
from posecore.errors import SettingError, UnknownNameError
from posecore.records import JsonlRecords
from search_space.resolution import ResolutionRule

TRUTH = "truth_AP"
MEASURED_CEILING = "seed-mean ceiling"
CEILING_SEEDS = 3


@dataclass
class RankProxiesConfig:
    """The schema of ``conf/rank_proxies.yaml`` (its values and their meaning are there): an
    unknown key or a wrongly typed value fails when the config is composed."""

    ground_truth: str = MISSING
    seed: int = MISSING
    proxies: list[str] = MISSING
    proxy_options: dict[str, Any] = MISSING  # proxy name -> its keyword arguments
    supernet_checkpoint: str | None = MISSING
    band: float = MISSING
    combined: dict[str, list[str]] = MISSING  # ranker name -> the proxies it aggregates
    aggregation: str = MISSING
    learned: str = MISSING  # the learned ranker's name ('' = none)
    learned_proxies: list[str] = MISSING
    learned_trend: str = MISSING  # the trend variant's name ('' = none)
    trend_feature: str = MISSING  # the feature whose straight-line trend it fits unpenalized
    folds: int = MISSING
    alphas: list[float] = MISSING
    baseline: str = MISSING
    n_boot: int = MISSING
    run_dir: str = MISSING
    progress: bool = MISSING
    dataset: DatasetSchema | None = None  # the groups, typed (experiments.data)
    loss: LossSchema | None = None  # the group, typed (experiments.sections)


ConfigStore.instance().store(name="rank_proxies_schema", node=RankProxiesConfig)


class ScoreRecords(JsonlRecords):
    """records.jsonl: the proxy scores measured so far, so a rerun measures only the rest."""

    def __init__(self, path: Path):
        super().__init__(path, key=lambda record: (record["arch"], record["proxy"]))

    def measure(self, arch: str, proxy: str, score) -> dict:
        """``score()`` (a float), measured once per (arch, proxy)."""
        if (arch, proxy) not in self.done:
            start = time.perf_counter()
            record = {"arch": arch, "proxy": proxy, "score": float(score())}
            record["seconds"] = time.perf_counter() - start
            self.add(record)
        return self.done[(arch, proxy)]


def ranking_table(
    scores: pd.DataFrame,
    proxies: list[str],
    seed_sd: float,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per proxy and scope, tau and rho against the truth with bootstrap intervals; then the
    seed-ceiling rows (what a second seed of the same architectures would reach). The scope
    ``bands (3 seeds)`` is the in-band members whose truth is a mean of 3 seeds or more."""
    scopes = scopes_of(scores)
    rows = []
    for proxy in proxies:
        for scope, part, groups in scopes:
            row = {"proxy": proxy, "scope": scope}
            for stat, short in (("kendall", "tau"), ("spearman", "rho")):
                a = agreement(
                    part[proxy],
                    part[TRUTH],
                    None if groups is None else part[groups],
                    stat,
                    n_boot,
                    seed=seed,
                )
                row.update(
                    {short: a.value, f"{short}_low": a.low, f"{short}_high": a.high, "n": a.n}
                )
            rows.append(row)
    for scope, part, groups in scopes[:-1]:  # the modelled ceiling is of a one-seed truth
        row = {"proxy": "seed ceiling", "scope": scope, "n": len(part)}
        for stat, short in (("kendall", "tau"), ("spearman", "rho")):
            g = None if groups is None else part[groups]
            row[short] = seed_ceiling(part[TRUTH], seed_sd, g, stat, seed=seed)
        rows.append(row)
    return pd.DataFrame(rows)


def scopes_of(scores: pd.DataFrame) -> list[tuple[str, pd.DataFrame, str | None]]:
    """(scope, rows, column of the groups to pool within): the whole table, the members of
    all budget bands pooled within bands, each band, and the in-band members with 3 seeds."""
    in_band = scores[scores["band"].notna()]
    scopes = [("whole", scores, None), ("bands", in_band, "band")]
    scopes += [(f"band {b}", in_band[in_band["band"] == b], None) for b in PAPER_BUDGETS]
    return scopes + [("bands (3 seeds)", in_band[in_band["n_seeds"] >= CEILING_SEEDS], "band")]


def ranker_scores(scores: pd.DataFrame, truth: pd.DataFrame, cfg: DictConfig) -> dict:
    """The rankers' scores as new columns of ``scores``: each rank aggregation of
    ``cfg.combined`` over the whole table, and the learned ranker's out-of-fold predictions
    (folds by architecture, fixed by ``cfg.seed``). Returns what the learned ranker picked."""
    for name, members in cfg.combined.items():
        scores[name] = aggregate_ranks(scores, list(members), cfg.aggregation)
    if not cfg.learned:
        return {}
    members = list(cfg.learned_proxies)
    x = feature_matrix(configs_of(truth), scores, members)
    predicted, alphas = out_of_fold(
        x.to_numpy(), scores[TRUTH].to_numpy(), scores["arch"], cfg.folds, cfg.seed,
        alphas=tuple(cfg.alphas),
    )  # fmt: skip
    scores[cfg.learned] = predicted
    picked = {"features": list(x.columns), "alphas_per_fold": alphas}
    if cfg.learned_trend:
        if cfg.trend_feature not in x.columns:
            raise SettingError(
                f"trend_feature={cfg.trend_feature!r}: not a feature; one of {list(x.columns)}"
            )
        predicted, alphas = out_of_fold(
            x.to_numpy(), scores[TRUTH].to_numpy(), scores["arch"], cfg.folds, cfg.seed,
            alphas=tuple(cfg.alphas), trend=list(x.columns).index(cfg.trend_feature),
        )  # fmt: skip
        scores[cfg.learned_trend] = predicted
        picked["trend_alphas_per_fold"] = alphas
    return picked


def learned_names(cfg: DictConfig) -> tuple[str, ...]:
    """The learned rankers this run fits: none without ``learned`` (the trend variant is the
    same ridge, so it goes with it)."""
    if not cfg.learned:
        return ()
    return (cfg.learned, cfg.learned_trend) if cfg.learned_trend else (cfg.learned,)


def check_rankers(cfg: DictConfig, proxies: list[str]) -> None:
    """Every ranker setting names proxies that this run scores: checked before the first
    architecture is scored, so a wrong setting costs nothing (scoring the table takes minutes)."""
    if cfg.aggregation not in AGGREGATIONS:
        raise SettingError(f"aggregation={cfg.aggregation!r}: must be one of {AGGREGATIONS}")
    if cfg.baseline not in proxies:
        raise SettingError(f"baseline={cfg.baseline!r} is not among proxies={proxies}")
    settings = {  # setting -> (the proxies it names, how to drop the ranker instead)
        f"combined.{name}": (list(members), f"~combined.{name}")
        for name, members in cfg.combined.items()
    }
    if cfg.learned:
        settings["learned_proxies"] = (list(cfg.learned_proxies), "learned=''")
    for setting, (members, drop) in settings.items():
        missing = [m for m in members if m not in proxies]
        if missing:
            raise SettingError(
                f"{setting}={members}: {missing} not scored; add them to proxies= (or drop the "
                f"ranker: {drop})"
            )


def paired_table(
    scores: pd.DataFrame, rankers: list[str], baseline: str, n_boot: int, seed: int
) -> pd.DataFrame:
    """Per ranker and scope, its tau minus ``baseline``'s with the paired bootstrap interval
    (both correlations on the same resampled architectures)."""
    rows = []
    for ranker in rankers:
        for scope, part, groups in scopes_of(scores):
            d = paired_difference(
                part[ranker], part[baseline], part[TRUTH],
                None if groups is None else part[groups], "kendall", n_boot, seed=seed,
            )  # fmt: skip
            rows.append({
                "ranker": ranker, "scope": scope, f"tau - {baseline} tau": d.value,
                "low": d.low, "high": d.high, "n": d.n,
            })  # fmt: skip
    return pd.DataFrame(rows)


def measured_ceiling_rows(table_path: Path, scores: pd.DataFrame, seed: int) -> list[dict]:
    """The seed-mean ceiling of the members with ``CEILING_SEEDS`` seeds (seeds 0, 1, 2 of the
    ground truth's ``records.jsonl``), whole table and pooled within bands: Kendall and
    Spearman between two resamplings of their seed means, with percentile intervals."""
    records_path = table_path.parent / "records.jsonl"
    if not records_path.exists():
        return []
    records = pd.DataFrame(list(run_records(records_path).done.values()))
    wide = records.pivot_table(index="arch", columns="seed", values="AP")
    wide = wide[list(range(CEILING_SEEDS))].dropna() if CEILING_SEEDS <= wide.shape[1] else None
    if wide is None or len(wide) < 2:
        return []
    bands = scores.set_index("arch")["band"].reindex(wide.index)
    rows = []
    scopes = [("whole (3 seeds)", wide.index, False)]
    scopes.append(("bands (3 seeds)", bands.index[bands.notna()], True))
    for scope, members, grouped in scopes:
        row = {"proxy": MEASURED_CEILING, "scope": scope, "n": len(members)}
        for stat, short in (("kendall", "tau"), ("spearman", "rho")):
            c = seed_mean_ceiling(
                wide.loc[members].to_numpy(), bands.loc[members].to_numpy() if grouped else None,
                stat, seed=seed,
            )  # fmt: skip
            row.update({short: c.value, f"{short}_low": c.low, f"{short}_high": c.high})
        rows.append(row)
    return rows


def check_same_run(run_dir: Path, cfg: DictConfig) -> None:
    """The scores in ``run_dir`` were measured for one truth file with one seed; a rerun there
    with another of either would mix them."""
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return
    before = OmegaConf.load(saved)
    if before.get("seed") is not None and before.seed != cfg.seed:
        raise SettingError(
            f"seed={cfg.seed}, but the scores in {run_dir} were measured with seed={before.seed}: "
            f"rerun with seed={before.seed} or another run_dir"
        )
    old = before.get("ground_truth")
    if old is not None and Path(old).resolve() != Path(cfg.ground_truth).resolve():
        raise SettingError(
            f"ground_truth={cfg.ground_truth}, but the scores in {run_dir} are of "
            f"ground_truth={old}: rerun with ground_truth={old} or another run_dir"
        )


def scoring_options(proxy: str, options: dict) -> dict:
    """What a proxy's scores depend on besides the architecture: its options, with the
    supernet's checkpoint as an absolute path."""
    used = dict(options.get(proxy, {}))
    if "checkpoint" in used:
        used["checkpoint"] = str(Path(used["checkpoint"]).resolve())
    return used


def check_same_scoring(run_dir: Path, options: dict[str, dict]) -> None:
    """A score is stored by (architecture, proxy), so a proxy scored before with other options
    (or the supernet from another checkpoint) would be read back, not measured. ``scoring.json``
    keeps the options each proxy of ``run_dir`` was first scored with, over every run there;
    adding a proxy is fine, changing how one already scored is measured needs another run_dir."""
    path = run_dir / "scoring.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    for proxy, used in options.items():
        if proxy in known and known[proxy] != used:
            raise SettingError(
                f"proxy_options.{proxy}={used}, but the {proxy} scores in {run_dir} were "
                f"measured with {known[proxy]}: rerun with those or another run_dir"
            )
    path.write_text(json.dumps({**known, **options}, indent=1, sort_keys=True) + "\n")


def measured_seed_tau(table_path: Path) -> float:
    """Kendall's tau between two seeds of the architectures trained with several (mean over seed
    pairs), from the ground truth's ``records.jsonl`` beside its table."""
    records_path = table_path.parent / "records.jsonl"
    if not records_path.exists():
        return float("nan")
    records = pd.DataFrame(list(run_records(records_path).done.values()))
    wide = records.pivot_table(index="arch", columns="seed", values="AP").dropna()
    taus = [
        grouped_correlation(wide[a], wide[b], None)
        for i, a in enumerate(wide.columns)
        for b in wide.columns[i + 1 :]
    ]
    return float(np.mean(taus)) if taus else float("nan")


def rule_of(table_path: Path) -> ResolutionRule:
    """The resolution rule the table was trained under (its ``run.json``; defaults without)."""
    info = table_path.parent / "run.json"
    if info.exists():
        return ResolutionRule(**json.loads(info.read_text())["resolution_rule"])
    return ResolutionRule()


def run(cfg: DictConfig) -> pd.DataFrame:
    unknown = sorted(set(cfg.proxies) - set(list_proxies()))
    if unknown:
        raise UnknownNameError(f"proxies {unknown} unknown; known: {list_proxies()}")
    table_path = Path(cfg.ground_truth)
    truth = load_table(table_path)
    rule = rule_of(table_path)
    run_dir = Path(cfg.run_dir)
    check_same_run(run_dir, cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    context = proxy_context(cfg.dataset, rule, cfg.seed, cfg.loss)
    proxies = list(cfg.proxies)
    options = OmegaConf.to_container(cfg.proxy_options, resolve=True)
    if cfg.supernet_checkpoint:
        proxies.append("supernet")
        options["supernet"] = {**options.get("supernet", {}), "checkpoint": cfg.supernet_checkpoint}
    check_rankers(cfg, proxies)
    check_same_scoring(run_dir, {name: scoring_options(name, options) for name in proxies})
    built = {name: get_proxy(name, **options.get(name, {})) for name in proxies}
    records = ScoreRecords(run_dir / "records.jsonl")
    configs = configs_of(truth)
    rows = []
    pairs = list(zip(truth.itertuples(index=False), configs, strict=True))
    for row, config in tqdm(pairs, desc="architectures", unit="arch", disable=not cfg.progress):
        scored = {"arch": row.arch, "name": row.name, "gmacs_paper": row.gmacs_paper}
        for name, proxy in built.items():
            measured = records.measure(
                row.arch, name, lambda p=proxy, c=config: p.score(c, context)
            )
            scored[name] = measured["score"]
        scored.update({TRUTH: row.AP, "truth_AP_sd": row.AP_sd, "n_seeds": row.n_seeds})
        rows.append(scored)
    scores = pd.DataFrame(rows)
    scores["band"] = budget_bands(scores["gmacs_paper"], cfg.band)
    learned = ranker_scores(scores, truth, cfg)
    rankers = list(cfg.combined) + list(learned_names(cfg))
    scores.to_csv(run_dir / "scores.csv", index=False)
    seed_sd = float(truth.loc[truth["n_seeds"] > 1, "AP_sd"].median())
    table = ranking_table(scores, proxies + rankers, seed_sd, cfg.n_boot, cfg.seed)
    table = pd.concat(
        [table, pd.DataFrame(measured_ceiling_rows(table_path, scores, cfg.seed))],
        ignore_index=True,
    )
    table.to_csv(run_dir / "ranking.csv", index=False)
    others = [p for p in proxies + rankers if p != cfg.baseline]
    paired = paired_table(scores, others, cfg.baseline, cfg.n_boot, cfg.seed)
    paired.to_csv(run_dir / "paired.csv", index=False)
    seconds = {
        name: float(np.mean([records.done[(a, name)]["seconds"] for a in scores["arch"]]))
        for name in proxies
    }
    seed_tau = measured_seed_tau(table_path)
    in_band = scores[scores["band"].notna()]
    lines = [
        f"Ground truth: {table_path} ({len(truth)} architectures; median seed SD of AP "
        f"{seed_sd:.4f}; measured tau between two seeds of the multi-seed architectures "
        f"{seed_tau:.2f}; {int((in_band['n_seeds'] >= CEILING_SEEDS).sum())} of the "
        f"{len(in_band)} in-band members with {CEILING_SEEDS} seeds). Proxies scored at the "
        f"rule {rule.describe()}.",
        "",
        "Rankers: "
        + "; ".join(
            f"{name} = {cfg.aggregation} over {list(members)}"
            for name, members in cfg.combined.items()
        ),
    ]
    if cfg.learned:
        lines[-1] += (
            f"; {cfg.learned} = ridge over architecture features, log MACs and "
            f"{list(cfg.learned_proxies)}, out of {cfg.folds} folds by architecture (seed "
            f"{cfg.seed}; penalty per fold by inner cross-validation: "
            f"{learned['alphas_per_fold']}))"
        )
    if cfg.learned and cfg.learned_trend:
        lines[-1] += (
            f"; {cfg.learned_trend} = the same ridge on what is left after AP's straight-line "
            f"trend in {cfg.trend_feature} (fitted unpenalized in each training fold; penalty "
            f"per fold: {learned['trend_alphas_per_fold']})"
        )
    lines += [
        "",
        to_markdown(table),
        "",
        f"Paired bootstrap (same resampled architectures): Kendall tau minus {cfg.baseline}'s",
        "",
        to_markdown(paired),
        "",
        "Seconds per architecture: " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()),
    ]
    (run_dir / "ranking.md").write_text("\n".join(lines) + "\n")
    (run_dir / "paired.md").write_text(to_markdown(paired) + "\n")
    shown = table[table["proxy"] != MEASURED_CEILING]
    whole = shown[shown["scope"] == "whole"].set_index("proxy")
    order = whole.drop(index="seed ceiling")["tau"].sort_values(ascending=False).index
    plot_proxy_ranking(
        scores,
        pd.DataFrame({"proxy": order, "kendall_tau_vs_AP": whole.loc[order, "tau"].to_numpy()}),
        run_dir,
    )
    plot_agreement(shown, run_dir)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(paired.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return table


@hydra.main(version_base="1.3", config_path="conf", config_name="rank_proxies")
def main(cfg: DictConfig) -> None:
    with fail_clearly("rank_proxies"):
        run(cfg)
    print(f"results in {cfg.run_dir}")


if __name__ == "__main__":
    main()
