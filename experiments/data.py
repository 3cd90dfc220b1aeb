"""The datasets of an entry point's ``dataset`` section, built in one place.

Every entry point that reads data (train, train_supernet, evaluate, export, and through
``experiments.proxy_data`` search, ground_truth, rank_proxies) gets its splits from
:func:`load_datasets`, so the synthetic options, the training split's filter (images with
persons) and the generation under torchrun are the same everywhere.

A dataset section names three splits: ``train_split`` (trained on), ``select_split`` (where
``experiments.train`` picks ``best.pt``; null: no selection) and ``val_split`` (where results are
reported; ``experiments.evaluate`` reads it). ``ignore_mask`` is the loss mask's rule
(``KeypointDataset``), which the recipe group sets per dataset.

The group is typed (:class:`DatasetSchema`, named by every entry point's schema), so
``dataset.synthetic.num_train=many`` or ``dataset.val_split=[a]`` fails when the config is
composed, as ``trainer.lr=fast`` does, instead of deep inside the generator or the loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from bottomup.datasets import SyntheticOptions, build_dataset
from bottomup.datasets.coco_format import KeypointDataset
from experiments.sections import section_dataclass, section_schema
from posecore.errors import SettingError
from posetrain.distributed import DistContext, barrier

SyntheticSchema = section_schema(SyntheticOptions)


@dataclass
class DatasetSchema:
    """The schema of the ``dataset`` group (``conf/dataset/``: its values and their meaning are
    there). Every value is MISSING until the YAML file gives it, as in
    :func:`~experiments.sections.section_schema`: a key left out reads as absent
    (``dataset.get``), and :func:`dataset_settings` leaves it out of what is stored."""

    name: str = MISSING  # synthetic, coco or crowdpose (bottomup.datasets.DATASET_NAMES)
    root: str | None = MISSING
    train_split: str = MISSING
    select_split: str | None = MISSING
    val_split: str = MISSING
    ignore_mask: str = MISSING  # KeypointDataset's rules
    release_ignore_mask: str = MISSING
    synthetic: SyntheticSchema | None = MISSING  # SyntheticOptions' fields


def dataset_settings(dataset: DictConfig) -> dict[str, Any]:
    """The section as plain data, as its YAML gives it: what run settings, checkpoints and
    records store (a key the schema has but the YAML leaves out is dropped, so typing the group
    changed no stored settings and no resume)."""
    given = _given(OmegaConf.to_container(dataset, resolve=True))
    if given.get("synthetic") == {}:  # a real dataset's empty block, stored as before: none
        given["synthetic"] = None
    return given


def _given(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _given(v) for k, v in value.items() if v != MISSING}
    return value


def synthetic_options(dataset: DictConfig) -> SyntheticOptions | None:
    """The ``dataset.synthetic`` block as generator options (None: the section has none; a field
    left out keeps ``SyntheticOptions``' default). A real dataset's block is empty (``{}`` in
    its YAML, so an override into it composes instead of failing inside OmegaConf); a value
    given there would be ignored, so it is refused, naming it."""
    block = dataset.get("synthetic")
    if dataset.get("name") != "synthetic":
        given = sorted(_given(OmegaConf.to_container(block))) if block else []
        if given:
            raise SettingError(
                f"dataset.synthetic.{given[0]} applies only to dataset=synthetic "
                f"({dataset.get('name')} is real data): drop it"
            )
        return None
    if not block:
        return None
    return section_dataclass(SyntheticOptions, block, "dataset.synthetic")


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
        return build_dataset(
            dataset.name, name, dataset.root, synthetic, ignore_mask=ignore_rule(dataset), **options
        )

    if ctx.is_main:
        train = split(dataset.train_split, only_with_persons=True)
    barrier(ctx)
    if not ctx.is_main:
        train = split(dataset.train_split, only_with_persons=True, progress=False)
    return train, split(dataset.val_split, progress=False)


def ignore_rule(dataset: DictConfig) -> str:
    """The section's ignore-mask rule (a section without one: HigherHRNet's)."""
    return dataset.get("ignore_mask") or "crowd_and_unlabelled"


def load_selection_split(dataset: DictConfig) -> KeypointDataset | None:
    """The split ``best.pt`` is chosen on (``dataset.select_split``), None if the section has
    none. The synthetic data is generated by then (``load_datasets`` runs first)."""
    name = dataset.get("select_split")
    if not name:
        return None
    return build_dataset(
        dataset.name,
        name,
        dataset.root,
        synthetic_options(dataset),
        progress=False,
        ignore_mask=ignore_rule(dataset),
    )
