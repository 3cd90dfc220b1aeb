"""The deconvolution-width ablation's figure, drawn from the table ``experiments.deconv_ablation``
writes.

Without training: true and paper-convention GMACs per head, to see how much of the model's cost
the head is. With training: validation AP against the GMACs at the trained size, the heads joined
in width order and the preset's marked, which is the trade-off the sweep is for.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from evaluators.figures import save_figure


def plot_deconv_ablation(table: pd.DataFrame, out_dir: Path, title: str, stem: str) -> list[Path]:
    """Writes ``<stem>.png`` and ``<stem>.pdf`` into ``out_dir``; returns their paths."""
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    if "AP" in table.columns:
        gmacs = table["GMACs @train"]
        ax.plot(gmacs, table["AP"], marker="o", color="C0", label="AP")
        preset = table[table["preset"]]
        ax.scatter(preset["GMACs @train"], preset["AP"], s=120, facecolors="none",
                   edgecolors="C3", label="preset", zorder=3)  # fmt: skip
        for x, y, name in zip(gmacs, table["AP"], table["head channels"], strict=True):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
        size = int(table["train size"].iloc[0])
        ax.set_xlabel(f"GMACs at the training input size ({size} px, true count)")
        ax.set_ylabel("validation AP")
    else:
        positions = range(len(table))
        ax.bar([p - 0.2 for p in positions], table["GMACs (true)"], width=0.4, label="true")
        ax.bar([p + 0.2 for p in positions], table["GMACs (paper conv.)"], width=0.4,
               label="paper conv.")  # fmt: skip
        ax.set_xticks(list(positions), table["head channels"])
        ax.set_xlabel("deconv head channels")
        ax.set_ylabel("GMACs")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, stem)
