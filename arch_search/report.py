"""Search results on disk: the trials table, the Pareto front, accuracy-vs-MACs plots, exports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from arch_search.budget import SearchBudget
from arch_search.calibration import ApEstimator
from arch_search.tables import WORST, best_within, pareto_front
from evaluators.figures import save_figure, subplots
from posecore.errors import SettingError
from posecore.folders import staged
from search_space import from_dict, list_presets, preset_info, save_arch

# The paper's points on accuracy-vs-MACs plots: published GMACs (paper convention) and CrowdPose
# mAP of LitePose-XS / S / M / L, as their presets carry them.
PAPER_POINTS = {
    info.short: (info.published_gmacs, info.crowdpose_ap)
    for info in map(preset_info, list_presets(tag="paper"))
}


def write_tables(table: pd.DataFrame, objective: str, run_dir: Path) -> pd.DataFrame:
    run_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(run_dir / "trials.csv", index=False)
    front = pareto_front(table, objective)
    front.to_csv(run_dir / "pareto.csv", index=False)
    return front


@dataclass(frozen=True)
class Run:
    """One set of trials on a figure: ``style`` is ``front`` (scored trials and their Pareto
    front), ``points`` (scattered, e.g. random members or presets) or ``path`` (joined in row
    order, e.g. the shrinking path)."""

    label: str
    table: pd.DataFrame
    style: str = "front"


STYLES = ("front", "points", "path")


def plot_pareto(
    table: pd.DataFrame,
    objective: str,
    budgets: dict[str, SearchBudget],
    run_dir: Path,
    estimator: ApEstimator | None = None,
    truth: pd.Series | None = None,
) -> list[Path]:
    """The search's ``pareto.png`` / ``.pdf``: see ``plot_runs``, with this one run."""
    return plot_runs([Run("searched", table)], objective, budgets, run_dir, estimator, truth)


def plot_runs(
    runs: list[Run],
    objective: str,
    budgets: dict[str, SearchBudget],
    run_dir: Path,
    estimator: ApEstimator | None = None,
    truth: pd.Series | None = None,
    name: str = "pareto",
) -> list[Path]:
    """Left: estimated AP (``estimator``, named on the axis; the raw score, said to be no AP,
    when there is none) against GMACs in the budgets' convention, each run in its style, the
    budgets as vertical lines and, where a plotted architecture is in the ground truth (``truth``:
    trained AP by hash), its trained AP. Right, a panel of its own: the paper's published
    LitePose mAP against published GMACs. Writes ``<name>.png`` / ``.pdf``."""
    first = next(iter(budgets.values()), None)
    column = first.column if first else "macs_paper"  # MACs in the convention, or latency
    scale, xlabel = first.axis() if first else (1e9, "GMACs (paper convention)")
    fig, (ax, paper) = subplots(1, 2, figsize=(11.5, 4.8), gridspec_kw={"width_ratios": [3, 1.2]})
    shown = []
    for index, run in enumerate(runs):
        shown.append(_draw_run(ax, run, objective, column, scale, estimator, f"C{index}"))
    if estimator is not None and truth is not None and len(truth):
        drawn = pd.concat(shown, ignore_index=True).drop_duplicates("hash")
        known = drawn[drawn["hash"].isin(truth.index)]
        if not known.empty:
            ax.scatter(
                known[column] / scale,
                truth.loc[known["hash"]].to_numpy(),
                marker="*",
                s=90,
                color="k",
                zorder=4,
                label=f"trained AP of those in the ground truth ({len(known)})",
            )
    for budget_name, budget in budgets.items():
        ax.axvline(budget.limit / scale, color="0.45", linestyle=":", lw=1)
        ax.text(
            budget.limit / scale,
            1.0,
            f" {budget_name}",
            transform=ax.get_xaxis_transform(),
            va="bottom",
            fontsize=8,
        )
    ax.set_xlabel(xlabel)
    if estimator is not None:
        ax.set_ylabel(estimator.name, fontsize=8)
    else:
        ax.set_ylabel(f"{objective} (a proxy score, not AP: no calibration)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    xs, ys = zip(*PAPER_POINTS.values(), strict=True)
    paper.plot(xs, ys, "D--", color="0.25")  # not a run colour: another dataset
    for label, (x, y) in PAPER_POINTS.items():
        paper.annotate(label, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
    paper.set_xlabel("published GMACs (paper convention)")
    paper.set_ylabel("CrowdPose mAP (published)")
    paper.set_title("LitePose, as published", fontsize=9)
    paper.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, run_dir, name)


def _draw_run(
    ax, run: Run, objective: str, column: str, scale: float, estimator, color: str
) -> pd.DataFrame:
    """Draws ``run``; returns the rows drawn (scored, finished)."""
    if run.style not in STYLES:
        raise SettingError(f"style={run.style!r} (run {run.label!r}): must be one of {STYLES}")
    done = run.table[run.table["state"] == "COMPLETE"]
    scored = done[done[objective] > WORST]

    def y(rows: pd.DataFrame):
        return estimator.estimate(rows[objective]) if estimator else rows[objective]

    if run.style == "path":
        ax.plot(scored[column] / scale, y(scored), "o-", color=color, ms=4, label=run.label)
        return scored
    alpha = 0.35 if run.style == "front" else 0.8
    ax.scatter(
        scored[column] / scale,
        y(scored),
        s=14,
        alpha=alpha,
        color=color,
        label=f"{run.label}: trials" if run.style == "front" else run.label,
    )
    unscored = done[done[objective] <= WORST]
    if run.style == "front" and not unscored.empty:
        ax.plot(
            unscored[column] / scale,
            [0.0] * len(unscored),
            "|",
            color="0.5",
            ms=8,
            transform=ax.get_xaxis_transform(),
            label="over the widest budget (not scored)",
        )
    if run.style == "front":
        front = pareto_front(run.table, objective, column)
        if not front.empty:
            ax.step(
                front[column] / scale,
                y(front),
                where="post",
                color=color,
                lw=1.6,
                label=f"{run.label}: Pareto front",
            )
    return scored


def export_winners(
    table: pd.DataFrame,
    objective: str,
    budgets: dict[str, SearchBudget],
    run_dir: Path,
    exporter=None,
) -> dict[str, Path | None]:
    """For each named budget, the best trial that fits it: ``exports/<name>/arch.json`` (with
    its hash) and, when ``exporter(config, folder)`` is given, weights and ONNX (written into
    the folder it is given, the staged one; ``posecore.folders``). Restrict
    ``table`` first to export only within a further budget (a latency search: its feasible
    trials)."""
    written: dict[str, Path | None] = {}
    for name, budget in budgets.items():
        row = best_within(table, objective, budget)
        if row is None:
            written[name] = None
            continue
        config = from_dict(json.loads(row["arch"]))
        folder = run_dir / "exports" / name
        trial = {
            "number": int(row["number"]),
            objective: float(row[objective]),
            "macs": int(row["macs"]),
            "macs_paper": int(row["macs_paper"]),
            **_predicted_latency(row),
            "budget": str(budget),
        }
        # Written whole (a kill leaves the old winner or the new one, never a mix); the
        # workers of one search wait for each other rather than fail.
        with staged(folder, "model", "search", trial, key=f"exports/{name}", wait=True) as stage:
            save_arch(config, stage / "arch.json")
            (stage / "trial.json").write_text(json.dumps(trial, indent=2) + "\n")
            if exporter is not None:
                exporter(config, stage)
        written[name] = folder
    return written


def _predicted_latency(row) -> dict[str, float]:
    value = row.get("latency_pred_ms")
    return {} if value is None or pd.isna(value) else {"latency_pred_ms": float(value)}


def plot_proxy_ranking(
    scores: pd.DataFrame, ranking: pd.DataFrame, run_dir: Path, truth: str = "truth_AP"
) -> list[Path]:
    """One panel per proxy: its score against the trained truth, one dot per architecture,
    Kendall's tau in the title. Writes ``ranking.png`` / ``ranking.pdf``."""
    proxies = list(ranking["proxy"])
    columns = min(4, len(proxies))
    rows = -(-len(proxies) // columns)
    fig, axes = subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    tau_column = "kendall_tau_vs_AP" if truth == "truth_AP" else "kendall_tau_vs_neg_loss"
    for ax, (_, row) in zip(axes.flat, ranking.iterrows(), strict=False):
        ax.scatter(scores[row["proxy"]], scores[truth], s=16)
        ax.set_title(f"{row['proxy']}: tau {row[tau_column]:.2f}", fontsize=9)
        ax.set_xlabel("proxy score", fontsize=8)
        ax.set_ylabel(truth.replace("truth_", "trained "), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(proxies) :]:
        ax.axis("off")
    return save_figure(fig, run_dir, "ranking")


def plot_ground_truth(table: pd.DataFrame, run_dir: Path) -> list[Path]:
    """Trained AP against paper GMACs, one dot per architecture (SD bars where it has seeds),
    coloured by the input size it was trained at; presets named. Writes ``ground_truth.png``."""
    fig, ax = subplots(figsize=(6.4, 4.2))
    points = ax.scatter(
        table["gmacs_paper"], table["AP"], c=table["input_size"], cmap="viridis", s=22, zorder=3
    )
    seeded = table[table["n_seeds"] > 1]
    ax.errorbar(
        seeded["gmacs_paper"],
        seeded["AP"],
        yerr=seeded["AP_sd"],
        fmt="none",
        ecolor="0.3",
        capsize=3,
        zorder=2,
    )
    for _, row in table[table["kind"] == "preset"].iterrows():
        ax.annotate(
            row["name"].replace("litepose_", "").upper(),
            (row["gmacs_paper"], row["AP"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("paper-convention GMACs at the architecture's own resolution")
    ax.set_ylabel("AP after the ground-truth schedule (demo val)")
    fig.colorbar(points, ax=ax, label="trained input size (px)")
    ax.grid(alpha=0.3)
    return save_figure(fig, run_dir, "ground_truth")


def plot_agreement(ranking: pd.DataFrame, run_dir: Path) -> list[Path]:
    """Kendall's tau of each proxy with its 95% bootstrap interval, over the whole ground-truth
    table and pooled within budget bands; the seed ceiling as a dashed line. ``agreement.png``."""
    scopes = [("whole", "whole table"), ("bands", "within budget bands (+-25%)")]
    whole = ranking[(ranking["scope"] == "whole") & (ranking["proxy"] != "seed ceiling")]
    order = list(whole.sort_values("tau")["proxy"])  # one row order for both panels
    fig, axes = subplots(1, 2, figsize=(9.6, 3.8), sharey=True)
    for ax, (scope, title) in zip(axes, scopes, strict=True):
        part = ranking[ranking["scope"] == scope]
        proxies = part.set_index("proxy").loc[order].reset_index()
        y = range(len(proxies))
        ax.errorbar(
            proxies["tau"],
            y,
            xerr=[proxies["tau"] - proxies["tau_low"], proxies["tau_high"] - proxies["tau"]],
            fmt="o",
            capsize=3,
        )
        ax.set_yticks(list(y), list(proxies["proxy"]))
        ceiling = part.loc[part["proxy"] == "seed ceiling", "tau"]
        if len(ceiling):
            ax.axvline(float(ceiling.iloc[0]), ls="--", color="0.4", label="seed ceiling")
            ax.legend(fontsize=8, loc="upper left")  # the lowest-ranked proxy sits bottom right
        ax.axvline(0, color="0.7", lw=0.8)
        ax.set_xlim(-1, 1)
        ax.set_xlabel("Kendall tau vs trained AP (95% bootstrap CI)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    return save_figure(fig, run_dir, "agreement")
