"""Budgets: MACs (``5.0G`` / ``800M`` / plain counts, true or paper convention) or predicted
latency (``40ms``, convention ``latency``, read from a per-layer latency table); feasibility.

Both kinds are a :class:`SearchBudget`, the one protocol the driver, the sampler, the tables and
the plots read: :class:`Budget` (MACs) and :class:`LatencyBudget`. A budget never looks at a
trial; the driver asks it for a candidate's cost once per trial and records that cost under the
budget's ``column`` and its excess over ``limit`` as the Optuna constraint ``constraint``."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Protocol

from evaluators.latency_table import LatencyPredictor
from evaluators.macs_fast import FastMacs
from posecore.errors import UserError
from search_space import list_presets, preset_info

CONVENTIONS = ("true", "paper")
LATENCY = "latency"  # the convention of a latency budget
_UNITS = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}
_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}

# The paper's named budgets (paper convention): the published MACs of LitePose-XS / S / M / L,
# stated once, on their presets.
PAPER_BUDGETS = {
    info.short: info.published_gmacs * 1e9 for info in map(preset_info, list_presets(tag="paper"))
}


class BudgetError(UserError, ValueError):
    """A budget that cannot be parsed or that no member of the space can meet."""


class SearchBudget(Protocol):
    """What the search asks of a budget, whatever it counts.

    When the search starts, :meth:`check_reachable` is given the smallest member of the space
    (and its MACs) and refuses a budget nothing can meet. For each trial the driver calls
    :meth:`cost_of` once, on the decoded candidate and its exact MACs (``FastMacs``, already
    computed for every trial); the cost is kept in the trial's user attribute ``column`` (also
    the trials-table column), ``cost - limit`` is the trial's Optuna constraint named
    ``constraint`` (feasible when <= 0), and with ``multi_objective`` the cost is the second
    objective. ``axis`` scales and labels costs of this kind for the plots; budgets of one search
    share one ``convention``.
    """

    convention: str
    column: str
    constraint: str

    @property
    def limit(self) -> float: ...

    def cost_of(self, config, macs: FastMacs) -> float: ...

    def check_reachable(self, smallest, macs: FastMacs) -> None: ...

    def axis(self) -> tuple[float, str]: ...


@dataclass(frozen=True)
class Budget:
    """At most ``macs`` multiply-accumulates, counted in ``convention`` (``true``, or ``paper``:
    the LitePose paper's count, deconvolutions per output pixel; ``docs/macs.md``)."""

    macs: float
    convention: str = "true"
    constraint: str = field(default="macs", init=False)  # the name every MACs study has used

    def __post_init__(self) -> None:
        if self.convention not in CONVENTIONS:
            raise BudgetError(
                f"convention={self.convention!r}: must be one of {CONVENTIONS} (MACs), or "
                f"{LATENCY!r} with table=<latency table> for a latency budget"
            )
        if not math.isfinite(self.macs) or self.macs <= 0:
            raise BudgetError(f"budget={self.macs}: must be a positive number of MACs")

    @property
    def column(self) -> str:
        """Where this budget's convention is counted: the ``FastMacs`` field, and the column of
        the trials table, named alike."""
        return "macs_paper" if self.convention == "paper" else "macs"

    @property
    def limit(self) -> float:
        return self.macs

    def cost_of(self, config, macs: FastMacs) -> float:
        """The candidate's MACs in this budget's convention (``config`` is not needed)."""
        return float(getattr(macs, self.column))

    def check_reachable(self, smallest, macs: FastMacs) -> None:
        floor = self.cost_of(smallest, macs)
        if floor > self.macs:
            raise BudgetError(
                f"budget {self} is infeasible: the smallest member of the search space needs "
                f"{floor / 1e9:.3f} G {self.convention} MACs; raise the budget to at least that"
            )

    def axis(self) -> tuple[float, str]:
        """(divisor, label) for plotting costs of this kind."""
        return 1e9, f"GMACs ({self.convention} convention)"

    def __str__(self) -> str:
        return f"{self.macs / 1e9:g}G ({self.convention} MACs)"


@dataclass(frozen=True)
class LatencyBudget:
    """At most ``ms`` milliseconds of *predicted* latency: the sum of a candidate's layers in a
    latency table measured on the target device plus the table's constant
    (``evaluators.latency_table.LatencyPredictor``)."""

    ms: float
    predictor: LatencyPredictor = field(compare=False, repr=False)
    convention: str = LATENCY
    column: str = "latency_pred_ms"
    # Named for what it is; a study made before this name was given has "macs" on its earlier
    # trials (the tables read a trial's one constraint whatever its name: tables.violation).
    constraint: str = "latency_ms"

    def __post_init__(self) -> None:
        if not math.isfinite(self.ms) or self.ms <= 0:
            raise BudgetError(f"budget={self.ms}ms: must be a positive number of milliseconds")

    @property
    def limit(self) -> float:
        return self.ms

    def cost_of(self, config, macs: FastMacs | None = None) -> float:
        """The candidate's predicted latency in ms (``macs`` is not needed)."""
        return self.predictor.predict_ms(config)

    def check_reachable(self, smallest, macs: FastMacs | None = None) -> None:
        floor = self.cost_of(smallest)
        if floor > self.ms:
            raise BudgetError(
                f"budget {self} is infeasible: the smallest member of the search space is "
                f"predicted at {floor:.2f} ms by table {self.predictor.table.path}; raise the "
                "budget to at least that"
            )

    def axis(self) -> tuple[float, str]:
        h = self.predictor.table.header
        return 1.0, f"predicted latency (ms; {h.runtime}, {h.threads} thread(s))"

    def __str__(self) -> str:
        return f"{self.ms:g}ms (predicted latency)"


def parse_latency_ms(text: str | float | int) -> float:
    """``'40ms'`` -> 40.0, ``'0.04s'`` -> 40.0, ``'500us'`` -> 0.5, ``40`` -> 40.0 (ms)."""
    if isinstance(text, int | float):
        return float(text)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(us|ms|s)?\s*", str(text))
    if not match:
        raise BudgetError(
            f"budget={text!r}: a latency budget is a time with an optional unit us, ms or s "
            "(e.g. 40ms); a MACs budget (e.g. 5.0G) needs convention=true or paper"
        )
    return float(match.group(1)) * _TIME_UNITS[match.group(2) or "ms"]


def parse_macs(text: str | float | int) -> float:
    """``'5.0G'`` -> 5e9, ``'800M'`` -> 8e8, ``1.2e9`` -> 1.2e9. A bare number below a million
    is refused: no pose network fits in it, and ``budgets=5.0`` meant 5.0G, not 5 MACs."""
    if isinstance(text, bool):
        raise BudgetError(f"budget={text!r}: write a number of MACs (e.g. 5.0G)")
    if isinstance(text, int | float):
        value, unit = float(text), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([KMG]?)\s*", str(text))
        if not match:
            raise BudgetError(
                f"budget={text!r}: write a number with an optional K, M or G suffix (e.g. 5.0G)"
            )
        value, unit = float(match.group(1)), match.group(2)
    if not unit and math.isfinite(value) and 0 < value < 1e6:
        raise BudgetError(
            f"budget={text!r} has no unit and would be {value:g} MACs: write {value:g}G for "
            f"{value:g} GMACs (or a K or M suffix)"
        )
    return value * _UNITS[unit]


def check_reachable(budget: SearchBudget, smallest: FastMacs, config=None) -> None:
    """Refuse a budget below the smallest member of the space (``config``, whose MACs are
    ``smallest``), naming what is reachable (``SearchBudget.check_reachable``)."""
    budget.check_reachable(config, smallest)


def parse_budgets(
    value, convention: str = "paper", predictor: LatencyPredictor | None = None
) -> dict[str, SearchBudget]:
    """The ``budgets`` setting: ``paper`` (the paper's XS / S / M / L at their published GMACs),
    a mapping ``{name: budget}`` (``{S: 5.0G, tiny: 800M}``) or one value (named by itself).
    With ``convention=latency`` the values are times (``40ms``) predicted by ``predictor``; one
    such budget is named ``latency_<value>``."""
    if convention == LATENCY:
        return _latency_budgets(value, predictor)
    if isinstance(value, str) and value == "paper":
        return {name: Budget(macs, convention) for name, macs in PAPER_BUDGETS.items()}
    if isinstance(value, str | int | float):
        return {str(value): Budget(parse_macs(value), convention)}
    if hasattr(value, "items") and len(value):
        return {str(name): Budget(parse_macs(macs), convention) for name, macs in value.items()}
    raise BudgetError(
        f"budgets={value!r}: write paper (XS / S / M / L), one budget (5.0G) or a mapping of "
        "names to budgets ({S: 5.0G, M: 7.8G})"
    )


def _latency_budgets(value, predictor: LatencyPredictor | None) -> dict[str, LatencyBudget]:
    if predictor is None:
        raise BudgetError("convention=latency needs a latency table (table=<CSV>)")
    if isinstance(value, str) and value == "paper":
        raise BudgetError(
            "convention=latency needs budgets=<milliseconds>, e.g. budgets=40ms (the paper's "
            "budgets are MACs)"
        )
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {f"latency_{value}": LatencyBudget(parse_latency_ms(value), predictor)}
    if hasattr(value, "items") and len(value):
        return {
            str(name): LatencyBudget(parse_latency_ms(ms), predictor) for name, ms in value.items()
        }
    raise BudgetError(
        f"budgets={value!r}: write one latency budget (40ms) or a mapping of names to budgets "
        "({fast: 20ms, slow: 40ms})"
    )
