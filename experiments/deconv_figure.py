"""The deconvolution-width ablation's figure, drawn from the table ``experiments.deconv_ablation``
writes.

Without training: true and paper-convention GMACs per head, to see how much of the model's cost
the head is. With training: validation AP against the GMACs at the trained size, the heads joined
in width order and the preset's marked, which is the trade-off the sweep is for.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evaluators.figures import plot_ablation_ap, plot_ablation_macs, save_figure, subplots


def plot_deconv_ablation(table: pd.DataFrame, out_dir: Path, title: str, stem: str) -> list[Path]:
    """Writes ``<stem>.png`` and ``<stem>.pdf`` into ``out_dir``; returns their paths."""
    fig, ax = subplots(figsize=(7.0, 4.4))
    if "AP" in table.columns and "decoder GMACs" in table.columns:
        plot_decoder_ap(ax, table)
    elif "AP" in table.columns:
        plot_ablation_ap(ax, table, "head channels")
        preset = table[table["preset"]]
        ax.scatter(preset["GMACs @train"], preset["AP"], s=120, facecolors="none",
                   edgecolors="C3", label="preset", zorder=3)  # fmt: skip
    else:
        plot_ablation_macs(ax, table, "head channels")
        ax.set_xlabel("deconv head channels")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, stem)


def plot_decoder_ap(ax, table: pd.DataFrame) -> None:
    """A top-down sweep: mean AP (error bars: the seeds' standard deviation) against the
    decoder's true GMACs per person crop, the widths named and the preset's ringed."""
    sd = table["AP sd"].fillna(0.0)
    ax.errorbar(table["decoder GMACs"], table["AP"], yerr=sd, marker="o", capsize=3,
                label=f"AP, mean of {int(table['seeds'].min())} seeds")  # fmt: skip
    for x, y, name in zip(table["decoder GMACs"], table["AP"], table["head channels"],
                          strict=True):  # fmt: skip
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
    preset = table[table["preset"]]
    ax.scatter(preset["decoder GMACs"], preset["AP"], s=120, facecolors="none",
               edgecolors="C3", label="preset", zorder=3)  # fmt: skip
    ax.set_xscale("log")
    size, steps = table["train size"].iloc[0], int(table["train steps"].iloc[0])
    ax.set_xlabel(f"decoder GMACs per person crop ({size}, true count, log scale)")
    ax.set_ylabel(f"validation AP ({steps} training steps)")
