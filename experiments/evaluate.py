"""Evaluate a trained model (a checkpoint or a standalone folder) on a dataset's validation split.

    python -m experiments.evaluate checkpoint=outputs/train/litepose_xs/checkpoints/best.pt
    python -m experiments.evaluate checkpoint=exports/S dataset=crowdpose dataset.root=/data/cp
    python -m experiments.evaluate checkpoint=... flip=false format=json
    python -m experiments.evaluate checkpoint=... decode.adjust=dark decode.score=grouped

A training checkpoint carries the data it was trained on (``dataset``), and is scored on it unless
``dataset=...`` (or any ``dataset.<key>=``) says otherwise; ``arch=`` and standalone folders use
``dataset`` (synthetic by default). Prints the AP table (or one JSON object with
``format=json``). ``decode.*`` are the fields of ``bottomup.codec.DecodeOptions`` (``refine``,
``adjust``: quarter / dark / none, ``score``: refined / grouped; ``docs/codec.md``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import MISSING, DictConfig, OmegaConf

from bottomup.codec import DecodeOptions
from evaluators.memory import check_memory
from evaluators.pose_eval import evaluate_model
from evaluators.topdown_eval import evaluate_topdown
from experiments.cli import fail_clearly
from experiments.data import DatasetSchema, load_datasets
from experiments.families import is_topdown
from experiments.sections import section_dataclass
from posecore.errors import SettingError
from posenets import build_model
from posenets.io import load_standalone_state
from search_space import resolve_arch


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
    test_resize: str = MISSING  # bottomup.transforms.inference_geometry's modes
    boxes: str | None = None  # top-down models: a COCO-format detection file (None: GT boxes)
    dataset: DatasetSchema | None = None  # the group, typed (experiments.data)


ConfigStore.instance().store(name="evaluate_schema", node=EvaluateConfig)


def run(cfg: DictConfig) -> dict:
    # The model first: a missing or refused file, or a wrong arch, should not wait for data.
    if not cfg.checkpoint and not cfg.arch:
        raise SettingError("give checkpoint=<file or folder> or arch=<preset or arch file>")
    if cfg.max_images is not None and cfg.max_images < 1:
        raise SettingError(
            f"max_images={cfg.max_images}: must be >= 1 (or null for the whole split); an AP "
            "of no images is no score"
        )
    if cfg.input_size is not None and cfg.input_size < 1:
        raise SettingError(f"input_size={cfg.input_size}: must be >= 1 (or null)")
    decode = decode_options(cfg.decode)
    loaded = load_standalone_state(cfg.checkpoint) if cfg.checkpoint else None
    dataset = cfg.dataset
    if loaded and loaded[2].get("dataset") and not _dataset_given():
        # A training checkpoint carries its data: score it there unless dataset= says otherwise
        # (the demo's checkpoint scored 0.0002 on the default data instead of 0.0512 on its own).
        dataset = OmegaConf.create(loaded[2]["dataset"])
        print(
            f"evaluating on the data it was trained on (dataset {dataset.get('name')}); give "
            "dataset=... for another",
            file=sys.stderr,
        )
    if not loaded:
        # As export does: refuse a network this machine cannot hold before building it.
        check_memory(resolve_arch(cfg.arch), "evaluate")
    _, val_set = load_datasets(dataset)
    if loaded:
        model, config, _ = loaded
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
            progress=cfg.format == "table", decode=decode, test_resize=cfg.test_resize,
        )  # fmt: skip
    if cfg.format == "json":
        print(json.dumps(ap.json_stats()))
    else:
        print(ap.table())
    return ap.stats


def _dataset_given() -> bool:
    """Whether the command line chose the data (``dataset=...`` or any ``dataset.<key>=...``)."""
    if not HydraConfig.initialized():
        return True  # called as a library: the caller's config says it all
    overrides = HydraConfig.get().overrides.task
    return any(o.lstrip("+~").split("=")[0].split(".")[0] == "dataset" for o in overrides)


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
