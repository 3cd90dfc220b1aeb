"""The number a training run reports: the recipe's checkpoint evaluated on the report split.

The LitePose release reports its last epoch on the test split; posearch's recipe reports the
``best.pt`` chosen on ``dataset.select_split``. Either way the report split (``val_split``) is
never the one a checkpoint was chosen on, so the reported AP carries no selection bias.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from bottomup.datasets.coco_format import KeypointDataset
from bottomup.recipe import Recipe
from evaluators.pose_eval import evaluate_model
from posenets.checkpoint import load_checkpoint


def report(
    model: nn.Module,
    run_dir: Path,
    recipe: Recipe,
    dataset: KeypointDataset,
    input_size: int,
    tag_dim: int,
    flip: bool,
    max_images: int | None,
) -> dict:
    """Evaluate the reported checkpoint (``recipe.report``; ``last`` when no ``best.pt`` was
    chosen) on ``dataset`` and write ``<run_dir>/report.json``. ``model`` holds the last weights
    and is left holding them."""
    best = run_dir / "checkpoints" / "best.pt"
    which = "best" if recipe.report == "best" and best.exists() else "last"
    last_state = None
    if which == "best":
        last_state = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(load_checkpoint(best)["model"])
    try:
        result = evaluate_model(
            model,
            dataset,
            input_size,
            tag_dim,
            flip,
            max_images,
            decode=recipe.decode,
            test_resize=recipe.test_resize,
        )
    finally:
        if last_state is not None:
            model.load_state_dict(last_state)
    record = {
        "checkpoint": which,
        "split": dataset.split,
        "recipe": recipe.name,
        "images": len(dataset) if max_images is None else min(max_images, len(dataset)),
        **{k: float(v) for k, v in result.stats.items()},
    }
    (run_dir / "report.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
