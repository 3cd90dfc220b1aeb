"""Budgets: MACs (``5.0G`` / ``800M`` / plain counts, true or paper convention) or predicted
latency (``40ms``, convention ``latency``, read from a per-layer latency table); feasibility.

Both kinds answer the driver alike: ``cost_of(config, macs)`` is a candidate's cost in the
budget's unit, ``limit`` the budget, ``column`` the trials-table column the cost is kept in."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from evaluators.latency_table import LatencyPredictor
from evaluators.macs_fast import FastMacs
from posecore.errors import UserError
from search_space import preset_info

CONVENTIONS = ("true", "paper")
LATENCY = "latency"  # the convention of a latency budget
_UNITS = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}
_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}

# The paper's named budgets (paper convention): the published MACs of LitePose-XS / S / M / L,
# stated once, on their presets.
PAPER_BUDGETS = {
    name: preset_info(f"litepose_{name.lower()}").published_gmacs * 1e9
    for name in ("XS", "S", "M", "L")
}


class BudgetError(UserError, ValueError):
    """A budget that cannot be parsed or that no member of the space can meet."""


@dataclass(frozen=True)
class Budget:
    macs: float
    convention: str = "true"

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

    def measure(self, macs: FastMacs) -> int:
        """The MACs of a candidate in this budget's convention."""
        return getattr(macs, self.column)

    def cost_of(self, config, macs: FastMacs) -> float:
        return float(self.measure(macs))

    def axis(self) -> tuple[float, str]:
        """(divisor, label) for plotting costs of this kind."""
        return 1e9, f"GMACs ({self.convention} convention)"

    def violation(self, macs: FastMacs) -> float:
        """Optuna constraint value: <= 0 when the candidate fits."""
        return float(self.measure(macs) - self.macs)

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

    def __post_init__(self) -> None:
        if not math.isfinite(self.ms) or self.ms <= 0:
            raise BudgetError(f"budget={self.ms}ms: must be a positive number of milliseconds")

    @property
    def limit(self) -> float:
        return self.ms

    def cost_of(self, config, macs: FastMacs | None = None) -> float:
        return self.predictor.predict_ms(config)

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


def check_reachable(budget: Budget | LatencyBudget, smallest: FastMacs, config=None) -> None:
    """Refuse a budget below the smallest member of the space (``config``, whose MACs are
    ``smallest``), naming what is reachable."""
    if isinstance(budget, LatencyBudget):
        floor = budget.cost_of(config)
        if floor > budget.ms:
            raise BudgetError(
                f"budget {budget} is infeasible: the smallest member of the search space is "
                f"predicted at {floor:.2f} ms by table {budget.predictor.table.path}; raise the "
                "budget to at least that"
            )
        return
    floor = budget.measure(smallest)
    if floor > budget.macs:
        raise BudgetError(
            f"budget {budget} is infeasible: the smallest member of the search space needs "
            f"{floor / 1e9:.3f} G {budget.convention} MACs; raise the budget to at least that"
        )


def parse_budgets(value, convention: str = "paper") -> dict[str, Budget]:
    """The ``budgets`` setting: ``paper`` (the paper's XS / S / M / L at their published GMACs),
    a mapping ``{name: MACs}`` (``{S: 5.0G, tiny: 800M}``) or one MACs value (named by itself)."""
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
