"""Saving matplotlib figures the one way every report here does: PNG and PDF side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: reports are written by batch jobs
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig: plt.Figure, folder: Path, stem: str, dpi: int = 150) -> list[Path]:
    """Writes ``<stem>.png`` and ``<stem>.pdf`` into ``folder``, closes the figure, and returns
    the two paths."""
    folder.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = [folder / f"{stem}.png", folder / f"{stem}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return paths
