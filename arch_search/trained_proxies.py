"""Proxies that look at trained weights: a short training run, or a trained supernet.

They join the zero-cost proxies in ``evaluators.proxies``' registry (which imports this module
on first use, so they are listed whatever the caller imported) but live here, above ``posetrain``
and ``supernet`` in the data flow, because they train or load trained weights. Both score on
``context.val_dataset`` with the real decoder and evaluator, so their numbers are what a search
would otherwise need full training for:

* ``short_train``: the candidate trained from scratch for ``steps`` batches of
  ``context.train_samples`` with the standard ``Trainer`` (same loss, optimiser and augmentation
  as a real run), then its validation AP (``metric="AP"``) or negative validation pose loss
  (``metric="loss"``, smoother when the AP of so short a run is still near 0).
* ``supernet``: the candidate exported from a trained supernet checkpoint (exact weights), its
  BN statistics recalibrated on a few training batches, then its validation AP or negative loss
  (LitePose's search scores candidates this way). The checkpoint's stored space (``self.space``)
  is the space it scores: a candidate outside it is refused with the gene and its allowed values;
  ``experiments.search`` searches that space.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from bottomup.training_data import TrainingSamples
from evaluators.pose_eval import evaluate_model
from evaluators.proxies import Proxy, ProxyContext, register_proxy
from posecore.errors import SettingError
from posenets import build_model
from posenets.inherit import provenance
from posetrain.trainer import Trainer, short_schedule
from search_space.config import ArchConfig
from search_space.errors import ArchConfigError
from supernet.checkpoint import open_supernet
from supernet.recalibrate import export_recalibrated

METRICS = ("AP", "loss")
# Validation samples are keyed far from any training epoch, so their augmentation never
# coincides with one the model was trained on.
VALIDATION_EPOCH = 10**6


def _require(context: ProxyContext, proxy: str, *names: str) -> None:
    missing = [n for n in names if getattr(context, n) is None]
    if missing:
        raise ValueError(
            f"proxy {proxy!r} needs context.{' and context.'.join(missing)} (training samples "
            "and a validation dataset); experiments.search and experiments.rank_proxies build "
            "them from their dataset settings"
        )


def sample_batches(
    samples, size: int, batch_size: int, epoch: int, count: int
) -> Iterator[dict[str, Tensor]]:
    """``count`` batches of ``samples`` at ``size``, keyed (epoch, index, size): deterministic."""
    keys = [(epoch, i % len(samples), size) for i in range(count * batch_size)]
    loader = DataLoader(samples, batch_size=batch_size, sampler=keys, num_workers=0)
    return iter(loader)


class _ScoredOnValidation(Proxy):
    """Shared scoring: validation AP or negative validation loss of a ready model."""

    needs_data = True

    def __init__(self, metric: str = "AP", eval_images: int = 40, eval_batches: int = 4):
        if metric not in METRICS:
            raise SettingError(f"proxy {self.name!r}: metric={metric!r} must be one of {METRICS}")
        self.metric = metric
        self.eval_images = eval_images
        self.eval_batches = eval_batches

    def _size(self, config: ArchConfig, context: ProxyContext) -> int:
        return context.scored_size(config)

    def evaluate(self, model: nn.Module, config: ArchConfig, context: ProxyContext) -> dict:
        """Both numbers (AP, AP50 and the mean validation loss), for tables."""
        return {**self._ap(model, config, context), "loss": self._val_loss(model, config, context)}

    def _score(self, model: nn.Module, config: ArchConfig, context: ProxyContext) -> float:
        if self.metric == "AP":
            return self._ap(model, config, context)["AP"]
        return -self._val_loss(model, config, context)

    def _ap(self, model: nn.Module, config: ArchConfig, context: ProxyContext) -> dict:
        size = self._size(config, context)
        stats = evaluate_model(
            model.eval(), context.val_dataset, size, config.tag_dim, False, self.eval_images
        ).stats
        return {"AP": float(stats["AP"]), "AP50": float(stats["AP50"])}

    @torch.no_grad()
    def _val_loss(self, model: nn.Module, config: ArchConfig, context: ProxyContext) -> float:
        size = self._size(config, context)
        train = context.train_samples
        samples = TrainingSamples(
            context.val_dataset, size, train.tag_dim, train.seed, train.augment
        )
        device = next(model.parameters()).device
        model.eval()
        losses = []
        for batch in sample_batches(samples, size, 8, VALIDATION_EPOCH, self.eval_batches):
            batch = {k: v.to(device) for k, v in batch.items()}
            image = batch.pop("image")
            losses.append(float(context.loss_fn(model(image), batch)["loss"]))
        return sum(losses) / len(losses)


@register_proxy
class ShortTrainProxy(_ScoredOnValidation):
    name, cost = "short_train", "a short training run (minutes on CPU)"

    def __init__(
        self,
        steps: int = 60,
        batch_size: int = 8,
        lr: float = 4e-3,
        metric: str = "loss",
        eval_images: int = 40,
        eval_batches: int = 4,
    ):
        super().__init__(metric, eval_images, eval_batches)
        self.steps, self.batch_size, self.lr = steps, batch_size, lr

    def train(self, config: ArchConfig, context: ProxyContext) -> nn.Module:
        """The candidate after ``steps`` batches, trained as ``experiments.train`` would."""
        _require(context, self.name, "train_samples", "val_dataset", "loss_fn")
        size = self._size(config, context)
        settings = short_schedule(
            self.steps, self.batch_size, self.lr, context.seed, len(context.train_samples)
        )
        torch.manual_seed(context.seed)
        model = build_model(config)
        with tempfile.TemporaryDirectory(prefix="short_train_") as run_dir:
            trainer = Trainer(
                model,
                context.loss_fn,
                context.train_samples,
                settings,
                Path(run_dir),
                batch_extra=lambda _epoch, _batch: size,
            )
            trainer.fit()
        return trainer.model

    def score(self, config, context):
        return self._score(self.train(config, context), config, context)


@register_proxy
class SupernetProxy(_ScoredOnValidation):
    name, cost = "supernet", "export + BN recalibration + evaluation (seconds)"

    def __init__(
        self,
        checkpoint: str | None = None,
        recalibration_batches: int = 8,
        batch_size: int = 8,
        metric: str = "AP",
        eval_images: int = 40,
        eval_batches: int = 4,
    ):
        super().__init__(metric, eval_images, eval_batches)
        if not checkpoint:
            raise SettingError(
                "proxy 'supernet' needs checkpoint=<supernet checkpoint> (from "
                "python -m experiments.train_supernet)"
            )
        loaded = open_supernet(checkpoint)
        self.checkpoint = checkpoint  # what exports name as their weights' origin
        self.supernet = loaded.net.eval()
        self.space = loaded.space  # None: a checkpoint from before spaces were stored
        self._loaded = loaded
        self.recalibration_batches = recalibration_batches
        self.batch_size = batch_size

    def exported_model(self, config: ArchConfig, context: ProxyContext):
        """The subnet with the supernet's weights and recalibrated BN: what was scored."""
        origin = provenance(
            "supernet", self.checkpoint, recalibration_batches=self.recalibration_batches
        )
        return self.subnet(config, context), origin

    def subnet(self, config: ArchConfig, context: ProxyContext) -> nn.Module:
        """The candidate's weights from the supernet, BN statistics recalibrated."""
        _require(context, self.name, "train_samples", "val_dataset", "loss_fn")
        size = self._size(config, context)
        self._check_member(config, size, context)
        batches = sample_batches(
            context.train_samples, size, self.batch_size, 0, self.recalibration_batches
        )
        images = [batch["image"] for batch in batches]
        return export_recalibrated(self.supernet, config, images, context.device)

    def _check_member(self, config: ArchConfig, size: int, context: ProxyContext) -> None:
        """The network scored (``config`` at ``size``) must be in the checkpoint's space; a
        size it was not trained at is refused with the resolution gene and the rule named."""
        scored = dataclasses.replace(config, input_size=size)
        try:
            self._loaded.check_member(scored)
        except ArchConfigError as error:
            if error.path != "resolution" or size == config.input_size:
                raise
            raise ArchConfigError(
                "resolution",
                config.input_size,
                f"is scored at {size} px ({context.resolution_rule.describe()}), and the "
                f"supernet was trained at {self.space.resolutions}",
            ) from None

    def score(self, config, context):
        return self._score(self.subnet(config, context), config, context)
