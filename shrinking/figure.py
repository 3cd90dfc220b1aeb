"""The gradual-shrinking figure, drawn from the table ``experiments.shrink`` prints.

Without training: GMACs per step (true and paper convention, published values as markers), so
the MACs side of the ablation can be checked at a glance. With training: validation AP against
the GMACs the models were trained at, the steps joined in path order, which is the paper's
"shrinking helps" plot in miniature.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from evaluators.figures import save_figure


def plot_shrinking(table: pd.DataFrame, out_dir: Path, title: str) -> list[Path]:
    """Writes ``shrink.png`` and ``shrink.pdf`` into ``out_dir``; returns their paths."""
    trained = "AP" in table.columns
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    if trained:
        gmacs = table["GMACs @train"]
        ax.plot(gmacs, table["AP"], marker="o", color="C0", label="final AP")
        if "best AP" in table.columns:
            ax.scatter(gmacs, table["best AP"], marker="^", color="C1", label="best AP", zorder=3)
        for x, y, name in zip(gmacs, table["AP"], table["step"], strict=True):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
        size = int(table["train size"].iloc[0])
        ax.set_xlabel(f"GMACs at the training input size ({size} px, true count)")
        ax.set_ylabel("validation AP")
    else:
        positions = range(len(table))
        ax.bar([p - 0.2 for p in positions], table["GMACs (true)"], width=0.4, label="true")
        ax.bar(
            [p + 0.2 for p in positions],
            table["GMACs (paper conv.)"],
            width=0.4,
            label="paper conv.",
        )
        published = table["published GMACs"].astype(float)
        ax.scatter(positions, published, marker="_", s=400, color="k", label="published")
        ax.set_xticks(list(positions), table["step"], rotation=20)
        ax.set_ylabel("GMACs")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, "shrink")
