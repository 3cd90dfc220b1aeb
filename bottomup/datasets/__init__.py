"""Datasets: the real COCO / CrowdPose layouts and the embedded synthetic default."""

from bottomup.datasets.coco_format import DatasetError, KeypointDataset
from bottomup.datasets.registry import DATASET_NAMES, build_dataset
from bottomup.datasets.synthetic import SyntheticOptions, ensure_synthetic

__all__ = [
    "DATASET_NAMES",
    "DatasetError",
    "KeypointDataset",
    "SyntheticOptions",
    "build_dataset",
    "ensure_synthetic",
]
