"""The datasets of an entry point's ``dataset`` section, built in one place.

Every entry point that reads data (train, train_supernet, evaluate, export, and through
``experiments.proxy_data`` search, ground_truth, rank_proxies) gets its splits from
:func:`load_datasets`, so the synthetic options, the training split's filter (images with
persons) and the generation under torchrun are the same everywhere.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from bottomup.datasets import SyntheticOptions, build_dataset
from bottomup.datasets.coco_format import KeypointDataset
from posetrain.distributed import DistContext, barrier


def synthetic_options(dataset: DictConfig) -> SyntheticOptions | None:
    """The ``dataset.synthetic`` block as generator options (None: the section has none)."""
    if not dataset.get("synthetic"):
        return None
    return SyntheticOptions(**OmegaConf.to_container(dataset.synthetic, resolve=True))


def load_datasets(
    dataset: DictConfig, ctx: DistContext | None = None
) -> tuple[KeypointDataset, KeypointDataset]:
    """The training split (only images with persons) and the validation split of ``dataset``
    (a section with ``name``, ``root``, ``train_split``, ``val_split`` and optionally
    ``synthetic``). Under torchrun rank 0 generates the synthetic data (once, cached, with a
    progress bar) while the other ranks wait, then read it."""
    ctx = ctx or DistContext()
    synthetic = synthetic_options(dataset)

    def split(name: str, **options) -> KeypointDataset:
        return build_dataset(dataset.name, name, dataset.root, synthetic, **options)

    if ctx.is_main:
        train = split(dataset.train_split, only_with_persons=True)
    barrier(ctx)
    if not ctx.is_main:
        train = split(dataset.train_split, only_with_persons=True, progress=False)
    return train, split(dataset.val_split, progress=False)
