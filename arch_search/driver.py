"""Architecture search with Optuna under several MACs budgets at once, driven from one process.

One study serves every named budget (by default the paper's XS / S / M / L). Each trial suggests
every gene of the declared space (``trial.suggest_categorical``), decodes the architecture,
computes its MACs with the exact fast path and its cost under the widest budget (once: MACs or
predicted latency, ``arch_search.budget.SearchBudget``), and records the excess as an Optuna
constraint named for the budget's kind (``Trial.set_constraint``, ``macs`` or ``latency_ms``:
feasible when <= 0). Only a candidate within it is scored by the proxy;
an infeasible trial completes with the worst score. The default sampler
(``arch_search.evolution``, ``sampler=evolution``) proposes only members within the budget whose
turn it is and evolves each budget's population; Optuna's own samplers (``nsga2``, ``tpe``,
``random``) see a study with two objectives, the score and the MACs in the budgets' convention
(``multi_objective``). Each budget's winner is read from the table
(``arch_search.tables.best_within``). A candidate whose canonical hash was already scored in this
study (by any worker) reuses that score (``arch_search.admission``).

The study lives in an Optuna storage (``arch_search.storage``: SQLite in the run folder by default,
or
any URL: a journal file, PostgreSQL for many workers) and remembers its budgets. Trials are counted
across workers and restarts: running the same command again continues the study until
``n_trials`` trials have finished.

A SIGINT / SIGTERM (inside ``posecore.interrupts.stop_on_signals``) lets the running trial finish,
or fails it where the trial itself stops early (a trained proxy's trainer, a wait on another
worker), and starts no other: ``run_search`` returns the study with every finished trial kept.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import optuna

if int(optuna.__version__.split(".")[0]) < 5:  # Trial.set_constraint first appears in 5.0
    raise ImportError(
        f"posearch's search needs optuna >= 5.0 (Trial.set_constraint); optuna "
        f"{optuna.__version__} is installed: pip install 'optuna>=5'"
    )
from tqdm import tqdm

from arch_search.admission import (
    FINISHED,
    SurplusTrial,
    admitted,
    finished_trials,
    scored_trial_with_hash,
    worker_name,
)
from arch_search.budget import LatencyBudget, SearchBudget
from arch_search.evolution import TARGET_ATTR, BudgetedSampler, EvolutionSettings
from arch_search.storage import make_storage
from arch_search.tables import WORST
from evaluators.latency import measure_latency
from evaluators.latency_table import LatencyPredictor
from evaluators.macs_fast import fast_macs
from evaluators.memory import layer_parameters
from evaluators.proxies import Proxy, ProxyContext
from posecore.errors import SettingError
from posecore.interrupts import Interrupted, requested
from posenets import build_model
from search_space import arch_hash, get_preset, list_presets, to_dict
from search_space.plan import layer_plan
from search_space.space import LitePoseSpace

# evolution: regularized evolution within each budget; random_within: uniform members within
# each budget; random: uniform members of the space (within the widest), a baseline to plot
SAMPLERS = ("evolution", "random_within", "nsga2", "tpe", "random")


@dataclass
class SearchSettings:
    """The one settings object of a search, and the one place its defaults are stated
    (``experiments.search.SearchConfig`` reads them from here): the defaults are what
    ``python -m experiments.search`` does and ``docs/search.md`` describes.

    ``budgets``: name -> budget, all in one convention (MACs or predicted latency); the
    search's constraint is the widest of them and each is served by its own best trial."""

    budgets: dict[str, SearchBudget]
    run_dir: Path
    n_trials: int = 40
    storage: str | None = None
    study_name: str = "posearch"
    seed: int = 0
    sampler: str = "evolution"
    evolution: EvolutionSettings = field(default_factory=EvolutionSettings)
    multi_objective: bool = True
    seed_paper_models: bool = True  # the paper's presets enqueued as the first trials
    heartbeat_s: int = 10
    latency_runs: int = 3  # > 0: time each scored candidate (CPU, one thread, median of these)
    # Predicted latency of every trial (column latency_pred_ms) from a per-layer latency table;
    # a LatencyBudget carries its own.
    predictor: LatencyPredictor | None = None
    # What else defines the study (proxy name, space fingerprint): stored at its creation and
    # compared on every resume (``study_settings``).
    proxy: str = ""
    space: str = ""

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.sampler not in SAMPLERS:
            raise SettingError(f"sampler={self.sampler!r}: must be one of {SAMPLERS}")
        if self.n_trials < 1:
            raise SettingError(f"n_trials={self.n_trials}: must be >= 1")
        if self.latency_runs < 0:
            raise SettingError(f"latency_runs={self.latency_runs}: must be >= 0 (0: no timing)")
        if not self.budgets:
            raise SettingError("budgets={}: name at least one budget, e.g. {S: 5.0G}")
        conventions = {b.convention for b in self.budgets.values()}
        if len(conventions) > 1:
            raise SettingError(
                f"budgets={self.described_budgets()}: mix conventions {sorted(conventions)}; "
                "count them all in one (the setting `convention`)"
            )

    @property
    def widest(self) -> SearchBudget:
        """The search's constraint: every budget's candidates fit within it."""
        return max(self.budgets.values(), key=lambda b: b.limit)

    def described_budgets(self) -> dict[str, str]:
        return {name: str(b) for name, b in self.budgets.items()}

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.run_dir / 'study.db').resolve()}"


def study_settings(settings: SearchSettings) -> dict:
    """The settings a study is made under, in the order a changed one is reported: its trials
    were proposed and scored under them, so continuing it under others would mix two searches."""
    defining = {
        "proxy": settings.proxy,
        "space": settings.space,
        "sampler": settings.sampler,
        "seed": settings.seed,
        "budgets": settings.described_budgets(),
        "multi_objective": settings.multi_objective,
    }
    return {k: v for k, v in defining.items() if v != ""}


def make_sampler(settings: SearchSettings, space: LitePoseSpace) -> optuna.samplers.BaseSampler:
    if settings.sampler in ("evolution", "random_within"):
        evolve = settings.sampler == "evolution"
        return BudgetedSampler(space, settings.budgets, settings.seed, evolve, settings.evolution)
    if settings.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=settings.seed)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=settings.seed)
    return optuna.samplers.TPESampler(seed=settings.seed, multivariate=True)


def open_study(settings: SearchSettings, space: LitePoseSpace) -> optuna.Study:
    """Create or load the study; a study made under other settings (``study_settings``) is
    refused rather than continued under settings its trials were not searched with."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    sampler = make_sampler(settings, space)
    directions = ["maximize", "minimize"] if settings.multi_objective else ["maximize"]
    storage = make_storage(settings.storage_url, settings.heartbeat_s)
    _check_resumable(storage, settings)
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=storage,
        sampler=sampler,
        directions=directions,
        load_if_exists=True,
    )
    for key, value in study_settings(settings).items():
        if key not in study.user_attrs:  # a new study, or one made before this setting was kept
            study.set_user_attr(key, value)
    return study


def _check_resumable(storage: optuna.storages.BaseStorage, settings: SearchSettings) -> None:
    """One line naming the first defining setting that differs from the stored study's (a study
    older than a setting's record is compared on the settings it has)."""
    try:
        old = optuna.load_study(study_name=settings.study_name, storage=storage)
    except KeyError:
        return  # a new study
    asked = study_settings(settings)
    stored = {k: old.user_attrs[k] for k in asked if k in old.user_attrs}
    stored["multi_objective"] = len(old.directions) == 2
    for key, value in asked.items():
        if key in stored and stored[key] != value:
            raise SettingError(
                f"study_name={settings.study_name!r} in {settings.storage_url} was searched with "
                f"{key}={stored[key]!r}, not {key}={value!r}: rerun with {key}={stored[key]!r} "
                "to continue it, or give a new study_name (or run_dir) for a new study"
            )


class SearchObjective:
    """Optuna objective: admit, decode, budget check, de-duplicate, score.

    ``budget`` is the constraint (the widest budget); with ``multi_objective`` the trial's values
    are (score, the budget's cost: MACs in its convention or predicted ms). Several workers may
    share the study: see ``arch_search.admission`` for who runs and who scores.

    ``run_search`` builds it from :class:`SearchSettings` and passes every setting; built by
    hand (a benchmark, a test) it measures nothing beyond the score and the costs unless asked
    (``latency_runs=0``, no predictor)."""

    def __init__(
        self,
        space: LitePoseSpace,
        budget: SearchBudget,
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
        trial.set_user_attr("worker", worker_name())
        if self.n_trials is not None and not admitted(trial, self.n_trials):
            trial.study.stop()
            raise SurplusTrial(f"the study already has its {self.n_trials} trials")
        genes = {name: trial.suggest_categorical(name, c) for name, c in self.choices.items()}
        config = self.space.decode(genes)
        macs = fast_macs(config)
        measured = self.budget.cost_of(config, macs)  # once: constraint and second objective
        digest = arch_hash(config)
        trial.set_user_attr("hash", digest)
        for column, cost in self._costs(config, macs, measured).items():
            trial.set_user_attr(column, cost)
        trial.set_user_attr("arch", json.dumps(to_dict(config)))
        violation = measured - self.budget.limit
        trial.set_constraint(self.budget.constraint, violation)
        if violation > 0:
            return self._values(WORST, measured)
        previous = scored_trial_with_hash(trial, digest)
        if previous is not None:
            trial.set_user_attr("duplicate_of", previous.number)
            for key in ("params", "latency_ms"):
                if key in previous.user_attrs:
                    trial.set_user_attr(key, previous.user_attrs[key])
            return self._values(previous.values[0], measured)
        # From the layer plan, equal to the built model's count: building the model only to count
        # (~0.2 s) cost as much as a cheap proxy's whole score.
        trial.set_user_attr("params", sum(layer_parameters(layer) for layer in layer_plan(config)))
        if self.latency_runs:
            timed = measure_latency(
                build_model(config),
                config.input_size,
                runs=self.latency_runs,
                warmup=1,
                threads=1,
                macs=macs.macs,
            )
            trial.set_user_attr("latency_ms", timed.latency_ms)
        return self._values(self.proxy.score(config, self.context), measured)

    def _costs(self, config, macs, measured: float) -> dict[str, float]:
        """The costs every trial records (MACs in both conventions; the predicted latency with a
        table), the budget's own under its column: nothing is computed twice."""
        costs = {"macs": macs.macs, "macs_paper": macs.macs_paper}
        costs.setdefault(self.budget.column, measured)  # a latency budget's predicted ms
        if self.predictor is not None and "latency_pred_ms" not in costs:
            costs["latency_pred_ms"] = self.predictor.predict_ms(config)
        return costs

    def _values(self, score: float, macs: int):
        return (score, float(macs)) if self.multi_objective else score


def run_search(
    space: LitePoseSpace,
    settings: SearchSettings,
    proxy: Proxy,
    context: ProxyContext,
    progress: bool = True,
) -> optuna.Study:
    """Run (or continue) the study until ``n_trials`` trials have finished, all workers counted,
    or until a stop is requested (``posecore.interrupts``). Every budget must be reachable."""
    smallest = space.smallest()
    for budget in settings.budgets.values():
        budget.check_reachable(smallest, fast_macs(smallest))
    latency = [b.predictor for b in settings.budgets.values() if isinstance(b, LatencyBudget)]
    predictor = settings.predictor or (latency[0] if latency else None)
    study = open_study(settings, space)
    if settings.seed_paper_models and not study.trials:
        for name in list_presets(tag="paper")[: settings.n_trials]:  # never past n_trials
            config = get_preset(name)
            if space.contains(config):
                study.enqueue_trial(space.encode(config), skip_if_exists=True)
    remaining = settings.n_trials - finished_trials(study)
    if remaining > 0 and not requested():
        objective = SearchObjective(
            space,
            settings.widest,
            proxy,
            context,
            settings.multi_objective,
            settings.n_trials,
            settings.latency_runs,
            predictor,
        )
        stop = optuna.study.MaxTrialsCallback(settings.n_trials, states=FINISHED)
        callbacks = [stop, _stop_when_asked]
        bar = TrialsBar(study, settings.n_trials) if progress else None
        try:
            study.optimize(
                objective,
                n_trials=remaining,
                callbacks=callbacks + ([bar] if bar else []),
                catch=(SurplusTrial,),
            )
        except Interrupted:
            pass  # raised inside a trial, which Optuna has recorded as failed
        finally:
            if bar is not None:
                bar.close()
    return study


class TrialsBar:
    """A progress bar of the study's finished trials (every worker's) against ``n_trials``:
    Optuna's own bar counts this process's trials against what was left when it started."""

    def __init__(self, study: optuna.Study, n_trials: int):
        self.bar = tqdm(total=n_trials, initial=finished_trials(study), unit="trial", desc="search")

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.bar.n = min(finished_trials(study), self.bar.total)
        target = trial.system_attrs.get(TARGET_ATTR)
        if trial.values:
            score = f"{trial.values[0]:.4g}" if math.isfinite(trial.values[0]) else "over budget"
            self.bar.set_postfix_str(f"trial {trial.number}: {target or ''} {score}".strip())
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _stop_when_asked(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Optuna callback: after a SIGINT / SIGTERM, start no further trial."""
    if requested():
        study.stop()
