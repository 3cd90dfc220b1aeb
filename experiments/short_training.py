"""One architecture trained from scratch under a fixed short schedule: a ground-truth run.

``experiments.ground_truth`` (in worker processes) and ``experiments.deconv_ablation`` train
their architectures through :func:`train_one`, so a row of either table means the same thing.
"""

from __future__ import annotations

import time

from omegaconf import OmegaConf

from arch_search.ground_truth import Schedule
from arch_search.trained_proxies import ShortTrainProxy
from experiments.proxy_data import proxy_context
from search_space import from_json
from search_space.resolution import ResolutionRule


def train_one(
    config_json: str, seed: int, schedule: dict, rule: dict, dataset: dict, loss: dict
) -> tuple[dict, float]:
    """Train one architecture at its scaled size (``ShortTrainProxy``: the trainer and evaluator
    of ``experiments.train``); its validation AP, AP50 and loss, and the seconds it took. Plain
    arguments (JSON, dicts) so that it can run in a spawned worker process."""
    start = time.perf_counter()
    settings = Schedule(**schedule)
    config = from_json(config_json)  # at its own resolution; the context's rule scales it
    context = proxy_context(
        OmegaConf.create(dataset), ResolutionRule(**rule), seed, OmegaConf.create(loss)
    )
    trainer = ShortTrainProxy(
        steps=settings.steps,
        batch_size=settings.batch_size,
        lr=settings.lr,
        eval_images=settings.eval_images,
        eval_batches=8,
    )
    metrics = trainer.evaluate(trainer.train(config, context), config, context)
    return metrics, time.perf_counter() - start
