"""The gradual-shrinking figure, drawn from the table ``experiments.shrink`` prints.

Without training: GMACs per step (true and paper convention, published values as markers), so
the MACs side of the ablation can be checked at a glance. With training: validation AP against
the GMACs the models were trained at, the steps joined in path order, which is the paper's
"shrinking helps" plot in miniature.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evaluators.figures import plot_ablation_ap, plot_ablation_macs, save_figure, subplots


def plot_shrinking(table: pd.DataFrame, out_dir: Path, title: str) -> list[Path]:
    """Writes ``shrink.png`` and ``shrink.pdf`` into ``out_dir``; returns their paths."""
    fig, ax = subplots(figsize=(7.0, 4.4))
    if "AP" in table.columns:
        plot_ablation_ap(ax, table, "step", ap_label="final AP")
        if "best AP" in table.columns:
            ax.scatter(
                table["GMACs @train"], table["best AP"], marker="^", color="C1", label="best AP",
                zorder=3,
            )  # fmt: skip
    else:
        positions = plot_ablation_macs(ax, table, "step", rotation=20)
        published = table["published GMACs"].astype(float)
        ax.scatter(positions, published, marker="_", s=400, color="k", label="published")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, "shrink")
