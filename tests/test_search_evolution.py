"""Feasible-first proposals and the regularized evolution (``arch_search.evolution``): every
candidate fits the budget it was proposed for, a study continued after a stop proposes what an
uninterrupted one would have, several workers keep the exact trial count, and a resume under
settings that define another study is refused."""

import multiprocessing
import os
import time
from collections import Counter
from pathlib import Path

import commands
import numpy as np
import optuna
import pytest
from test_search import _run_cli

from arch_search.budget import PAPER_BUDGETS, Budget
from arch_search.driver import (
    SearchObjective,
    SearchSettings,
    make_sampler,
    open_study,
    run_search,
)
from arch_search.evolution import TARGET_ATTR, BudgetedSampler, EvolutionSettings
from arch_search.proxies import ProxyContext, get_proxy
from arch_search.storage import make_storage
from evaluators.macs_fast import fast_macs
from posecore.errors import SettingError
from search_space.space import LitePoseSpace

SPACE = LitePoseSpace()
PAPER = {name: Budget(macs, "paper") for name, macs in PAPER_BUDGETS.items()}
SMALL = EvolutionSettings(population=2, tournament=2)  # evolves after two members a budget
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _settings(tmp_path, n_trials, **kwargs) -> SearchSettings:
    kwargs.setdefault("evolution", SMALL)
    kwargs.setdefault("seed_paper_models", False)  # counts below are of drawn trials only
    return SearchSettings(budgets=PAPER, run_dir=tmp_path, n_trials=n_trials, **kwargs)


def _run(settings: SearchSettings) -> optuna.Study:
    return run_search(SPACE, settings, get_proxy("macs"), ProxyContext(), progress=False)


@pytest.mark.parametrize("sampler", ["evolution", "random_within"])
def test_every_proposed_candidate_fits_the_budget_it_was_proposed_for(sampler):
    settings = SearchSettings(PAPER, Path("."), sampler=sampler, evolution=SMALL)
    study = optuna.create_study(sampler=make_sampler(settings, SPACE))  # in memory: fast
    objective = SearchObjective(SPACE, PAPER["L"], get_proxy("macs"), ProxyContext(), False)
    study.optimize(objective, n_trials=80)
    trials = study.trials
    targets = Counter(t.system_attrs[TARGET_ATTR] for t in trials)
    assert targets == {name: 20 for name in PAPER}, "each budget gets its share of the trials"
    for t in trials:
        budget = PAPER[t.system_attrs[TARGET_ATTR]]
        assert t.user_attrs["macs_paper"] <= budget.macs, (t.number, t.params)
        assert fast_macs(SPACE.decode(t.params)).macs_paper == t.user_attrs["macs_paper"]
        assert t.constraints["macs"] <= 0 and t.values[0] > 0, "every trial was scored"
    assert len({t.user_attrs["hash"] for t in trials}) == 80, "no trial spent on a known member"
    evolved = [t for t in trials if t.number >= 4 * SMALL.population]
    # Aimed above the next smaller budget: members there count for the smaller one already.
    floors = dict(zip(PAPER, [0.0, *[b.macs for b in PAPER.values()][:-1]], strict=True))
    above = [t.user_attrs["macs_paper"] > floors[t.system_attrs[TARGET_ATTR]] for t in evolved]
    assert np.mean(above) > 0.9


def test_proposals_fit_however_tight_the_budget_and_children_evolve_from_the_population():
    floor = fast_macs(SPACE.smallest()).macs_paper
    budgets = {"tiny": Budget(floor * 1.02, "paper"), "S": PAPER["S"]}
    sampler = BudgetedSampler(SPACE, budgets, seed=0, settings=EvolutionSettings(max_draws=20))
    rng = np.random.default_rng(0)
    for name, budget in budgets.items():
        for _ in range(10):  # draws, then repairs where no draw fits
            genes = sampler.propose([], name, budget, rng)
            assert fast_macs(SPACE.decode(genes)).macs_paper <= budget.macs
    # Without crossover a child is its parent with ~10% of the genes drawn anew: it stays near.
    mutating = BudgetedSampler(SPACE, budgets, settings=EvolutionSettings(2, 2, crossover=0.0))
    study = optuna.create_study(sampler=mutating)
    study.optimize(_macs_of, n_trials=12)
    for t in study.trials[4:]:  # both populations full from trial 4 on
        name = t.system_attrs[TARGET_ATTR]
        parents = mutating.population(study.trials[: t.number], name, budgets[name])
        changed = min(sum(p.params[n] != t.params[n] for n in t.params) for p in parents)
        assert 1 <= changed <= len(t.params) // 4, (t.number, changed)


def _macs_of(trial) -> float:
    genes = {n: trial.suggest_categorical(n, c) for n, c in SPACE.choices().items()}
    macs = fast_macs(SPACE.decode(genes))
    trial.set_user_attr("macs_paper", macs.macs_paper)
    trial.set_user_attr("hash", str(genes))
    return macs.macs


def test_the_evolution_resumes_from_storage_with_its_population_and_trial_count(tmp_path):
    journal = {"storage": f"journal:{tmp_path / 'stopped.log'}"}
    straight = _run(_settings(tmp_path / "straight", 16, storage=f"journal:{tmp_path / 's.log'}"))
    first = _run(_settings(tmp_path / "stopped", 9, **journal))  # stopped after 9, then rerun
    assert len(first.trials) == 9
    resumed = _run(_settings(tmp_path / "stopped", 16, **journal))
    assert [t.params for t in resumed.trials] == [t.params for t in straight.trials]
    assert len(resumed.trials) == 16
    sampler = BudgetedSampler(SPACE, PAPER, settings=SMALL)
    for name, budget in PAPER.items():
        kept = [t.number for t in sampler.population(resumed.trials, name, budget)]
        assert kept == [t.number for t in sampler.population(straight.trials, name, budget)]
        assert len(kept) == SMALL.population


def _claim_queued(url: str) -> list[int]:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="queue", storage=make_storage(url, heartbeat_s=10))
    claimed = []
    while (trial_id := study._pop_waiting_trial_id()) is not None:
        claimed.append(trial_id)
    return claimed


def test_workers_popping_one_queue_claim_each_queued_trial_once(tmp_path):
    """The race behind "Cannot tell a COMPLETE trial": Optuna's own RDBStorage let 27-39 of 60
    queued trials be claimed twice by 6 SQLite workers (2026-12-02, three runs of this loop)."""
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    study = optuna.create_study(study_name="queue", storage=make_storage(url, heartbeat_s=10))
    for x in range(40):
        study.enqueue_trial({"x": x})
    with multiprocessing.get_context("fork").Pool(4) as pool:
        claims = [t for got in pool.map(_claim_queued, [url] * 4) for t in got]
    assert sorted(claims) == sorted(t._trial_id for t in study.trials), Counter(claims)
    assert {t.state.name for t in study.trials} == {"RUNNING"}


def test_two_sqlite_workers_on_one_study_keep_the_exact_trial_count(tmp_path):
    storage = f"storage=sqlite:///{tmp_path / 'shared.db'}"
    workers = [
        _run_cli(
            tmp_path / f"w{i}",
            12,
            storage,
            "exports=false",
            "+evolution.population=2",
            "+evolution.tournament=2",
        )  # fmt: skip
        for i in range(2)
    ]
    logs = [w.communicate(timeout=300) for w in workers]
    for w, (_, err) in zip(workers, logs, strict=True):
        assert w.returncode == 0, err
    trials = optuna.load_study(
        study_name="posearch", storage=storage.removeprefix("storage=")
    ).trials
    finished = [t for t in trials if t.state.is_finished() and t.state.name == "COMPLETE"]
    assert len(finished) == 12, Counter(t.state.name for t in trials)
    assert len({t.user_attrs["worker"] for t in finished}) == 2, "both workers ran trials"
    budgets = {"XS": 1.2e9, "S": 5.0e9}
    for t in finished:
        if TARGET_ATTR in t.system_attrs:
            assert t.user_attrs["macs_paper"] <= budgets[t.system_attrs[TARGET_ATTR]]


def test_a_resume_under_another_defining_setting_names_it(tmp_path):
    _run(_settings(tmp_path, 2, proxy="macs", space="abc"))
    for change, named in [
        ({"proxy": "params"}, "proxy='macs', not proxy='params'"),
        ({"space": "def"}, "space='abc', not space='def'"),
        ({"sampler": "random"}, "sampler='evolution', not sampler='random'"),
        ({"seed": 3}, "seed=0, not seed=3"),
    ]:
        settings = _settings(tmp_path, 3, **({"proxy": "macs", "space": "abc"} | change))
        with pytest.raises(SettingError, match=named):
            open_study(settings, SPACE)
    assert len(_run(_settings(tmp_path, 3, proxy="macs", space="abc")).trials) == 3


def test_a_cli_resume_with_another_proxy_or_space_is_one_line(tmp_path):
    first = commands.run(
        "search", f"run_dir={tmp_path}", "n_trials=1", "proxy=params", "progress=false",
        "budgets={S:5.0G}", "exports=false",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    for override, named in [("proxy=macs", "proxy='params'"), ("supernet=litepose_s", "space=")]:
        again = commands.run(
            "search", f"run_dir={tmp_path}", "n_trials=2", "proxy=params", "progress=false",
            "budgets={S:5.0G}", "exports=false", override,
        )  # fmt: skip
        assert again.returncode == 2, again.stderr
        lines = again.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0], again.stderr


def test_bad_evolution_settings_are_refused():
    for bad in [
        {"population": 0},
        {"tournament": 9},
        {"mutation": 1.5},
        {"crossover": float("nan")},
        {"population": "many"},
    ]:
        with pytest.raises(SettingError, match="evolution"):
            EvolutionSettings(**bad)


def _create(url: str, start: float, results) -> None:
    while time.time() < start:
        time.sleep(0.001)
    try:
        storage = make_storage(url, 10)
        optuna.create_study(study_name="race", storage=storage, load_if_exists=True)
        results.put("ok")
    except Exception as err:  # reported below, whatever it is
        results.put(f"{type(err).__name__}: {err}")


def test_sqlite_workers_started_together_on_a_new_study_all_open_it(tmp_path):
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    for round_ in range(2):
        url = f"sqlite:///{tmp_path / f'race{round_}.db'}"
        start = time.time() + 1.0
        procs = [context.Process(target=_create, args=(url, start, results)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        outcomes = [results.get(timeout=5) for _ in procs]
        assert outcomes == ["ok"] * 6, outcomes


def test_an_optuna_older_than_5_is_named_at_import(monkeypatch):
    """pyproject asks for optuna>=5.0 (Trial.set_constraint); an environment that resolved an
    older one is told so when the search is imported, not at its first trial."""
    import importlib
    import sys

    import arch_search.driver

    monkeypatch.setattr(optuna, "__version__", "4.5.0")
    monkeypatch.delitem(sys.modules, "arch_search.driver")
    with pytest.raises(ImportError, match=r"optuna >= 5.0 .* optuna 4.5.0 is installed"):
        importlib.import_module("arch_search.driver")
    monkeypatch.setitem(sys.modules, "arch_search.driver", arch_search.driver)


def _ask_and_die(settings: SearchSettings) -> None:
    """A worker killed after Optuna created its trial but before the trial's heartbeat thread
    or objective ran: the sampler's proposal is the slow part of that window."""
    from arch_search.driver import open_study

    open_study(settings, SPACE).ask()
    os._exit(9)  # no cleanup, as SIGKILL


@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_a_worker_killed_before_its_trial_started_does_not_stall_the_rerun(tmp_path, backend):
    """CI, 2026-12-03: the rerun after a SIGKILL waited 300 s on a RUNNING trial that had no
    heartbeat and no worker name, so neither the grace period nor the dead-pid check ended it."""
    url = {
        "sqlite": f"sqlite:///{tmp_path / 'study.db'}",
        "journal": f"journal:{tmp_path / 'j.log'}",
    }
    settings = _settings(tmp_path, 6, storage=url[backend])
    _run(_settings(tmp_path, 3, storage=settings.storage_url))
    dying = multiprocessing.get_context("fork").Process(target=_ask_and_die, args=(settings,))
    dying.start()
    dying.join(60)
    stalled = _trials(settings)
    assert [t.state.name for t in stalled].count("RUNNING") == 1
    rerun = multiprocessing.get_context("fork").Process(target=_run, args=(settings,))
    started = time.monotonic()
    rerun.start()
    rerun.join(120)
    if rerun.is_alive():
        rerun.kill()
    waited = time.monotonic() - started
    assert rerun.exitcode == 0, f"the rerun was still waiting after {waited:.0f} s"
    assert sum(t.state.name == "COMPLETE" for t in _trials(settings)) == 6


def _trials(settings: SearchSettings) -> list[optuna.trial.FrozenTrial]:
    storage = make_storage(settings.storage_url, heartbeat_s=10)
    return optuna.load_study(study_name="posearch", storage=storage).trials
