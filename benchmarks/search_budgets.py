"""How many trials each way of serving several budgets needs: per-budget best score vs trials.

    .venv/bin/python benchmarks/search_budgets.py [--trials 320] [--seeds 0 1 2] [--proxy macs]
        [--methods ...] [--save curves.json]     # or: --load a.json b.json (only the table)

One search must serve the paper's XS / S / M / L budgets (paper convention). Compared, each with
the same total number of trials and the driver's own objective
(``arch_search.driver.SearchObjective``,
no paper models enqueued), in-memory studies:

- ``nsga2 (score, MACs)``: one study, NSGA-II on the score and the paper MACs, constrained to L
  (Optuna's default population of 50; ``population 16``: smaller generations);
- ``tpe (score, MACs)``: the same with multi-objective TPE;
- ``tpe score, L only``: one single-objective TPE study constrained to the widest budget, L
  (what a single-budget search gives the smaller budgets);
- ``tpe per budget``: four single-objective TPE studies, each constrained to its own budget,
  a quarter of the trials each (interleaved when counting trials);
- ``random``: uniform sampling within L, the floor.

The default proxy, ``macs`` (true MACs, higher is better), makes each budget's best the largest
network that fits it: a pure test of how well a search serves four constraints at once. For each
budget, a run's best score within it after t trials is divided by the best score any run found
within it; the table gives that ratio's mean over seeds and budgets at several t, the worst
budget's mean, and the trials a run needed until all four budgets were within ``--reach`` (95%)
of their best known (mean over seeds; a run that never got there counts as ``--trials``, '>').
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from arch_search.budget import PAPER_BUDGETS, Budget
from arch_search.driver import SearchObjective
from evaluators.proxies import ProxyContext, get_proxy
from search_space.space import LitePoseSpace, largest_member_of

BUDGETS = {name: Budget(macs, "paper") for name, macs in PAPER_BUDGETS.items()}
WIDEST = max(BUDGETS.values(), key=lambda b: b.macs)


def _study(sampler: str, seed: int, multi: bool) -> optuna.Study:
    samplers = {
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
        "nsga2-16": lambda: optuna.samplers.NSGAIISampler(population_size=16, seed=seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, multivariate=True),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    directions = ["maximize", "minimize"] if multi else ["maximize"]
    return optuna.create_study(sampler=samplers[sampler](), directions=directions)


def _rows(study: optuna.Study, order: list[int] | None = None) -> list[tuple[float, float]]:
    """(paper MACs, score) per trial, in trial order (or ``order``)."""
    trials = study.trials
    rows = [(t.user_attrs["macs_paper"], t.values[0]) for t in trials]
    return rows if order is None else [rows[i] for i in order]


def run_method(method: str, space, proxy, trials: int, seed: int) -> list[tuple[float, float]]:
    context = ProxyContext(seed=seed)
    if method == "tpe per budget":
        per = []
        for budget in BUDGETS.values():
            study = _study("tpe", seed, multi=False)
            study.optimize(SearchObjective(space, budget, proxy, context, False), trials // 4)
            per.append(_rows(study))
        return [per[k][j] for j in range(trials // 4) for k in range(len(per))]
    sampler, multi = {
        "nsga2 (score, MACs)": ("nsga2", True),
        "nsga2 (score, MACs), population 16": ("nsga2-16", True),
        "tpe (score, MACs)": ("tpe", True),
        "tpe score, L only": ("tpe", False),
        "random": ("random", False),
    }[method]
    study = _study(sampler, seed, multi)
    study.optimize(SearchObjective(space, WIDEST, proxy, context, multi), trials)
    return _rows(study)


def best_curves(rows: list[tuple[float, float]]) -> dict[str, np.ndarray]:
    """Per budget: the best score within it after 1..len(rows) trials (-inf before any)."""
    curves = {}
    for name, budget in BUDGETS.items():
        scores = np.array([s if m <= budget.macs else -np.inf for m, s in rows])
        curves[name] = np.maximum.accumulate(scores)
    return curves


METHODS = (
    "nsga2 (score, MACs)",
    "nsga2 (score, MACs), population 16",
    "tpe (score, MACs)",
    "tpe score, L only",
    "tpe per budget",
    "random",
)


def summarise(curves: dict, seeds: list[int], trials: int, checkpoints: list[int], reach: float):
    """The table: per method, the mean over seeds and budgets of best / best known at each
    checkpoint (and the worst budget's), and the trials until every budget is within ``reach``."""
    methods = list(dict.fromkeys(m for m, _ in curves))
    best = {n: max(c[n][-1] for c in curves.values()) for n in BUDGETS}
    rows = []
    for method in methods:
        row = {"method": method}
        for t in [c for c in checkpoints if c <= trials]:
            ratios = np.array(
                [[max(curves[method, s][n][t - 1], 0) / best[n] for n in BUDGETS] for s in seeds]
            )  # (seeds, budgets)
            row[f"mean @{t}"] = float(ratios.mean())
            row[f"worst budget @{t}"] = float(ratios.mean(axis=0).min())
        needed = []
        for seed in seeds:
            close = np.all([curves[method, seed][n] >= reach * best[n] for n in BUDGETS], axis=0)
            needed.append(int(np.argmax(close)) + 1 if close.any() else None)
        reached = [n for n in needed if n is not None]
        mean = np.mean([n if n is not None else trials for n in needed])
        label = f"trials to {reach:.0%} on all four"
        row[label] = f"{'>' if len(reached) < len(needed) else ''}{mean:.0f}"
        row["per seed"] = " ".join(str(n) if n else f">{trials}" for n in needed)
        rows.append(row)
    return pd.DataFrame(rows)


def _save(curves: dict, path: str) -> None:
    saved = {f"{m}|{s}": {n: c.tolist() for n, c in per.items()} for (m, s), per in curves.items()}
    Path(path).write_text(json.dumps(saved))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=320)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--proxy", default="macs")
    parser.add_argument("--supernet", default="litepose_supernet_multibranch")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[40, 80, 160, 320])
    parser.add_argument("--reach", type=float, default=0.95)
    parser.add_argument("--save", help="also write the curves to this JSON file")
    parser.add_argument("--load", nargs="+", help="only summarise curves saved with --save")
    args = parser.parse_args()
    if args.load:
        curves = {}
        for path in args.load:
            for key, per in json.loads(Path(path).read_text()).items():
                method, seed = key.rsplit("|", 1)
                curves[method, int(seed)] = {n: np.array(v) for n, v in per.items()}
        seeds = sorted({s for _, s in curves})
        trials = len(next(iter(next(iter(curves.values())).values())))
    else:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        space = LitePoseSpace(largest_member_of(args.supernet))
        proxy = get_proxy(args.proxy)
        curves, seeds, trials = {}, args.seeds, args.trials
        for seed in seeds:  # seed outermost: an interrupted benchmark has every method
            for method in args.methods:
                start = time.perf_counter()
                rows = run_method(method, space, proxy, trials, seed)
                curves[method, seed] = best_curves(rows)
                print(f"{method} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
                if args.save:  # after every run: a long benchmark keeps what it measured
                    _save(curves, args.save)
    table = summarise(curves, seeds, trials, args.checkpoints, args.reach)
    print(f"{trials} trials, seeds {seeds}; best score within each budget / best any run found")
    print(table.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
