"""Training samples: a dataset item, augmented and encoded, as a pure function of its key.

The trainer asks for ``(epoch, index, size)``: the sample's augmentation is drawn from
``(seed, epoch, index)`` (so a resumed run sees exactly the same batches, in any worker process),
and ``size`` (None: the default input size) lets a supernet batch pick its own resolution.
``augment`` and ``targets`` choose the recipe (``docs/datasets.md``): posearch's augmentation and
sub-pixel targets (``"centred"``, the defaults) or the LitePose release's (``RELEASE_AUGMENT``,
``"release"``: ``bottomup.release_targets``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from torch.utils.data import Dataset

from bottomup.codec import CodecConfig, HeatmapTagCodec
from bottomup.datasets.coco_format import KeypointDataset
from bottomup.release_targets import encode_release
from bottomup.transforms import AugmentConfig, random_affine
from posecore.errors import SettingError

TARGETS = ("centred", "release")


class TrainingSamples(Dataset):
    def __init__(
        self,
        dataset: KeypointDataset,
        input_size: int,
        tag_dim: int = 1,
        seed: int = 0,
        augment: AugmentConfig | None = None,
        targets: str = "centred",
    ):
        if targets not in TARGETS:
            raise SettingError(f"targets={targets!r}: must be one of {TARGETS}")
        self.targets = targets
        self.dataset = dataset
        self.input_size = input_size
        self.tag_dim = tag_dim
        self.seed = seed
        self.augment = augment or AugmentConfig()
        self.layout = dataset.keypoint_layout

    def __len__(self) -> int:
        return len(self.dataset)

    @lru_cache(maxsize=8)  # noqa: B019 - one codec per resolution, for the dataset's lifetime
    def codec(self, size: int) -> HeatmapTagCodec:
        config = CodecConfig(size, self.layout.num_joints, self.tag_dim)
        return HeatmapTagCodec(config, self.layout)

    def __getitem__(self, key):
        epoch, index, size = key if isinstance(key, tuple) else (0, key, None)
        size = size or self.input_size
        rng = np.random.default_rng([self.seed, epoch, index])
        sample = self.dataset[index]
        warped = random_affine(sample, size, rng, self.layout, self.augment)
        if self.targets == "release":
            codec = self.codec(size)
            encoded = encode_release(
                sample.keypoints,
                sample.ignore_mask,
                warped,
                self.layout,
                size,
                codec.config.sigma,
                codec.config.max_persons,
            )
        else:
            encoded = self.codec(size).encode(warped.keypoints, warped.ignore_mask)
        return {"image": warped.image, **encoded}
