"""Feasible-first proposals for a search under several budgets, and the paper's evolution.

A uniform draw from the space serves the budgets badly: 3.7% of uniform members fit XS (1.2
paper GMACs), 70% already fit S, 9% lie between M and L. ``BudgetedSampler`` (an Optuna sampler,
so storage, resume, several workers and dashboards work as for any other) instead gives every
trial a *target* budget, the budgets taking turns by trial number, and proposes a member within
it and above the next smaller budget (a member below that already counts for the smaller one,
and for every larger one when their winners are read):

- until a budget's population is full, or always with ``evolve=False`` ("random within each
  budget"), a uniform member drawn again until it fits (each draw costs one exact fast MACs sum,
  ``evaluators.macs_fast``, 2-3 ms), the last draw repaired by lowering genes if none did;
- then regularized (aging) evolution (Real et al. 2019): the population of a budget is the
  ``population`` most recent scored trials proposed for it; a tournament of ``tournament``
  members drawn from it picks the best-scored parent, with probability ``crossover`` a second
  tournament picks another one to cross with (``LitePoseSpace.crossover_genes``), and the child
  is the parent with each gene drawn anew with probability ``mutation``
  (``LitePoseSpace.mutate_genes``), drawn again until it fits.

Architectures already in the study (by canonical hash) are drawn again, so trials are not spent
on reused scores. Nothing is kept in the sampler between trials: a proposal is a function of the
study's finished trials and of ``(seed, trial number)``, so a study continued after a kill, or
shared by several workers, proposes what one uninterrupted worker would have, and two workers with
one seed never propose the same candidates at the same moment (different trial numbers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from arch_search.budget import SearchBudget
from evaluators.macs_fast import fast_macs
from posecore.errors import SettingError
from search_space import arch_hash
from search_space.space import Genes, LitePoseSpace

TARGET_ATTR = "target_budget"  # trial system attribute: the budget a proposal was drawn for


@dataclass(frozen=True)
class EvolutionSettings:
    """Regularized evolution's knobs (defaults measured in ``benchmarks/search_budgets.py``)."""

    population: int = 6  # per budget: its most recent scored trials proposed for it
    tournament: int = 3  # members drawn from the population; the best-scored one is a parent
    mutation: float = 0.2  # probability that a gene is drawn anew (the paper: 0.1)
    crossover: float = 0.5  # probability that the child crosses two tournament winners
    max_draws: int = 200  # draws of a proposal before the last one is repaired

    def __post_init__(self) -> None:
        for name, kind in (("population", int), ("tournament", int), ("max_draws", int)):
            value = getattr(self, name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise SettingError(f"evolution {name}={value!r}: must be an integer")
        for name in ("mutation", "crossover"):
            if not isinstance(getattr(self, name), int | float):
                raise SettingError(f"evolution {name}={getattr(self, name)!r}: must be a number")
        if self.population < 1 or not 1 <= self.tournament <= self.population:
            raise SettingError(
                f"evolution population={self.population}, tournament={self.tournament}: "
                "need 1 <= tournament <= population"
            )
        for name in ("mutation", "crossover"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:  # also refuses NaN
                raise SettingError(f"evolution {name}={value}: must be in [0, 1]")
        if self.max_draws < 1:
            raise SettingError(f"evolution max_draws={self.max_draws}: must be >= 1")


class BudgetedSampler(optuna.samplers.BaseSampler):
    """Proposes every gene of ``space`` at once (``sample_relative``), within the trial's target
    budget; ``evolve=False`` draws uniformly within it, never evolving."""

    def __init__(
        self,
        space: LitePoseSpace,
        budgets: Mapping[str, SearchBudget],
        seed: int = 0,
        evolve: bool = True,
        settings: EvolutionSettings | None = None,
    ):
        self.space = space
        self.choices = space.choices()
        self.targets = sorted(budgets.items(), key=lambda item: item[1].limit)
        self.seed = seed
        self.evolve = evolve
        self.settings = settings or EvolutionSettings()

    # ------------------------------------------------------------------ Optuna's interface
    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {name: CategoricalDistribution(c) for name, c in self.choices.items()}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        name, budget = self.target(trial.number)
        study._storage.set_trial_system_attr(trial._trial_id, TARGET_ATTR, name)
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return self.propose(done, name, budget, self.rng(trial.number))

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """Only for a parameter outside the space (none of the driver's): a uniform choice."""
        choices = param_distribution.choices  # type: ignore[attr-defined]
        return choices[int(self.rng(trial.number).integers(len(choices)))]

    # ------------------------------------------------------------------ proposals
    def target(self, number: int) -> tuple[str, SearchBudget]:
        """The budget trial ``number`` is proposed for: the budgets take turns, smallest first
        (with the paper's four presets enqueued, each preset opens its own budget's turn)."""
        return self.targets[number % len(self.targets)]

    def rng(self, number: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, number])

    def population(
        self, trials: Sequence[FrozenTrial], name: str, budget: SearchBudget
    ) -> list[FrozenTrial]:
        """Budget ``name``'s population: its ``population`` most recent scored trials proposed
        for it (``proposed_for``) that fit it. Members proposed for other budgets stay out: the
        smaller budgets' would crowd a wide budget's aging window with parents far below it."""
        fits = [
            t
            for t in trials
            if _scored(t) and _cost(t, budget) <= budget.limit and self.proposed_for(t) == name
        ]
        fits.sort(key=lambda t: t.number)
        return fits[-self.settings.population :]

    def proposed_for(self, trial: FrozenTrial) -> str | None:
        """The budget a trial was drawn for; an enqueued trial (the paper's presets), which no
        sampler drew, belongs to the smallest budget it fits."""
        if TARGET_ATTR in trial.system_attrs:
            return trial.system_attrs[TARGET_ATTR]
        return next((n for n, b in self.targets if _cost(trial, b) <= b.limit), None)

    def floor(self, name: str) -> float:
        """The next smaller budget's limit (0 for the smallest): a member below it already
        counts for that budget, so a proposal for ``name`` aims above it."""
        limits = [b.limit for n, b in self.targets]
        index = [n for n, _ in self.targets].index(name)
        return limits[index - 1] if index else 0.0

    def propose(self, trials: Sequence[FrozenTrial], name: str, budget: SearchBudget, rng) -> Genes:
        """Genes of a new member for budget ``name``: within it, above the next smaller budget
        (``floor``) and new to the study; after ``max_draws`` draws, the first that was within
        it and new, else the last draw lowered until it fits (``repair``)."""
        seen = {t.user_attrs.get("hash") for t in trials}
        members = self.population(trials, name, budget)
        evolving = self.evolve and len(members) >= self.settings.population
        floor, fallback, genes = self.floor(name), None, {}
        for _ in range(self.settings.max_draws):
            genes = self.child(members, rng) if evolving else self.draw(rng)
            config = self.space.decode(genes)
            cost = self.cost(config, budget)
            if cost <= budget.limit and arch_hash(config) not in seen:
                if cost > floor:
                    return genes
                fallback = fallback or genes
        return fallback if fallback is not None else self.repair(genes, budget, rng)

    def draw(self, rng) -> Genes:
        return {name: c[int(rng.integers(len(c)))] for name, c in self.choices.items()}

    def child(self, members: list[FrozenTrial], rng) -> Genes:
        """Mutation (and crossover) on the parents' genes as the study stored them, kernels of
        blocks beyond a depth included (``LitePoseSpace.mutate_genes``)."""
        parent = self._tournament(members, rng).params
        if rng.random() < self.settings.crossover:
            other = self._tournament(members, rng).params
            parent = self.space.crossover_genes(parent, other, rng)
        return self.space.mutate_genes(parent, rng, self.settings.mutation)

    def _tournament(self, members: list[FrozenTrial], rng) -> FrozenTrial:
        picked = rng.choice(len(members), size=self.settings.tournament, replace=False)
        return max((members[i] for i in picked), key=lambda t: (t.values[0], t.number))

    def repair(self, genes: Genes, budget: SearchBudget, rng) -> Genes:
        """Lower random genes one choice at a time until the member fits: every choice list is
        ascending and cost grows with each gene, and the smallest member fits every budget
        (``check_reachable``), so this ends."""
        genes = dict(genes)
        while self.cost(self.space.decode(genes), budget) > budget.limit:
            lowerable = [n for n, c in self.choices.items() if c.index(genes[n]) > 0]
            name = lowerable[int(rng.integers(len(lowerable)))]
            allowed = self.choices[name]
            genes[name] = allowed[allowed.index(genes[name]) - 1]
        return genes

    @staticmethod
    def cost(config, budget: SearchBudget) -> float:
        return budget.cost_of(config, fast_macs(config))


def _scored(trial: FrozenTrial) -> bool:
    return bool(trial.values) and math.isfinite(trial.values[0])


def _cost(trial: FrozenTrial, budget: SearchBudget) -> float:
    value = trial.user_attrs.get(budget.column)
    return math.inf if value is None else float(value)
