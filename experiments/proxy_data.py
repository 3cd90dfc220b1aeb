"""The data proxies score with, built from an entry point's ``dataset`` settings.

``experiments.search`` and ``experiments.rank_proxies`` both call :func:`proxy_context`, so a
proxy sees the same calibration batches, training samples, validation images and loss in both.
"""

from __future__ import annotations

from omegaconf import DictConfig

from arch_search.trained_proxies import sample_batches
from bottomup.losses import BottomUpLoss
from bottomup.training_data import TrainingSamples
from evaluators.proxies import ProxyContext
from experiments.data import load_datasets
from experiments.sections import loss_config
from search_space.resolution import IDENTITY, ResolutionRule

CALIBRATION_BATCH = 8


def proxy_context(
    dataset: DictConfig,
    rule: ResolutionRule = IDENTITY,
    seed: int = 0,
    loss: DictConfig | None = None,
    tag_dim: int = 1,
) -> ProxyContext:
    """Training samples, validation dataset, calibration batches and the pose loss; a candidate
    is scored at its resolution gene mapped by ``rule`` (the batches are made at any size)."""
    train, val = load_datasets(dataset)
    samples = TrainingSamples(train, rule.size(256), tag_dim, seed)
    loss_fn = BottomUpLoss(train.keypoint_layout.num_joints, loss_config(loss))
    return ProxyContext(
        batches=lambda size: sample_batches(samples, size, CALIBRATION_BATCH, 0, 1),
        loss_fn=loss_fn,
        seed=seed,
        resolution_rule=rule,
        train_samples=samples,
        val_dataset=val,
    )
