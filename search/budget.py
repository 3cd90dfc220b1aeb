"""MACs budgets: parsing ``5.0G`` / ``800M`` / plain counts, conventions, feasibility."""

from __future__ import annotations

import re
from dataclasses import dataclass

from evaluators.macs_fast import FastMacs
from search_space import preset_info
from search_space.errors import UserError

CONVENTIONS = ("true", "paper")
_UNITS = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}

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
            raise BudgetError(f"convention={self.convention!r}: must be one of {CONVENTIONS}")
        if self.macs <= 0:
            raise BudgetError(f"budget={self.macs}: must be positive")

    @property
    def column(self) -> str:
        """Where this budget's convention is counted: the ``FastMacs`` field, and the column of
        the trials table, named alike."""
        return "macs_paper" if self.convention == "paper" else "macs"

    def measure(self, macs: FastMacs) -> int:
        """The MACs of a candidate in this budget's convention."""
        return getattr(macs, self.column)

    def violation(self, macs: FastMacs) -> float:
        """Optuna constraint value: <= 0 when the candidate fits."""
        return float(self.measure(macs) - self.macs)

    def __str__(self) -> str:
        return f"{self.macs / 1e9:g}G ({self.convention} MACs)"


def parse_macs(text: str | float | int) -> float:
    """``'5.0G'`` -> 5e9, ``'800M'`` -> 8e8, ``1.2e9`` -> 1.2e9."""
    if isinstance(text, int | float):
        return float(text)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([KMG]?)\s*", str(text))
    if not match:
        raise BudgetError(
            f"budget={text!r}: write a number with an optional K, M or G suffix (e.g. 5.0G)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def check_reachable(budget: Budget, smallest: FastMacs) -> None:
    """Refuse a budget below the smallest member of the space, naming what is reachable."""
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
