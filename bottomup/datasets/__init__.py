"""Datasets: the real COCO / CrowdPose folder layouts and the embedded synthetic default.

``build_dataset(name, split, root=..., synthetic=...)`` is the one entry point commands use;
``KeypointDataset`` reads any COCO-format keypoint file in either layout; ``ensure_synthetic``
generates (once, cached, atomically) the synthetic data in those same layouts. See
docs/datasets.md.
"""

from bottomup.datasets.coco_format import FOLDER_LAYOUTS, DatasetError, KeypointDataset
from bottomup.datasets.registry import DATASET_NAMES, build_dataset
from bottomup.datasets.synthetic import (
    SyntheticOptions,
    default_cache_dir,
    ensure_synthetic,
    generate,
)

__all__ = [
    "DATASET_NAMES",
    "FOLDER_LAYOUTS",
    "DatasetError",
    "KeypointDataset",
    "SyntheticOptions",
    "build_dataset",
    "default_cache_dir",
    "ensure_synthetic",
    "generate",
]
