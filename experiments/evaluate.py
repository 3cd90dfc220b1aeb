"""Evaluate a trained model (a checkpoint or a standalone folder) on a dataset's validation split.

    python -m experiments.evaluate checkpoint=outputs/train/litepose_xs/checkpoints/best.pt
    python -m experiments.evaluate checkpoint=exports/S dataset=crowdpose dataset.root=/data/cp
    python -m experiments.evaluate checkpoint=... flip=false format=json
    python -m experiments.evaluate checkpoint=... decode.adjust=dark decode.score=grouped

Prints the AP table (or one JSON object with ``format=json``). ``decode.*`` are the fields of
``bottomup.codec.DecodeOptions`` (``refine``, ``adjust``: quarter / dark / none, ``score``:
refined / grouped; ``docs/codec.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from bottomup.codec import DecodeOptions
from evaluators.pose_eval import evaluate_model
from evaluators.topdown_eval import evaluate_topdown
from experiments.cli import fail_clearly
from experiments.data import load_datasets
from experiments.families import is_topdown
from experiments.sections import section_dataclass
from posenets import build_model
from posenets.io import load_standalone
from search_space import resolve_arch
from search_space.errors import SettingError


@dataclass
class EvaluateConfig:
    """The schema of ``conf/evaluate.yaml`` (its values and their meaning are there): an unknown
    key or a wrongly typed value fails when the config is composed."""

    checkpoint: str | None = MISSING
    arch: str | None = MISSING
    input_size: int | None = MISSING
    flip: bool = MISSING
    max_images: int | None = MISSING
    format: str = MISSING
    decode: dict[str, Any] = MISSING  # bottomup.codec.DecodeOptions' fields
    boxes: str | None = None  # top-down models: a COCO-format detection file (None: GT boxes)
    dataset: Any = None  # the config group


ConfigStore.instance().store(name="evaluate_schema", node=EvaluateConfig)


def run(cfg: DictConfig) -> dict:
    # The model first: a missing or refused file, or a wrong arch, should not wait for data.
    if not cfg.checkpoint and not cfg.arch:
        raise SettingError("give checkpoint=<file or folder> or arch=<preset or arch file>")
    decode = decode_options(cfg.decode)
    loaded = load_standalone(cfg.checkpoint) if cfg.checkpoint else None
    if not loaded:
        resolve_arch(cfg.arch)
    _, val_set = load_datasets(cfg.dataset)
    if loaded:
        model, config = loaded
    else:
        config = resolve_arch(cfg.arch, num_joints=val_set.keypoint_layout.num_joints)
        model = build_model(config)
    if config.num_joints != val_set.keypoint_layout.num_joints:
        raise SettingError(
            f"the model predicts {config.num_joints} joints, the dataset has "
            f"{val_set.keypoint_layout.num_joints} ({val_set.keypoint_layout.name})"
        )
    size = cfg.input_size or config.input_size
    if is_topdown(config):  # person crops from boxes (docs/topdown.md); decode.* is bottom-up's
        ap = evaluate_topdown(model, val_set, config, cfg.flip, cfg.max_images, cfg.boxes)
    else:
        ap = evaluate_model(
            model, val_set, size, config.tag_dim, cfg.flip, cfg.max_images,
            progress=cfg.format == "table", decode=decode,
        )  # fmt: skip
    if cfg.format == "json":
        print(json.dumps(ap.stats))
    else:
        print(ap.table())
    return ap.stats


def decode_options(cfg: DictConfig) -> DecodeOptions:
    """The ``decode`` section as ``DecodeOptions``; an unknown key or value names ``decode.``."""
    try:
        return section_dataclass(DecodeOptions, cfg, "decode")
    except SettingError as err:
        raise SettingError(f"decode: {err}") from None


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    with fail_clearly("evaluate"):
        run(cfg)


if __name__ == "__main__":
    main()
