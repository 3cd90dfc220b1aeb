"""One factory for every dataset name a command line may give."""

from __future__ import annotations

from pathlib import Path

from bottomup.datasets.cache import FolderNotWritable
from bottomup.datasets.coco_format import DatasetError, KeypointDataset
from bottomup.datasets.synthetic import SyntheticOptions, ensure_synthetic

DATASET_NAMES = ("synthetic", "coco", "crowdpose")


def build_dataset(
    name: str,
    split: str,
    root: str | Path | None = None,
    synthetic: SyntheticOptions | None = None,
    only_with_persons: bool = False,
    progress: bool = True,
    ignore_mask: str = "crowd_and_unlabelled",
) -> KeypointDataset:
    """``synthetic`` generates (once, cached) and loads the embedded default in the layout of
    ``synthetic.layout``; ``coco`` / ``crowdpose`` load a real dataset from ``root``.
    ``ignore_mask``: the loss mask's rule (``KeypointDataset``)."""
    if name == "synthetic":
        options = synthetic or SyntheticOptions()
        folder = synthetic_folder(options, root, progress)
        return KeypointDataset(folder, split, options.layout, only_with_persons, ignore_mask)
    if name in ("coco", "crowdpose"):
        if root is None:
            raise DatasetError(f"dataset={name} needs a root folder (dataset.root=/path/to/{name})")
        return KeypointDataset(root, split, name, only_with_persons, ignore_mask)
    raise DatasetError(f"unknown dataset {name!r}; known datasets: {list(DATASET_NAMES)}")


def synthetic_folder(
    options: SyntheticOptions, root: str | Path | None = None, progress: bool = True
) -> Path:
    """The synthetic dataset of ``options`` under ``root`` (None: the cache), generated on first
    use; a place where it cannot be written is an error naming the setting that chose it,
    ``dataset.root=`` or ``POSEARCH_DATA``."""
    try:
        return ensure_synthetic(options, cache_dir=root, progress=progress)
    except FolderNotWritable as err:
        key = "dataset.root" if root is not None else "POSEARCH_DATA"
        raise DatasetError(
            f"{key}={err.folder}: cannot write the synthetic dataset there ({err.reason}); "
            f"give a writable {key}="
        ) from None
