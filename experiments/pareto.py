"""Several runs' trials on one accuracy-vs-MACs figure, from their ``trials.csv`` files.

    python -m experiments.pareto runs=[outputs/search/trials.csv,outputs/random/trials.csv] \\
        labels=[searched,random] styles=[front,points] out=outputs/pareto

Each run is drawn in its style: ``front`` (its scored trials and their Pareto front), ``points``
(scattered: random members, presets) or ``path`` (joined in row order). The y axis is the AP
estimated from the runs' proxy (``arch_search.calibration``: an isotonic fit of the proxy's scores
on
the ground truth, or the supernet's recalibrated AP itself), the x axis GMACs in ``convention``;
the budgets are vertical lines, architectures that were trained in the ground truth get their
trained AP, and the paper's published mAP has a panel of its own. Every run must have been
scored with one proxy (one ``<proxy>_score`` column). Writes ``<out>/<name>.png`` / ``.pdf``.

Runs to overlay come from ``experiments.search``: a search (``sampler=nsga2``), random members
(``sampler=random``), the paper's presets (``seed_paper_models=true n_trials=4``: the four presets
are the first trials of a new study).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from arch_search.budget import parse_budgets
from arch_search.calibration import ap_estimator, ground_truth_ap
from arch_search.report import STYLES, Run, plot_runs
from experiments.cli import fail_clearly
from experiments.committed import GROUND_TRUTH, PROXY_SCORES
from posecore.errors import SettingError

SCORE_SUFFIX = "_score"


@dataclass
class ParetoConfig:
    runs: list[str] = MISSING  # trials.csv files (experiments.search)
    labels: list[str] = field(default_factory=list)  # one per run; default: the run's folder
    styles: list[str] = field(default_factory=list)  # front | points | path; default: front
    budgets: Any = "paper"  # as in experiments.search
    convention: str = "paper"
    calibration: str | None = None  # default: results/rank_proxies/scores.csv
    ground_truth: str | None = None  # default: results/ground_truth/table.csv
    out: str = "outputs/pareto"
    name: str = "pareto"


ConfigStore.instance().store(name="pareto_schema", node=ParetoConfig)


def load_runs(cfg: ParetoConfig) -> tuple[list[Run], str]:
    """The runs and their shared objective column; errors name the setting at fault."""
    paths = [Path(p) for p in cfg.runs]
    if not paths:
        raise SettingError("runs=[]: give one or more trials.csv files, runs=[a/trials.csv,...]")
    for key, values in (("labels", cfg.labels), ("styles", cfg.styles)):
        if values and len(values) != len(paths):
            raise SettingError(
                f"{key}={list(values)}: give one per run ({len(paths)}), or leave it unset"
            )
    runs, objectives = [], {}
    for index, path in enumerate(paths):
        if not path.is_file():
            raise SettingError(f"runs[{index}]={str(path)!r}: no such file (a trials.csv)")
        where = f"runs[{index}]={str(path)!r}"
        try:
            table = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SettingError(f"{where}: not a readable CSV file ({first})") from None
        scores = [c for c in table.columns if c.endswith(SCORE_SUFFIX)]
        if len(scores) != 1 or not {"state", "hash", "macs", "macs_paper"} <= set(table.columns):
            raise SettingError(
                f"{where}: not a trials.csv of experiments.search (it needs "
                "state, hash, macs, macs_paper and one <proxy>_score column)"
            )
        for column in ("macs", "macs_paper", scores[0]):
            numbers = pd.to_numeric(table[column], errors="coerce")
            bad = table[column][numbers.isna() & table[column].notna()]
            if len(bad):
                row = int(bad.index[0])
                raise SettingError(
                    f"{where}: row {row + 2}, column {column}={bad.iloc[0]!r}: must be a number "
                    "(a trials.csv of experiments.search, edited or cut?)"
                )
            table[column] = numbers
        objectives[str(path)] = scores[0]
        style = cfg.styles[index] if cfg.styles else "front"
        if style not in STYLES:
            raise SettingError(f"styles[{index}]={style!r}: must be one of {STYLES}")
        label = cfg.labels[index] if cfg.labels else path.parent.name
        runs.append(Run(label, table, style))
    if len(set(objectives.values())) > 1:
        raise SettingError(
            f"runs were scored by different proxies ({objectives}): one figure has one y axis; "
            "overlay runs of one proxy"
        )
    return runs, next(iter(objectives.values()))


def overlay(cfg: ParetoConfig) -> list[Path]:
    runs, objective = load_runs(cfg)
    budgets = parse_budgets(cfg.budgets, cfg.convention)
    estimator = ap_estimator(objective.removesuffix(SCORE_SUFFIX), cfg.calibration or PROXY_SCORES)
    truth = ground_truth_ap(cfg.ground_truth or GROUND_TRUTH)
    return plot_runs(runs, objective, budgets, Path(cfg.out), estimator, truth, cfg.name)


@hydra.main(version_base="1.3", config_path="conf", config_name="pareto")
def main(cfg: ParetoConfig) -> None:
    with fail_clearly("pareto"):
        written = overlay(cfg)
    print("wrote " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
