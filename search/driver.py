"""Constrained architecture search with Optuna, driven from inside one process.

Each trial suggests every gene of the declared space (``trial.suggest_categorical``), decodes the
architecture, computes its MACs with the exact fast path, and records the budget as an Optuna
constraint (``Trial.set_constraint``: feasible when <= 0). Only a feasible candidate is scored by
the proxy, so no proxy time is spent on an infeasible one; an infeasible trial completes with the
worst score so that the sampler learns where the budget lies. A candidate whose canonical hash was
already scored in this study (by any worker) reuses that score.

The study lives in an Optuna storage (SQLite in the run folder by default, or any URL: a journal
file, PostgreSQL for many workers). Trials are counted across workers and restarts: running the
same command again continues the study until ``n_trials`` trials have finished.

A SIGINT / SIGTERM (inside ``training.interrupts.stop_on_signals``) lets the running trial finish,
or fails it where the trial itself stops early (a trained proxy's trainer, a wait on another
worker), and starts no other: ``run_search`` returns the study with every finished trial kept.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError, ProgrammingError

from evaluators.latency import measure_latency
from evaluators.latency_table import LatencyPredictor
from evaluators.macs_fast import fast_macs
from evaluators.proxies import Proxy, ProxyContext
from models import build_model
from search.budget import Budget, LatencyBudget, check_reachable
from search_space import arch_hash, get_preset, to_dict
from search_space.errors import SettingError
from search_space.space import LitePoseSpace
from training.interrupts import Interrupted, requested

SAMPLERS = ("tpe", "nsga2")
PAPER_SEEDS = ("litepose_xs", "litepose_s", "litepose_m", "litepose_l")
WORST = -math.inf
HOST = socket.gethostname()
POLL_S = 0.2  # how often a trial waiting on other workers' trials looks again


@dataclass
class SearchSettings:
    budget: Budget | LatencyBudget
    run_dir: Path
    n_trials: int = 40
    storage: str | None = None
    study_name: str = "posearch"
    seed: int = 0
    sampler: str = "tpe"
    multi_objective: bool = False
    seed_paper_models: bool = False
    heartbeat_s: int = 10
    latency_runs: int = 0  # > 0: time each scored candidate (CPU, one thread, median of these)
    # Predicted latency of every trial (column latency_pred_ms) from a per-layer latency table;
    # a LatencyBudget carries its own.
    predictor: LatencyPredictor | None = None

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.sampler not in SAMPLERS:
            raise SettingError(f"sampler={self.sampler!r}: must be one of {SAMPLERS}")
        if self.n_trials < 1:
            raise SettingError(f"n_trials={self.n_trials}: must be >= 1")
        if self.latency_runs < 0:
            raise SettingError(f"latency_runs={self.latency_runs}: must be >= 0 (0: no timing)")

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.run_dir / 'study.db').resolve()}"


def make_storage(settings: SearchSettings) -> optuna.storages.BaseStorage:
    """RDB storages get heartbeats, so a trial whose worker was killed is failed and retried."""
    url = settings.storage_url
    if url.startswith(("sqlite", "postgresql", "mysql")):
        return _rdb_storage(url, settings.heartbeat_s)
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    raise SettingError(
        f"storage={url!r}: use an sqlite://, postgresql:// or mysql:// URL, or "
        "journal:<path> for a journal file"
    )


def _rdb_storage(url: str, heartbeat_s: int, attempts: int = 5) -> RDBStorage:
    """Workers started together on an empty database race to create Optuna's tables: the loser
    gets a unique-key error from the server and, on a retry, finds the tables made."""
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeats: stable
                return RDBStorage(
                    url,
                    heartbeat_interval=heartbeat_s,
                    grace_period=3 * heartbeat_s,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
                    engine_kwargs=None if url.startswith("sqlite") else {"pool_pre_ping": True},
                )
        except (IntegrityError, ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
        except (OperationalError, DatabaseError) as err:  # a missing folder, no server, no db
            reason = " ".join(str(err.orig).split())  # drivers' messages span lines
            raise SettingError(
                f"storage={url!r}: cannot open this database ({reason}); check the path "
                "(its folder must exist) or the server, or leave storage unset for "
                "<run_dir>/study.db"
            ) from None
    raise AssertionError("unreachable")


def open_study(settings: SearchSettings) -> optuna.Study:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    if settings.sampler == "nsga2":
        sampler = optuna.samplers.NSGAIISampler(seed=settings.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=settings.seed, multivariate=True)
    directions = ["maximize", "minimize"] if settings.multi_objective else ["maximize"]
    return optuna.create_study(
        study_name=settings.study_name,
        storage=make_storage(settings),
        sampler=sampler,
        directions=directions,
        load_if_exists=True,
    )


class SurplusTrial(Exception):
    """Raised in a trial that would take the study past ``n_trials``; it ends as FAIL, unscored."""


class SearchObjective:
    """Optuna objective: admit, decode, budget check, de-duplicate, score.

    Several workers may share the study. Optuna creates a study's trials one at a time, so a trial
    sees every lower-numbered one: it runs only if the lower-numbered running and finished trials
    leave it a place among ``n_trials``, and an architecture is scored by the lowest-numbered live
    trial that proposes it, later ones waiting for its score. Waits end when the awaited trial
    finishes or fails (a killed worker's, at the heartbeat's grace period; at once when that
    worker ran on this machine)."""

    def __init__(
        self,
        space: LitePoseSpace,
        budget: Budget,
        proxy: Proxy,
        context: ProxyContext,
        multi_objective: bool,
        n_trials: int | None = None,
        latency_runs: int = 0,
        predictor: LatencyPredictor | None = None,
    ):
        self.space = space
        self.choices = space.choices()
        self.budget = budget
        self.proxy = proxy
        self.context = context
        self.multi_objective = multi_objective
        self.n_trials = n_trials
        self.latency_runs = latency_runs
        self.predictor = predictor

    def __call__(self, trial: optuna.Trial):
        trial.set_user_attr("worker", f"{HOST}:{os.getpid()}")
        if self.n_trials is not None and not _admitted(trial, self.n_trials):
            trial.study.stop()
            raise SurplusTrial(f"the study already has its {self.n_trials} trials")
        genes = {name: trial.suggest_categorical(name, c) for name, c in self.choices.items()}
        config = self.space.decode(genes)
        macs = fast_macs(config)
        digest = arch_hash(config)
        trial.set_user_attr("hash", digest)
        trial.set_user_attr("macs", macs.macs)
        trial.set_user_attr("macs_paper", macs.macs_paper)
        trial.set_user_attr("arch", json.dumps(to_dict(config)))
        if self.predictor is not None:
            trial.set_user_attr("latency_pred_ms", self.predictor.predict_ms(config))
        violation = self.budget.cost_of(config, macs) - self.budget.limit
        trial.set_constraint("macs", violation)  # the budget's constraint, MACs or latency
        if violation > 0:
            return self._values(WORST, macs.macs)
        previous = _scored_trial_with_hash(trial, digest)
        if previous is not None:
            trial.set_user_attr("duplicate_of", previous.number)
            for key in ("params", "latency_ms"):
                if key in previous.user_attrs:
                    trial.set_user_attr(key, previous.user_attrs[key])
            return self._values(previous.values[0], macs.macs)
        model = build_model(config)
        trial.set_user_attr("params", sum(p.numel() for p in model.parameters()))
        if self.latency_runs:
            timed = measure_latency(
                model,
                config.input_size,
                runs=self.latency_runs,
                warmup=1,
                threads=1,
                macs=macs.macs,
            )
            trial.set_user_attr("latency_ms", timed.latency_ms)
        return self._values(self.proxy.score(config, self.context), macs.macs)

    def _values(self, score: float, macs: int):
        return (score, float(macs)) if self.multi_objective else score


def _admitted(trial: optuna.Trial, n_trials: int) -> bool:
    """False once ``n_trials`` lower-numbered trials have finished; True while fewer than
    ``n_trials`` are running or finished; in between, waits for the running ones to end."""
    while True:
        ahead = [t for t in _live_trials(trial.study) if t.number < trial.number]
        if sum(t.state != TrialState.RUNNING for t in ahead) >= n_trials:
            return False
        if len(ahead) < n_trials:
            return True
        _pause(trial.study)


def _scored_trial_with_hash(trial: optuna.Trial, digest: str):
    """A finished trial that scored ``trial``'s architecture, or None when ``trial`` is to score
    it. Waits while a lower-numbered running trial has this hash or has not told its hash yet."""
    while True:
        live = _live_trials(trial.study)
        for t in live:
            if t.state == TrialState.COMPLETE and t.user_attrs.get("hash") == digest:
                if "params" in t.user_attrs:
                    return t
        earlier = [t for t in live if t.state == TrialState.RUNNING and t.number < trial.number]
        if all(t.user_attrs.get("hash", digest) != digest for t in earlier):
            return None
        _pause(trial.study)


def _live_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Running and finished trials, less the running ones whose worker here has died."""
    states = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
    trials = study.get_trials(deepcopy=False, states=states)
    return [t for t in trials if t.state != TrialState.RUNNING or not _died_here(t)]


def _died_here(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether the trial's worker process ran on this machine and is gone."""
    host, _, pid = trial.user_attrs.get("worker", "").rpartition(":")
    if host != HOST or not pid.isdigit() or os.name != "posix":  # Windows: os.kill terminates
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _pause(study: optuna.Study) -> None:
    signum = requested()
    if signum:
        raise Interrupted(signum, "this trial was waiting on other workers' trials")
    time.sleep(POLL_S)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # a killed worker's trial: FAIL, then retried


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def run_search(
    space: LitePoseSpace,
    settings: SearchSettings,
    proxy: Proxy,
    context: ProxyContext,
    progress: bool = True,
) -> optuna.Study:
    """Run (or continue) the study until ``n_trials`` trials have finished, all workers counted,
    or until a stop is requested (``training.interrupts``)."""
    smallest = space.smallest()
    check_reachable(settings.budget, fast_macs(smallest), smallest)
    predictor = settings.predictor or getattr(settings.budget, "predictor", None)
    study = open_study(settings)
    if settings.seed_paper_models and not study.trials:
        for name in PAPER_SEEDS:
            config = get_preset(name)
            if space.contains(config):
                study.enqueue_trial(space.encode(config), skip_if_exists=True)
    remaining = settings.n_trials - finished_trials(study)
    if remaining > 0 and not requested():
        objective = SearchObjective(
            space,
            settings.budget,
            proxy,
            context,
            settings.multi_objective,
            settings.n_trials,
            settings.latency_runs,
            predictor,
        )
        stop = optuna.study.MaxTrialsCallback(
            settings.n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED)
        )
        try:
            study.optimize(
                objective,
                n_trials=remaining,
                callbacks=[stop, _stop_when_asked],
                catch=(SurplusTrial,),
                show_progress_bar=progress,
            )
        except Interrupted:
            pass  # raised inside a trial, which Optuna has recorded as failed
    return study


def _stop_when_asked(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna callback: after a SIGINT / SIGTERM, start no further trial."""
    if requested():
        study.stop()


def objective_column(proxy: str) -> str:
    """The trials-table column of a proxy's score (never clashes with ``params`` or ``macs``)."""
    return f"{proxy}_score"


def trials_table(study: optuna.Study, objective_name: str) -> pd.DataFrame:
    """One row per trial: the contract columns, the objective (column ``objective_name``), the
    genes and the arch JSON."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        violation = (t.constraints or {}).get("macs") if hasattr(t, "constraints") else None
        row = {
            "number": t.number,
            "hash": t.user_attrs.get("hash"),
            "macs": t.user_attrs.get("macs"),
            "macs_paper": t.user_attrs.get("macs_paper"),
            "params": t.user_attrs.get("params"),
            "latency_ms": t.user_attrs.get("latency_ms"),
            "latency_pred_ms": t.user_attrs.get("latency_pred_ms"),
            "feasible": violation is not None and violation <= 0,
            "state": t.state.name,
            objective_name: t.values[0] if t.values else None,
            "duplicate_of": t.user_attrs.get("duplicate_of"),
            "arch": t.user_attrs.get("arch"),
        }
        row.update({f"gene.{k}": v for k, v in t.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_front(table: pd.DataFrame, objective: str, macs_column: str = "macs") -> pd.DataFrame:
    """Feasible, finished trials not dominated in (higher objective, lower MACs)."""
    done = table[(table["state"] == "COMPLETE") & table["feasible"]]
    done = done.drop_duplicates("hash").sort_values(
        [macs_column, objective], ascending=[True, False]
    )
    front, best = [], -math.inf
    for _, row in done.iterrows():
        if row[objective] > best:
            front.append(row)
            best = row[objective]
    return pd.DataFrame(front)


def best_within(table: pd.DataFrame, objective: str, budget: Budget | LatencyBudget):
    """The best finished trial whose cost (MACs in the budget's convention, or predicted
    latency) fits ``budget``."""
    column = budget.column
    done = table[(table["state"] == "COMPLETE") & (table[column] <= budget.limit)]
    done = done[done[objective] > WORST]
    if done.empty:
        return None
    return done.sort_values([objective, column], ascending=[False, True]).iloc[0]
