"""One architecture of either family trained under a fixed short schedule, and its AP.

The ground truth's ``experiments.short_training.train_one`` trains bottom-up members through
``ShortTrainProxy`` at a resolution gene mapped onto the demo data; the top-down comparisons
(``experiments.deconv_ablation`` on a top-down preset, ``benchmarks/topdown_vs_bottomup.py``)
need the same short schedule for a top-down member too, and for a bottom-up member at its own
input size. Both go through ``experiments.families.training_parts`` (the family's samples and
loss, as ``experiments.train`` uses them) and the one ``Trainer``, so "the same schedule" is
literally the same settings: ``schedule.steps`` batches of ``schedule.batch_size`` items (images
for bottom-up, person crops for top-down), Adam at ``schedule.lr`` with a cosine decay, no AMP.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from arch_search.ground_truth import Schedule
from bottomup.datasets.coco_format import KeypointDataset
from bottomup.losses import LossConfig
from evaluators.pose_eval import evaluate_model
from evaluators.topdown_eval import evaluate_topdown
from experiments.families import is_topdown, training_parts
from posenets import build_model
from posetrain.trainer import Trainer, short_schedule
from search_space.config import ArchConfig


def train_short(
    config: ArchConfig,
    train_set: KeypointDataset,
    schedule: Schedule,
    seed: int,
    losses: LossConfig | None = None,
) -> nn.Module:
    """``config`` trained from seeded random weights for ``schedule.steps`` batches of its
    family's samples (``training_parts``); returns the trained model (eval mode)."""
    parts = training_parts(config, train_set, None, losses or LossConfig(), seed, False, None)
    torch.manual_seed(seed)
    model = build_model(config)
    settings = short_schedule(
        schedule.steps, schedule.batch_size, schedule.lr, seed, len(parts.samples)
    )
    with tempfile.TemporaryDirectory(prefix="family_train_") as run_dir:
        trainer = Trainer(model, parts.loss_fn, parts.samples, settings, Path(run_dir))
        trainer.fit()
    return trainer.model.eval()


def validation_ap(
    model: nn.Module, config: ArchConfig, dataset: KeypointDataset, max_images: int | None
) -> dict[str, float]:
    """AP and AP50 without the flip test (what the latency measurements run): a top-down
    model on the ground-truth boxes, a bottom-up one at its input size."""
    if is_topdown(config):
        stats = evaluate_topdown(model, dataset, config, False, max_images).stats
    else:
        stats = evaluate_model(model, dataset, config.input_size, config.tag_dim, False,
                               max_images).stats  # fmt: skip
    return {"AP": float(stats["AP"]), "AP50": float(stats["AP50"])}
