"""The trials table and what is read from it: the Pareto front and each budget's best trial."""

from __future__ import annotations

import math

import optuna
import pandas as pd

from arch_search.budget import SearchBudget

WORST = -math.inf  # the score of an unscored (over-budget) trial


def objective_column(proxy: str) -> str:
    """The trials-table column of a proxy's score (never clashes with ``params`` or ``macs``)."""
    return f"{proxy}_score"


def feasible_column(name: str) -> str:
    """The trials-table column saying whether a trial fits the budget called ``name``."""
    return f"feasible_{name}"


def trials_table(
    study: optuna.Study, objective_name: str, budgets: dict[str, SearchBudget] | None = None
) -> pd.DataFrame:
    """One row per trial: the contract columns, the objective (column ``objective_name``),
    ``feasible`` (within the searched constraint, the widest budget), one ``feasible_<name>``
    column per named budget, the genes and the arch JSON."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        violation = _violation(t)
        row = {
            "number": t.number,
            "hash": t.user_attrs.get("hash"),
            "macs": t.user_attrs.get("macs"),
            "macs_paper": t.user_attrs.get("macs_paper"),
            "params": t.user_attrs.get("params"),
            "latency_ms": t.user_attrs.get("latency_ms"),
            "latency_pred_ms": t.user_attrs.get("latency_pred_ms"),
            "feasible": violation is not None and violation <= 0,
        }
        for name, budget in (budgets or {}).items():
            measured = t.user_attrs.get(budget.column)
            row[feasible_column(name)] = measured is not None and measured <= budget.limit
        row |= {
            "state": t.state.name,
            objective_name: t.values[0] if t.values else None,
            "duplicate_of": t.user_attrs.get("duplicate_of"),
            "arch": t.user_attrs.get("arch"),
        }
        row.update({f"gene.{k}": v for k, v in t.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _violation(trial: optuna.trial.FrozenTrial) -> float | None:
    """The trial's excess over the searched budget (<= 0: within it), None before it was set.
    Each trial has one constraint, named for its budget's kind (``SearchBudget.constraint``):
    read whatever its name, so a latency study begun when every constraint was named ``macs``
    reads the same after it resumes."""
    values = list(trial.constraints.values())
    return max(values) if values else None


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


def best_within(table: pd.DataFrame, objective: str, budget: SearchBudget):
    """The best finished, scored trial whose MACs (in the budget's convention) fit ``budget``;
    ties go to the fewer MACs. None when no scored trial fits."""
    column = budget.column
    done = table[(table["state"] == "COMPLETE") & (table[column] <= budget.limit)]
    done = done[done[objective] > WORST]
    if done.empty:
        return None
    return done.sort_values([objective, column], ascending=[False, True]).iloc[0]


def winners_table(
    table: pd.DataFrame,
    objective: str,
    budgets: dict[str, SearchBudget],
    estimator=None,
    folders: dict | None = None,
) -> pd.DataFrame:
    """What the search found, one row per budget: its best trial (``best_within``), the cost
    as a fraction of the budget, the score, the AP estimate (``estimator``: an
    ``arch_search.calibration.ApEstimator`` or None) and the export folder."""
    rows = []
    for name, budget in budgets.items():
        best = best_within(table, objective, budget)
        row = {"budget": name, "limit": str(budget), "trial": None, "cost / budget": None}
        if best is not None:
            row |= {
                "trial": int(best["number"]),
                "cost / budget": float(best[budget.column]) / budget.limit,
                "score": float(best[objective]),
            }
            if estimator is not None:
                row["estimated AP"] = float(estimator.estimate([best[objective]])[0])
        folder = (folders or {}).get(name)
        row["export"] = str(folder) if folder else "none: no finished trial fits this budget"
        rows.append(row)
    return pd.DataFrame(rows)


def format_winners(winners: pd.DataFrame) -> str:
    """The console's end-of-search table."""
    shown = winners.copy()
    if "cost / budget" in shown:
        shown["cost / budget"] = ["" if pd.isna(v) else f"{v:.1%}" for v in shown["cost / budget"]]
    shown["trial"] = ["" if pd.isna(v) else int(v) for v in shown["trial"]]
    return shown.to_string(index=False, na_rep="", float_format=lambda v: f"{v:.4g}")
