"""How many trials each way of serving several budgets needs: per-budget best score vs trials.

    .venv/bin/python benchmarks/search_budgets.py [--trials 320] [--seeds 0 1 2] [--proxy macs]
        [--methods ...] [--long evolution 3200] [--cache scores.json] [--save curves.json]
    .venv/bin/python benchmarks/search_budgets.py --load a.json b.json     # only the table
    .venv/bin/python benchmarks/search_budgets.py --proxy supernet \
        --proxy-option checkpoint=<fair supernet>/checkpoints/last.pt --cache supernet_scores.json

One search must serve the paper's XS / S / M / L budgets (paper convention). Compared, each with
the same number of trials, the driver's own objective (``arch_search.driver.SearchObjective``)
and sampler (``arch_search.driver.make_sampler``), in-memory studies, no presets enqueued:

- ``random within L``: uniform members of the space, constrained to the widest budget (the
  main job's old default: NSGA-II's first generation of 50 is exactly this);
- ``random within each budget``: ``sampler=random_within``, every trial drawn within its turn's
  budget (``arch_search.evolution.BudgetedSampler`` with ``evolve=False``);
- ``evolution``: ``sampler=evolution``, regularized evolution within each budget; variants as
  ``evolution(population=16,tournament=4,mutation=0.2,crossover=0)``;
- ``nsga2 (score, MACs)`` / ``tpe (score, MACs)``: one two-objective study constrained to L;
- ``tpe score, L only`` / ``tpe per budget``: kept from the first version of this benchmark.

For each budget, a run's best score within it after t trials is divided by the best score known
within it: the best of every run of this invocation and of ``--long`` (one longer run of one
method, seed 0, also printed). The table gives that fraction's mean over budgets and seeds at
each checkpoint, the worst budget (each seed's worst budget, then the worst seed), and the
trials until every budget was within ``--reach`` (98%) of its best known.

``--proxy macs`` (true MACs, higher is better) makes each budget's best the largest network that
fits it: a pure test of serving four constraints. A scored proxy (``--proxy jacob_cov``, ~2 s an
architecture) is scored once per architecture and kept in ``--cache`` (JSON, by arch hash) for
every method and seed: its context uses seed 0 whatever the run's seed, so a score is a function
of the architecture alone; it is built like ``experiments.search``'s (demo data and loss, the
default resolution rule). With ``--proxy supernet`` (``--proxy-option checkpoint=...``) the
space searched is the checkpoint's own, as in ``experiments.search``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import yaml

from arch_search.budget import PAPER_BUDGETS, Budget
from arch_search.driver import SearchObjective, SearchSettings, make_sampler
from arch_search.evolution import EvolutionSettings
from arch_search.proxies import get_proxy
from evaluators.proxies import Proxy, ProxyContext
from search_space import arch_hash
from search_space.space import LitePoseSpace, largest_member_of

REPO = Path(__file__).resolve().parents[1]
BUDGETS = {name: Budget(macs, "paper") for name, macs in PAPER_BUDGETS.items()}
WIDEST = max(BUDGETS.values(), key=lambda b: b.macs)

METHODS = {  # name -> (sampler, multi-objective)
    "random within L": ("random", False),
    "random within each budget": ("random_within", False),
    "evolution": ("evolution", False),
    "nsga2 (score, MACs)": ("nsga2", True),
    "tpe (score, MACs)": ("tpe", True),
    "tpe score, L only": ("tpe", False),
}
DEFAULT_METHODS = list(METHODS)[:5]
VARIANT = re.compile(r"evolution\((.*)\)")


class CachedProxy(Proxy):
    """``proxy``'s score by arch hash, kept in a JSON file: one score per architecture across
    methods, seeds and invocations."""

    def __init__(self, proxy: Proxy, path: str | None):
        self.proxy, self.path, self.name = proxy, Path(path) if path else None, proxy.name
        self.scores = json.loads(self.path.read_text()) if self.path and self.path.exists() else {}
        self.scored = 0

    def score(self, config, context) -> float:
        digest = arch_hash(config)
        if digest not in self.scores:
            self.scores[digest] = float(self.proxy.score(config, context))
            self.scored += 1
            if self.path is not None:
                self.path.write_text(json.dumps(self.scores))
        return self.scores[digest]


def _settings(method: str, seed: int) -> tuple[SearchSettings, bool]:
    match = VARIANT.fullmatch(method)
    if match:
        options = dict(kv.split("=") for kv in match.group(1).split(","))
        evolution = EvolutionSettings(
            **{k: (float(v) if "." in v else int(v)) for k, v in options.items()}
        )
        sampler, multi = "evolution", False
    else:
        evolution = EvolutionSettings()
        sampler, multi = METHODS[method]
    settings = SearchSettings(
        BUDGETS, Path("."), sampler=sampler, seed=seed, evolution=evolution, multi_objective=multi
    )
    return settings, multi


def run_method(method, space, proxy, context, trials: int, seed: int):
    """(paper MACs, score) per trial, in trial order."""
    if method == "tpe per budget":
        per = []
        for budget in BUDGETS.values():
            study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
            study.optimize(SearchObjective(space, budget, proxy, context, False), trials // 4)
            per.append(_rows(study))
        return [per[k][j] for j in range(trials // 4) for k in range(len(per))]
    settings, multi = _settings(method, seed)
    directions = ["maximize", "minimize"] if multi else ["maximize"]
    study = optuna.create_study(sampler=make_sampler(settings, space), directions=directions)
    study.optimize(SearchObjective(space, WIDEST, proxy, context, multi), trials)
    return _rows(study)


def _rows(study: optuna.Study) -> list[tuple[float, float]]:
    return [(t.user_attrs["macs_paper"], t.values[0]) for t in study.trials]


def best_curves(rows: list[tuple[float, float]]) -> dict[str, np.ndarray]:
    """Per budget: the best score within it after 1..len(rows) trials (-inf before any)."""
    curves = {}
    for name, budget in BUDGETS.items():
        scores = np.array([s if m <= budget.macs else -np.inf for m, s in rows])
        curves[name] = np.maximum.accumulate(scores)
    return curves


def best_known(curves: dict) -> dict[str, float]:
    return {n: max(c[n][-1] for c in curves.values()) for n in BUDGETS}


def summarise(curves: dict, checkpoints: list[int], reach: float, best: dict[str, float]):
    """Per method: mean and worst fraction of the best known at each checkpoint, and the trials
    until every budget is within ``reach`` (per seed; '>' where a seed never got there)."""
    rows = []
    for method in dict.fromkeys(m for m, _ in curves):
        seeds = sorted(s for m, s in curves if m == method)
        trials = len(curves[method, seeds[0]]["L"])
        row = {"method": method}
        for t in [c for c in checkpoints if c <= trials]:
            ratios = np.array(
                [[_fraction(curves[method, s][n][t - 1], best[n]) for n in BUDGETS] for s in seeds]
            )  # (seeds, budgets)
            row[f"mean @{t}"] = float(ratios.mean())
            row[f"worst @{t}"] = float(ratios.min())
        needed = []
        for seed in seeds:
            close = np.all([curves[method, seed][n] >= reach * best[n] for n in BUDGETS], axis=0)
            needed.append(int(np.argmax(close)) + 1 if close.any() else None)
        row[f"trials to {reach:.0%}"] = " ".join(str(n) if n else f">{trials}" for n in needed)
        rows.append(row)
    return pd.DataFrame(rows)


def per_budget(curves: dict, t: int, best: dict[str, float]) -> pd.DataFrame:
    rows = []
    for method in dict.fromkeys(m for m, _ in curves):
        seeds = sorted(s for m, s in curves if m == method)
        row = {"method": method}
        for n in BUDGETS:
            row[n] = float(
                np.mean([_fraction(curves[method, s][n][t - 1], best[n]) for s in seeds])
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _fraction(score: float, best: float) -> float:
    """A score as a fraction of the best known (0 before any member fits). Proxies whose scores
    can be negative would need another normalisation; macs and jacob_cov are positive."""
    return max(score, 0.0) / best if np.isfinite(score) else 0.0


def _save(curves: dict, path: str) -> None:
    saved = {f"{m}|{s}": {n: c.tolist() for n, c in per.items()} for (m, s), per in curves.items()}
    Path(path).write_text(json.dumps(saved))


def _load(paths: list[str]) -> dict:
    curves = {}
    for path in paths:
        for key, per in json.loads(Path(path).read_text()).items():
            method, seed = key.rsplit("|", 1)
            curves[method, int(seed)] = {n: np.array(v) for n, v in per.items()}
    return curves


def proxy_and_context(name: str, options: dict, supernet: str):
    """The proxy (with ``options``, e.g. the supernet proxy's ``checkpoint``), the context and
    the space ``experiments.search`` would score and search with (seed 0): with the supernet
    proxy, the checkpoint's own space at the sizes it was trained at."""
    proxy = get_proxy(name, **options)
    if not proxy.needs_data:
        return proxy, ProxyContext(seed=0), LitePoseSpace(largest_member_of(supernet))
    from hydra import compose, initialize_config_dir

    import experiments.search as search  # registers the config's schema
    from experiments.proxy_data import proxy_context
    from search_space.resolution import ResolutionRule

    with initialize_config_dir(str(REPO / "experiments" / "conf"), version_base="1.3"):
        cfg = compose("search", overrides=[f"supernet={supernet}"])
    rule = ResolutionRule()
    context = proxy_context(cfg.dataset, rule, 0, cfg.loss)
    return proxy, context, search.search_space(cfg, proxy, rule)


def _option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with the value read as YAML (numbers, booleans), as Hydra reads overrides."""
    key, _, value = text.partition("=")
    return key, yaml.safe_load(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=320)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--proxy", default="macs")
    parser.add_argument("--supernet", default="litepose_supernet_multibranch")
    parser.add_argument("--proxy-option", nargs="*", default=[], metavar="KEY=VALUE",
                        help="the proxy's options: checkpoint=<supernet checkpoint>")  # fmt: skip
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[40, 80, 160, 320])
    parser.add_argument("--reach", type=float, default=0.98)
    parser.add_argument("--long", nargs=2, metavar=("METHOD", "TRIALS"), help="longer run")
    parser.add_argument("--cache", help="scores by arch hash (JSON), shared by every run")
    parser.add_argument("--save", help="also write the curves to this JSON file")
    parser.add_argument("--load", nargs="+", help="only summarise curves saved with --save")
    args = parser.parse_args()
    for method in args.methods:
        if method not in METHODS and method != "tpe per budget" and not VARIANT.fullmatch(method):
            parser.error(f"unknown method {method!r}; known: {list(METHODS)}, evolution(...)")
    if args.load:
        curves = _load(args.load)
    else:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        options = dict(_option(text) for text in args.proxy_option)
        base, context, space = proxy_and_context(args.proxy, options, args.supernet)
        proxy = CachedProxy(base, args.cache) if base.needs_data else base
        curves = {}
        runs = [(m, s, args.trials) for s in args.seeds for m in args.methods]  # seed outermost
        if args.long:
            runs.append((f"long: {args.long[0]}", 0, int(args.long[1])))
        for method, seed, trials in runs:
            start = time.process_time()
            rows = run_method(method.removeprefix("long: "), space, proxy, context, trials, seed)
            curves[method, seed] = best_curves(rows)
            scored = getattr(proxy, "scored", 0)
            print(
                f"{method} seed {seed}: {time.process_time() - start:.0f} CPU s"
                + (f", {scored} architectures scored so far" if base.needs_data else ""),
                flush=True,
            )
            if args.save:  # after every run: a long benchmark keeps what it measured
                _save(curves, args.save)
    best = best_known(curves)
    seeds = sorted({s for _, s in curves})
    scored_by = f"proxy {args.proxy}" if not args.load else f"curves of {', '.join(args.load)}"
    print(f"{scored_by}, seeds {seeds}; best within each budget / best known")
    print("best known: " + ", ".join(f"{n} {v:.6g}" for n, v in best.items()))
    print(
        summarise(curves, args.checkpoints, args.reach, best).to_markdown(
            index=False, floatfmt=".3f"
        )
    )
    for t in args.checkpoints:
        if all(len(c["L"]) >= t for c in curves.values()):
            print(f"\nper budget @{t}")
            print(per_budget(curves, t, best).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
