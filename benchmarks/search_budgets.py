"""How many trials each way of serving several budgets needs: per-budget best score vs trials.

    .venv/bin/python benchmarks/search_budgets.py [--trials 160] [--seeds 0 1 2] [--proxy params]

One search must serve the paper's XS / S / M / L budgets (paper convention). Compared, each with
the same total number of trials and the driver's own objective (``search.driver.SearchObjective``,
no paper models enqueued), in-memory studies:

- ``nsga2 (score, MACs)``: one study, NSGA-II on the score and the paper MACs, constrained to L;
- ``tpe (score, MACs)``: the same with multi-objective TPE;
- ``tpe score, L only``: one single-objective TPE study constrained to the widest budget, L
  (what a single-budget search gives the smaller budgets);
- ``tpe per budget``: four single-objective TPE studies, each constrained to its own budget,
  a quarter of the trials each (interleaved when counting trials);
- ``random``: uniform sampling within L, the floor.

For each budget, a run's best score within it after t trials is divided by the best score any
run found within it; the table gives that ratio's mean over seeds at several t, and the trials a
run needed until all four budgets were within 1% of their best known (mean over seeds; a run that
never got there counts as ``--trials``, marked with '>').
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import optuna
import pandas as pd

from evaluators.proxies import ProxyContext, get_proxy
from search.budget import PAPER_BUDGETS, Budget
from search.driver import SearchObjective
from search_space.space import LitePoseSpace, largest_member_of

BUDGETS = {name: Budget(macs, "paper") for name, macs in PAPER_BUDGETS.items()}
WIDEST = max(BUDGETS.values(), key=lambda b: b.macs)


def _study(sampler: str, seed: int, multi: bool) -> optuna.Study:
    samplers = {
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=160)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--proxy", default="params")
    parser.add_argument("--supernet", default="litepose_supernet_multibranch")
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[20, 40, 80, 160])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = LitePoseSpace(largest_member_of(args.supernet))
    proxy = get_proxy(args.proxy)
    methods = [
        "nsga2 (score, MACs)",
        "tpe (score, MACs)",
        "tpe score, L only",
        "tpe per budget",
        "random",
    ]
    curves = {}
    for method in methods:
        for seed in args.seeds:
            start = time.perf_counter()
            curves[method, seed] = best_curves(run_method(method, space, proxy, args.trials, seed))
            print(f"{method} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    best = {n: max(c[n][-1] for c in curves.values()) for n in BUDGETS}
    rows = []
    for method in methods:
        row = {"method": method}
        for t in [c for c in args.checkpoints if c <= args.trials]:
            for name in BUDGETS:
                ratios = [max(curves[method, s][name][t - 1], 0) / best[name] for s in args.seeds]
                row[f"{name}@{t}"] = float(np.mean(ratios))
        needed = []
        for seed in args.seeds:
            close = np.all([curves[method, seed][n] >= 0.99 * best[n] for n in BUDGETS], axis=0)
            needed.append(int(np.argmax(close)) + 1 if close.any() else None)
        reached = [n for n in needed if n is not None]
        mean = np.mean([n if n is not None else args.trials for n in needed])
        row["trials to 99% on all"] = f"{'>' if len(reached) < len(needed) else ''}{mean:.0f}"
        row["per seed"] = " ".join(str(n) if n else f">{args.trials}" for n in needed)
        rows.append(row)
    table = pd.DataFrame(rows)
    print(f"proxy {args.proxy}, {args.trials} trials, seeds {args.seeds}")
    print(table.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
