"""The constrained search: budgets never exceeded, every budget served by its own best trial,
resume after a kill, contract files, errors."""

import json
import signal
import time
from pathlib import Path

import commands
import numpy as np
import optuna
import pandas as pd
import pytest

from arch_search.budget import (
    PAPER_BUDGETS,
    Budget,
    BudgetError,
    check_reachable,
    parse_budgets,
    parse_macs,
)
from arch_search.driver import SearchSettings, run_search
from arch_search.proxies import ProxyContext, get_proxy
from arch_search.report import export_winners
from arch_search.tables import (
    best_within,
    feasible_column,
    format_winners,
    pareto_front,
    trials_table,
    winners_table,
)
from evaluators.macs_fast import fast_macs
from posecore.errors import SettingError
from search_space import arch_hash, from_dict
from search_space.space import LitePoseSpace

SPACE = LitePoseSpace()
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _search(tmp_path, budgets, n_trials=25, proxy="params", **kwargs):
    if isinstance(budgets, Budget):
        budgets = {"B": budgets}
    kwargs = {"seed_paper_models": False, "latency_runs": 0} | kwargs  # fast: no extras
    settings = SearchSettings(budgets=budgets, run_dir=tmp_path, n_trials=n_trials, **kwargs)
    study = run_search(SPACE, settings, get_proxy(proxy), ProxyContext(), progress=False)
    return study, trials_table(study, f"{proxy}_score", budgets)


def test_parse_budgets():
    assert parse_macs("5.0G") == 5e9 and parse_macs("800M") == 8e8 and parse_macs(1.2e9) == 1.2e9
    with pytest.raises(BudgetError, match="suffix"):
        parse_macs("5 gigamacs")
    with pytest.raises(BudgetError, match="convention"):
        Budget(1e9, "fvcore")
    assert list(parse_budgets("paper")) == ["XS", "S", "M", "L"]
    assert parse_budgets({"S": "5.0G"}, "true") == {"S": Budget(5e9, "true")}
    assert parse_budgets("800M") == {"800M": Budget(8e8, "paper")}
    with pytest.raises(BudgetError, match="budgets=.*a mapping of names"):
        parse_budgets({})


def test_infeasible_budget_names_the_smallest_reachable_macs(tmp_path):
    floor = fast_macs(SPACE.smallest()).macs_paper
    with pytest.raises(BudgetError, match=f"{floor / 1e9:.3f} G paper MACs"):
        check_reachable(Budget(floor * 0.9, "paper"), fast_macs(SPACE.smallest()))
    with pytest.raises(BudgetError, match="infeasible"):
        _search(tmp_path, Budget(floor * 0.5, "paper"))


def test_no_reported_best_exceeds_its_budget(tmp_path):
    study, table = _search(tmp_path, Budget(4e9, "paper"), n_trials=40, sampler="tpe")
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


def test_duplicates_are_not_scored_twice(tmp_path, storage_url):
    """On every storage (``storage_url``: SQLite, journal file, PostgreSQL)."""
    settings = SearchSettings(
        {"B": Budget(20e9, "true")}, tmp_path, n_trials=3, storage=storage_url,
        seed_paper_models=False, latency_runs=0,
    )  # fmt: skip
    study = run_search(SPACE, settings, get_proxy("params"), ProxyContext(), progress=False)
    first = study.trials[0]
    study.enqueue_trial(first.params)
    settings.n_trials = 4
    study = run_search(SPACE, settings, get_proxy("params"), ProxyContext(), progress=False)
    last = study.trials[-1]
    assert last.user_attrs["duplicate_of"] == first.number
    assert last.values == first.values


PAPER = {name: Budget(macs, "paper") for name, macs in PAPER_BUDGETS.items()}


@pytest.mark.parametrize("sampler", ["nsga2", "tpe"])
def test_one_search_serves_every_budget_with_its_own_best(tmp_path, sampler):
    # The macs proxy prefers the largest network that fits, so each budget has another best.
    study, table = _search(tmp_path, PAPER, n_trials=30, proxy="macs", sampler=sampler)
    widest = max(b.macs for b in PAPER.values())
    assert table["feasible"].equals(table["macs_paper"] <= widest)
    for name, budget in PAPER.items():
        assert table[feasible_column(name)].equals(table["macs_paper"] <= budget.macs), name
    written = export_winners(table, "macs_score", PAPER, tmp_path)
    winners = {}
    for name, budget in PAPER.items():
        config = from_dict(json.loads((written[name] / "arch.json").read_text()))
        assert fast_macs(config).macs_paper <= budget.macs, f"{name}'s export exceeds {budget}"
        fits = table[table[feasible_column(name)] & (table["state"] == "COMPLETE")]
        assert fast_macs(config).macs == fits["macs_score"].max(), f"{name}: not its best trial"
        winners[name] = arch_hash(config)
    # Different feasible sets, different winners (a single-budget search gives all four one).
    assert winners["XS"] != winners["S"] != winners["L"], winners


def test_a_winner_is_shared_only_where_it_truly_scores_best(tmp_path):
    # params ignores resolution: the highest-params network fits the small budgets too, and then
    # it is rightly every budget's winner; no budget may get a trial that is not its own best.
    study, table = _search(tmp_path, PAPER, n_trials=30)
    for name, budget in PAPER.items():
        best = best_within(table, "params_score", budget)
        fits = table[table[feasible_column(name)] & (table["state"] == "COMPLETE")]
        assert best["macs_paper"] <= budget.macs
        assert best["params_score"] == fits["params_score"].max()


def test_the_console_table_names_each_budget_once_with_its_best_trial(tmp_path):
    budgets = {"5.0G": Budget(5e9, "paper"), "XS": PAPER["XS"]}
    study, table = _search(tmp_path, budgets, n_trials=12)
    winners = winners_table(table, "params_score", budgets)
    assert list(winners["budget"]) == ["5.0G", "XS"]
    assert list(winners["limit"]) == ["5G (paper MACs)", "1.2G (paper MACs)"]
    for name, budget in budgets.items():
        row = winners[winners["budget"] == name].iloc[0]
        assert row["trial"] == best_within(table, "params_score", budget)["number"]
        assert 0 < row["cost / budget"] <= 1
    assert "5.0G (5G" not in format_winners(winners)


def test_a_study_is_continued_only_under_its_own_budgets(tmp_path, storage_url):
    """Resumed, on every storage, with the trials it had; refused under other settings."""
    first, _ = _search(tmp_path, PAPER, n_trials=2, storage=storage_url)
    before = [(t.params, t.values) for t in first.trials]
    with pytest.raises(SettingError, match="was searched with .*budgets.*new study_name"):
        _search(tmp_path, {"S": PAPER["S"]}, n_trials=3, storage=storage_url)
    with pytest.raises(SettingError, match="multi_objective"):
        _search(tmp_path, PAPER, n_trials=3, multi_objective=False, storage=storage_url)
    study, _ = _search(tmp_path, PAPER, n_trials=3, storage=storage_url)
    assert len(study.trials) == 3
    assert [(t.params, t.values) for t in study.trials[:2]] == before


def test_mixed_conventions_and_empty_budgets_are_refused(tmp_path):
    with pytest.raises(SettingError, match="mix conventions"):
        SearchSettings({"a": Budget(1e9, "true"), "b": Budget(2e9, "paper")}, tmp_path)
    with pytest.raises(SettingError, match="name at least one budget"):
        SearchSettings({}, tmp_path)


def _run_cli(
    run_dir: Path | str, n_trials: int, *overrides: str, multirun: bool = False
) -> commands.Started:
    return commands.start(
        "search",
        *(["--multirun"] if multirun else []),
        f"run_dir={run_dir}",
        f"n_trials={n_trials}",
        "proxy=params",
        "progress=false",
        "budgets={XS:1.2G,S:5.0G}",
        *overrides,
    )


def test_killed_search_continues_the_same_study(tmp_path):
    proc = _run_cli(tmp_path, 400)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    deadline, done_before = time.time() + 240, []  # a loaded machine: a few s a trial
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
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(completed) == len(before) + 5, "the rerun stops at exactly n_trials"
    header = next(line for line in out.splitlines() if "cost / budget" in line)
    assert header.split()[:4] == ["budget", "limit", "trial", "cost"]  # the end-of-search table
    assert "estimated AP" not in header or "score" in header
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


def test_a_trial_costs_its_candidate_once_and_names_its_constraint_for_the_budget(monkeypatch):
    """The budget's cost is the constraint and the second objective: one computation a trial
    (it was two), kept under the budget's column and constraint name."""
    from arch_search.driver import SearchObjective

    calls = []
    cost_of = Budget.cost_of
    monkeypatch.setattr(
        Budget, "cost_of", lambda self, c, m: calls.append(1) or cost_of(self, c, m)
    )
    budget = Budget(4e9, "paper")
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(sampler=sampler, directions=["maximize", "minimize"])
    study.optimize(SearchObjective(SPACE, budget, get_proxy("params"), ProxyContext(), True), 6)
    assert len(calls) == 6
    for t in study.trials:
        assert list(t.constraints) == ["macs"]
        assert t.constraints["macs"] == t.user_attrs["macs_paper"] - 4e9
        assert t.values[1] == t.user_attrs["macs_paper"]


def test_the_tables_read_a_trials_one_constraint_whatever_its_name(tmp_path):
    """A latency study begun when every constraint was named ``macs`` keeps its feasibility
    after it resumes under the name ``latency_ms``."""
    study = optuna.create_study()
    for name, value in (("macs", -1.0), ("macs", 2.0), ("latency_ms", -0.5), ("latency_ms", 3.0)):
        trial = study.ask()
        trial.set_constraint(name, value)
        study.tell(trial, 0.0)
    assert trials_table(study, "score")["feasible"].tolist() == [True, False, True, False]


def test_the_search_settings_have_one_set_of_defaults():
    """The command's schema reads its defaults from ``SearchSettings``: they once disagreed
    (``seed_paper_models`` True vs False, ``latency_runs`` 3 vs 0)."""
    import dataclasses

    from experiments.search import SearchConfig

    command = {f.name: f.default for f in dataclasses.fields(SearchConfig)}
    library = {f.name: f.default for f in dataclasses.fields(SearchSettings)}
    # budgets, run_dir, evolution, proxy: the same names, other types (a setting, its parsed form)
    shared = sorted(set(command) & set(library) - {"budgets", "run_dir", "evolution", "proxy"})
    assert {"seed_paper_models", "latency_runs", "n_trials", "sampler", "seed"} <= set(shared)
    assert {k: command[k] for k in shared} == {k: library[k] for k in shared}
    assert library["seed_paper_models"] is True and library["latency_runs"] == 3  # docs/search.md


def test_budget_is_the_older_spelling_of_budgets():
    from omegaconf import OmegaConf

    from experiments.search import SearchConfig, search_budgets

    def budgets(**kwargs):
        return search_budgets(OmegaConf.structured(SearchConfig(**kwargs)), None)

    assert budgets(budget="5.0G") == budgets(budgets="5.0G") == {"5.0G": Budget(5e9, "paper")}
    with pytest.raises(SettingError, match="give one; budget= is the older spelling of budgets="):
        budgets(budget="5.0G", budgets="{S: 5.0G}")
