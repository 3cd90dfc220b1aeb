"""Train any architecture on a dataset, resumably, on one process or under torchrun.

    python -m experiments.train model=litepose_xs dataset=synthetic
    python -m experiments.train model=shrink3 dataset=crowdpose dataset.root=/data/crowdpose
    torchrun --nproc_per_node 8 -m experiments.train model=litepose_s dataset=coco dataset.root=...

The run folder (``run_dir``) holds the resolved config (``.hydra/``), ``metrics.csv``,
``eval.csv``, ``arch.json`` and ``checkpoints/{last,best}.pt``; rerunning the same command resumes
from ``last.pt``. Checkpoints carry the architecture, so ``experiments.evaluate`` and
``experiments.export`` take them directly.

    python -m experiments.train +experiment=demo teacher=<run>/checkpoints/best.pt

``teacher=`` (a checkpoint of this command or a standalone folder) adds heatmap and tag
distillation from that fixed network (``posetrain/distillation.py``, ``docs/training.md``).

``recipe=`` (``conf/recipe/``; default: ``release`` for CrowdPose and COCO, ``posearch`` for the
synthetic data) sets the augmentation, targets, test resize, decoding, schedule and reported
checkpoint (``docs/datasets.md``). ``best.pt`` is chosen on ``dataset.select_split`` (none: no
selection); when ``dataset.val_split`` is another split, the recipe's checkpoint is evaluated
there after training and written to ``report.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from bottomup.losses import DistillationConfig, DistillationLoss
from evaluators.memory import check_memory
from experiments.cli import fail_clearly
from experiments.data import load_datasets, load_selection_split
from experiments.families import arch_with, refuse_for_topdown, training_parts
from experiments.report import report
from experiments.sections import (
    LossSchema,
    TrainerSchema,
    loss_config,
    recipe_config,
    section_dataclass,
    trainer_config,
)
from posenets import build_model
from posetrain.distillation import DistillationStep, check_teacher, fingerprint, load_teacher
from posetrain.distributed import init_distributed, shutdown
from posetrain.interrupts import stop_on_signals
from posetrain.trainer import Trainer
from search_space import resolve_arch, save_arch, to_dict


@dataclass
class TrainConfig:
    """The schema of ``conf/train.yaml`` (its values and their meaning are there): an unknown key
    or a wrongly typed value fails when the config is composed, before anything runs."""

    model: str = MISSING
    input_size: int | None = MISSING
    tag_dim: int = MISSING
    run_dir: str = MISSING
    device: str = MISSING
    eval_flip: bool = MISSING
    eval_max_images: int | None = MISSING
    teacher: str | None = MISSING
    distill: dict[str, Any] = MISSING  # bottomup.losses.DistillationConfig's fields
    dataset: Any = None  # the config groups; their sections are read by experiments.sections
    trainer: TrainerSchema | None = None  # the group, typed (experiments.sections)
    loss: LossSchema | None = None  # the group, typed (experiments.sections)
    recipe: Any = None  # bottomup.recipe.Recipe's fields (conf/recipe/)


ConfigStore.instance().store(name="train_schema", node=TrainConfig)


def run(cfg: DictConfig) -> None:
    # A wrong model or trainer setting, or a model too large for this machine's memory at this
    # batch size, fails before any data is made.
    sized = {"input_size": cfg.input_size} if cfg.input_size else {}
    settings = trainer_config(cfg.trainer)
    recipe = recipe_config(cfg.get("recipe"))
    check_memory(resolve_arch(cfg.model, **sized), "train", settings.batch_size, training=True)
    distill = teacher = None
    if cfg.teacher:  # a wrong teacher file or weight fails before any data is made too
        refuse_for_topdown(resolve_arch(cfg.model), "teacher= (distillation)")
        distill = section_dataclass(DistillationConfig, cfg.distill, "distill")
        teacher, teacher_config = load_teacher(cfg.teacher)
    ctx = init_distributed(cfg.device)
    train_set, val_set = load_datasets(cfg.dataset, ctx)
    overrides = {"num_joints": train_set.keypoint_layout.num_joints, "tag_dim": cfg.tag_dim}
    if cfg.input_size:
        overrides["input_size"] = cfg.input_size
    config = arch_with(cfg.model, **overrides)  # a top-down config has no tag_dim
    run_dir = Path(cfg.run_dir)
    if ctx.is_main:
        save_arch(config, run_dir / "arch.json")

    select_set = load_selection_split(cfg.dataset)
    losses = loss_config(cfg.loss)
    samples, loss_fn, evaluate = training_parts(  # the family's samples, loss and AP
        config, train_set, select_set, losses, settings.seed, cfg.eval_flip, cfg.eval_max_images,
        recipe,
    )  # fmt: skip
    extra_state = {"arch": to_dict(config), "teacher": None}
    # The data it was trained on: experiments.evaluate's default for this checkpoint.
    extra_state["dataset"] = OmegaConf.to_container(cfg.dataset, resolve=True)
    step = None
    if teacher is not None:
        check_teacher(cfg.teacher, teacher_config, config)
        # A resume must see the same teacher and weights (Trainer refuses others).
        extra_state["teacher"] = fingerprint(teacher, teacher_config) | {
            "distill": [distill.heatmap_weight, distill.tag_weight]
        }
        extra_state["teacher_path"] = str(cfg.teacher)
        step = DistillationStep(
            loss_fn,
            DistillationLoss(config.num_joints, distill, losses.foreground_weight),
            teacher,
            teacher_config.input_size,
            config.input_size,
            amp=settings.amp,
        )
    # The process starts from a random torch seed: draw the initial weights from ours, before
    # the trainer exists (it seeds torch only after it was handed the built model).
    torch.manual_seed(settings.seed)
    trainer = Trainer(
        build_model(config),
        loss_fn,
        samples,
        settings,
        run_dir,
        ctx=ctx,
        evaluate=evaluate,
        extra_state=extra_state,
        step=step,
        resume_must_match=("teacher",),
    )
    result = trainer.fit()
    if ctx.is_main:
        for record in result.history:
            print(
                f"step {record['step']:6d}  epoch {record['epoch']:3d}  AP {record['AP']:.4f}  "
                f"AP50 {record['AP50']:.4f}"
            )
        print(f"best AP {result.best_score}; checkpoints in {run_dir / 'checkpoints'}")
        if cfg.dataset.get("select_split") != cfg.dataset.val_split:
            hook = training_parts(
                config, train_set, val_set, losses, settings.seed, cfg.eval_flip,
                cfg.eval_max_images, recipe,
            ).evaluate  # fmt: skip
            record = report(trainer.model, run_dir, recipe.report, hook, val_set.split, recipe.name)
            print(
                f"reported ({record['checkpoint']} checkpoint, {record['split']}): "
                f"AP {record['AP']:.4f}  AP50 {record['AP50']:.4f}; in {run_dir / 'report.json'}"
            )
    shutdown(ctx)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    with fail_clearly("train"), stop_on_signals():
        run(cfg)


if __name__ == "__main__":
    main()
