"""The constrained search: budgets never exceeded, resume after a kill, contract files, errors."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from evaluators.macs_fast import fast_macs
from evaluators.proxies import ProxyContext, get_proxy
from search.budget import Budget, BudgetError, check_reachable, parse_macs
from search.driver import SearchSettings, best_within, pareto_front, run_search, trials_table
from search_space import from_dict
from search_space.space import LitePoseSpace

REPO = Path(__file__).resolve().parents[1]
SPACE = LitePoseSpace()
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _search(tmp_path, budget, n_trials=25, **kwargs):
    settings = SearchSettings(budget=budget, run_dir=tmp_path, n_trials=n_trials, **kwargs)
    study = run_search(SPACE, settings, get_proxy("params"), ProxyContext(), progress=False)
    return study, trials_table(study, "params_score")


def test_parse_budgets():
    assert parse_macs("5.0G") == 5e9 and parse_macs("800M") == 8e8 and parse_macs(1.2e9) == 1.2e9
    with pytest.raises(BudgetError, match="suffix"):
        parse_macs("5 gigamacs")
    with pytest.raises(BudgetError, match="convention"):
        Budget(1e9, "fvcore")


def test_infeasible_budget_names_the_smallest_reachable_macs(tmp_path):
    floor = fast_macs(SPACE.smallest()).macs_paper
    with pytest.raises(BudgetError, match=f"{floor / 1e9:.3f} G paper MACs"):
        check_reachable(Budget(floor * 0.9, "paper"), fast_macs(SPACE.smallest()))
    with pytest.raises(BudgetError, match="infeasible"):
        _search(tmp_path, Budget(floor * 0.5, "paper"))


def test_no_reported_best_exceeds_its_budget(tmp_path):
    study, table = _search(tmp_path, Budget(4e9, "paper"), n_trials=40)
    assert set(table["state"]) == {"COMPLETE"}
    scored = table[table["params"].notna()]
    assert (scored["macs_paper"] <= 4e9).all(), "no infeasible candidate may be scored"
    assert (~table["feasible"]).any(), "the sampler should have proposed over-budget candidates"
    for gmacs in np.linspace(0.6, 4.0, 15):
        for convention in ("paper", "true"):
            budget = Budget(gmacs * 1e9, convention)
            best = best_within(table, "params_score", budget)
            if best is not None:
                assert best[budget.column] <= budget.macs
                assert fast_macs(from_dict(json.loads(best["arch"]))).macs == best["macs"]
    front = pareto_front(table, "params_score")
    assert (front["macs_paper"] <= 4e9).all() and front["params_score"].is_monotonic_increasing


def test_duplicates_are_not_scored_twice(tmp_path):
    settings = SearchSettings(budget=Budget(20e9, "true"), run_dir=tmp_path, n_trials=3)
    study = run_search(SPACE, settings, get_proxy("params"), ProxyContext(), progress=False)
    first = study.trials[0]
    study.enqueue_trial(first.params)
    settings.n_trials = 4
    study = run_search(SPACE, settings, get_proxy("params"), ProxyContext(), progress=False)
    last = study.trials[-1]
    assert last.user_attrs["duplicate_of"] == first.number
    assert last.values == first.values


def _run_cli(run_dir: Path, n_trials: int, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "experiments.search",
            f"run_dir={run_dir}",
            f"n_trials={n_trials}",
            "proxy=params",
            "progress=false",
            "budget=5.0G",
            *overrides,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_search_continues_the_same_study(tmp_path):
    proc = _run_cli(tmp_path, 400)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    deadline, done_before = time.time() + 120, []
    while time.time() < deadline:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name="posearch", storage=storage)
        except (KeyError, Exception):
            continue
        done_before = [t for t in study.trials if t.state.is_finished()]
        if len(done_before) >= 8:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 8 <= len(done_before) < 400
    before = {t.number: (t.params, t.values) for t in done_before}
    result = _run_cli(tmp_path, len(before) + 5)
    out, err = result.communicate(timeout=300)
    assert result.returncode == 0, err
    study = optuna.load_study(study_name="posearch", storage=storage)
    after = {t.number: (t.params, t.values) for t in study.trials if t.state.is_finished()}
    for number, record in before.items():
        assert after[number] == record
    assert len(after) >= len(before) + 5
    table = pd.read_csv(tmp_path / "trials.csv")
    for column in (
        "number",
        "hash",
        "macs",
        "macs_paper",
        "params",
        "feasible",
        "state",
        "params_score",
        "latency_ms",
    ):
        assert column in table.columns
    scored = table[table["feasible"] & (table["state"] == "COMPLETE")]
    assert len(scored) and (scored["latency_ms"] > 0).all()  # CPU latency of every candidate
    for name in ("XS", "S"):
        arch = json.loads((tmp_path / "exports" / name / "arch.json").read_text())
        assert len(arch["hash"]) == 16 and arch["family"] == "litepose"
    assert (tmp_path / "pareto.png").stat().st_size > 10_000
    assert (tmp_path / "pareto.pdf").exists()
