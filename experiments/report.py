"""The number a training run reports: the recipe's checkpoint evaluated on the report split.

The LitePose release reports its last epoch on the test split; posearch's recipe reports the
``best.pt`` chosen on ``dataset.select_split``. Either way the report split (``val_split``) is
never the one a checkpoint was chosen on, so the reported AP carries no selection bias.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from torch import nn

from posenets.checkpoint import load_checkpoint


def report(
    model: nn.Module,
    run_dir: Path,
    wanted: str,
    evaluate: Callable[[nn.Module], dict[str, float]],
    split: str,
    recipe: str,
) -> dict:
    """Evaluate the reported checkpoint (``wanted``: ``"best"`` or ``"last"``; ``last`` when no
    ``best.pt`` was chosen) with ``evaluate`` (the family's AP hook on the report split) and write
    ``<run_dir>/report.json``. ``model`` holds the last weights and is left holding them."""
    best = run_dir / "checkpoints" / "best.pt"
    which = "best" if wanted == "best" and best.exists() else "last"
    last_state = None
    if which == "best":
        last_state = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(load_checkpoint(best)["model"])
    try:
        stats = evaluate(model)
    finally:
        if last_state is not None:
            model.load_state_dict(last_state)
    record = {
        "checkpoint": which,
        "split": split,
        "recipe": recipe,
        **{k: float(v) for k, v in stats.items()},
    }
    (run_dir / "report.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
