"""Saving matplotlib figures the one way every report here does: PNG and PDF side by side.

matplotlib is imported on the first figure, not with the module: it costs 0.5-0.9 s, and every
entry point that can write a figure imports this module, including runs that fail on a setting
before plotting anything."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


@cache
def pyplot():
    """``matplotlib.pyplot`` with the headless backend (reports are written by batch jobs),
    chosen once, on the first figure, as importing this module used to: later figures do not
    switch a backend the caller chose since (a switch closes every open figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def subplots(*args, **kwargs):
    """``plt.subplots`` of the headless pyplot."""
    return pyplot().subplots(*args, **kwargs)


def save_figure(fig: plt.Figure, folder: Path, stem: str, dpi: int = 150) -> list[Path]:
    """Writes ``<stem>.png`` and ``<stem>.pdf`` into ``folder``, closes the figure, and returns
    the two paths."""
    folder.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = [folder / f"{stem}.png", folder / f"{stem}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return paths


def plot_ablation_ap(ax: plt.Axes, table, labels: str, ap_label: str = "AP") -> None:
    """An ablation's trained side: ``AP`` against ``GMACs @train``, the rows joined in table
    order and named by column ``labels``, the x axis naming the training size."""
    gmacs = table["GMACs @train"]
    ax.plot(gmacs, table["AP"], marker="o", color="C0", label=ap_label)
    for x, y, name in zip(gmacs, table["AP"], table[labels], strict=True):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
    size = int(table["train size"].iloc[0])
    ax.set_xlabel(f"GMACs at the training input size ({size} px, true count)")
    ax.set_ylabel("validation AP")


def plot_ablation_macs(ax: plt.Axes, table, labels: str, rotation: float = 0) -> range:
    """An ablation's cost side: true and paper-convention GMACs as paired bars per row, named by
    column ``labels``; returns the bar positions for markers drawn on top."""
    positions = range(len(table))
    ax.bar([p - 0.2 for p in positions], table["GMACs (true)"], width=0.4, label="true")
    ax.bar([p + 0.2 for p in positions], table["GMACs (paper conv.)"], width=0.4,
           label="paper conv.")  # fmt: skip
    ax.set_xticks(list(positions), table[labels], rotation=rotation)
    ax.set_ylabel("GMACs")
    return positions
