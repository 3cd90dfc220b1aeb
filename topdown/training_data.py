"""Top-down training samples: one person crop, augmented, with its heatmap targets, as a pure
function of the key ``(epoch, index, extra)`` (``bottomup.training_data`` says why).

An item is one labelled person of the dataset (``topdown.boxes.labelled_persons``), cropped from
its ground-truth box. Augmentation follows SimpleBaseline / HRNet: the region scaled by
``clip(1 + 0.35 n, 0.65, 1.35)``, rotated by ``clip(45 n, -90, 90)`` degrees with probability 0.6,
mirrored with probability 0.5 (left and right joints swapped); joints that leave the crop get
weight 0. HRNet's half-body augmentation is not done.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from bottomup.datasets.coco_format import KeypointDataset
from bottomup.transforms import normalise, transform_keypoints, warp_image
from search_space.topdown import TopDownConfig
from topdown.boxes import labelled_persons
from topdown.crops import box_region, crop_matrix
from topdown.targets import SIGMA, heatmap_targets


@dataclass(frozen=True)
class CropAugment:
    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_probability: float = 0.6
    flip_probability: float = 0.5

    def draw(self, rng: np.random.Generator) -> tuple[float, float, bool]:
        """(scale, rotation in degrees, flip) of one sample."""
        sf, rf = self.scale_factor, self.rotation_factor
        scale = float(np.clip(1 + sf * rng.standard_normal(), 1 - sf, 1 + sf))
        rotation = float(np.clip(rf * rng.standard_normal(), -2 * rf, 2 * rf))
        if rng.random() >= self.rotation_probability:
            rotation = 0.0
        return scale, rotation, bool(rng.random() < self.flip_probability)


NO_AUGMENT = CropAugment(0.0, 0.0, 0.0, 0.0)


class PersonCrops(Dataset):
    """``{"image": (3, h, w), "heatmaps": (K, h/s, w/s), "weights": (K,)}`` per person."""

    def __init__(
        self,
        dataset: KeypointDataset,
        config: TopDownConfig,
        seed: int = 0,
        augment: CropAugment | None = None,
        sigma: float = SIGMA,
    ):
        self.dataset = dataset
        self.config = config
        self.seed = seed
        self.augment = CropAugment() if augment is None else augment
        self.sigma = sigma
        self.layout = dataset.keypoint_layout
        self.persons = [
            (image_id, ann)
            for image_id in dataset.image_ids
            for ann in labelled_persons(dataset.coco, image_id)
        ]

    def __len__(self) -> int:
        return len(self.persons)

    def __getitem__(self, key):
        epoch, index, _ = key if isinstance(key, tuple) else (0, key, None)
        rng = np.random.default_rng([self.seed, epoch, index])
        image_id, ann = self.persons[index]
        scale, rotation, flip = self.augment.draw(rng)
        size = self.config.input_size
        matrix = crop_matrix(box_region(ann["bbox"], size), size, rotation, 1 / scale, flip)
        k = self.layout.num_joints
        joints = np.asarray(ann["keypoints"], dtype=np.float32).reshape(1, k, 3)
        if flip:
            joints = joints[:, list(self.layout.flip_index)]
        moved = transform_keypoints(joints, matrix, (size[1], size[0]))[0]
        heatmaps, weights = heatmap_targets(
            moved, self.config.heatmap_size, self.config.output_stride, self.layout, self.sigma
        )
        crop = warp_image(self.dataset.load_image(image_id), matrix, (size[1], size[0]))
        return {
            "image": normalise(crop),
            "heatmaps": torch.from_numpy(heatmaps),
            "weights": torch.from_numpy(weights),
        }
