"""What the entry points do differently for the bottom-up and the top-down families, in one place.

A bottom-up network (LitePose, HigherHRNet) sees whole images and returns heatmaps and tags; a
top-down one (``search_space.topdown``) sees one person crop and returns heatmaps. So they differ
in the top-level fields an entry point sets (a top-down config has no ``tag_dim``), in the
training samples, the loss and the AP hook (``training_parts``), and in what a test-time input is
(``calibration_inputs``, for INT8 calibration). Everything else (the trainer, checkpoints, export,
latency) is shared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from torch import nn
from torch.utils.data import Dataset

from bottomup.datasets.coco_format import KeypointDataset
from bottomup.losses import BottomUpLoss, LossConfig
from bottomup.recipe import Recipe
from bottomup.training_data import TrainingSamples
from bottomup.transforms import resize_for_test
from evaluators.pose_eval import ap_evaluator
from evaluators.topdown_eval import topdown_ap_evaluator
from posecore.errors import SettingError
from search_space import ArchConfig, resolve_arch
from search_space.topdown import TopDownConfig
from topdown.boxes import ground_truth_boxes
from topdown.losses import TopDownLoss
from topdown.predict import crop_batch
from topdown.training_data import PersonCrops

BOTTOM_UP_ONLY = ("tag_dim",)  # top-level fields a top-down config does not have


def is_topdown(config: Any) -> bool:
    return isinstance(config, TopDownConfig)


def arch_with(name_or_path: str, **overrides) -> ArchConfig:
    """``resolve_arch`` with the top-level fields an entry point sets, those of the bottom-up
    families (``tag_dim``) dropped for a top-down architecture."""
    if is_topdown(resolve_arch(name_or_path)):
        overrides = {k: v for k, v in overrides.items() if k not in BOTTOM_UP_ONLY}
    return resolve_arch(name_or_path, **overrides)


def refuse_for_topdown(config: ArchConfig, what: str) -> None:
    """A bottom-up-only option given with a top-down architecture."""
    if is_topdown(config):
        raise SettingError(f"{what} is for the bottom-up families; this model is top-down")


class TrainingParts(NamedTuple):
    samples: Dataset
    loss_fn: nn.Module
    evaluate: Callable[[nn.Module], dict[str, float]] | None


def training_parts(
    config: ArchConfig, train_set: KeypointDataset, val_set: KeypointDataset, losses: LossConfig,
    seed: int, eval_flip: bool, eval_max_images: int | None, recipe: Recipe | None = None,
) -> TrainingParts:  # fmt: skip
    """The training samples, the loss and the trainer's AP hook of ``config``'s family.
    ``val_set``: the split the AP hook reads (None: no hook); ``recipe``: the bottom-up
    family's augmentation, targets, test resize and decoding (None: posearch's)."""
    if is_topdown(config):
        return TrainingParts(
            PersonCrops(train_set, config, seed),
            TopDownLoss(losses.foreground_weight),
            None if val_set is None
            else topdown_ap_evaluator(val_set, config, eval_flip, eval_max_images),
        )  # fmt: skip
    recipe = recipe or Recipe()
    return TrainingParts(
        TrainingSamples(
            train_set, config.input_size, config.tag_dim, seed, recipe.augment, recipe.targets
        ),
        BottomUpLoss(config.num_joints, losses),
        None if val_set is None else ap_evaluator(
            val_set, config.input_size, config.tag_dim, eval_flip, eval_max_images,
            recipe.decode, recipe.test_resize,
        ),
    )  # fmt: skip


def calibration_inputs(
    config: ArchConfig, dataset: KeypointDataset, count: int
) -> list[np.ndarray]:
    """``count`` test-time inputs ``(3, H, W)`` from images spread evenly over ``dataset``:
    whole images resized as at test time, or (top-down) ground-truth person crops."""
    picks = np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().astype(int)
    if not is_topdown(config):
        return [resize_for_test(dataset[int(i)].image, config.input_size)[0].numpy()
                for i in picks]  # fmt: skip
    inputs = []
    for i in picks:
        image_id = dataset.image_ids[int(i)]
        boxes = ground_truth_boxes(dataset.coco, [image_id])[:1]
        if boxes:
            crops, _, _ = crop_batch(dataset.load_image(image_id), boxes, config.input_size)
            inputs.append(crops[0].numpy())
    return inputs
