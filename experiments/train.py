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

    python -m experiments.train model=<arch> init=<export folder | checkpoint | supernet checkpoint>
    python -m experiments.train model=<arch> init=<folder> init_mode=partial init_scope=backbone

``init=`` starts from inherited weights instead of random ones (``experiments/starting_weights.py``,
``posenets/inherit.py``): strict by name and shape by default; ``init_mode=partial`` copies what
fits and prints what it copied, sliced and left fresh. A supernet checkpoint gives the ``model=``
member's weights with BN recalibrated, as ``experiments.export supernet=`` writes them.

A rerun resumes only the run its folder holds: the checkpoints store the settings that define it
(``experiments/train_settings.py``) and a rerun that changes one is refused, naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from bottomup.losses import DistillationConfig, DistillationLoss
from evaluators.memory import check_memory
from experiments.cli import fail_clearly
from experiments.data import (
    DatasetSchema,
    dataset_settings,
    load_datasets,
    load_selection_split,
)
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
from experiments.starting_weights import inherit_into
from experiments.train_settings import LAST, check_train_resume, run_settings
from posecore.interrupts import stop_on_signals
from posenets import build_model
from posenets.checkpoint import load_checkpoint
from posenets.inherit import provenance
from posetrain.distillation import DistillationStep, check_teacher, fingerprint, load_teacher
from posetrain.distributed import init_distributed, shutdown
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
    init: str | None = MISSING
    init_mode: str = MISSING
    init_scope: str = MISSING
    init_recalibration_batches: int = MISSING
    dataset: DatasetSchema | None = None  # the groups, typed (experiments.data, .sections)
    trainer: TrainerSchema | None = None  # the group, typed (experiments.sections)
    loss: LossSchema | None = None  # the group, typed (experiments.sections)
    recipe: Any = None  # bottomup.recipe.Recipe's fields (conf/recipe/)


ConfigStore.instance().store(name="train_schema", node=TrainConfig)


def run(cfg: DictConfig) -> None:
    # A rerun with other settings than its run folder's, a wrong model or trainer setting, or a
    # model too large for this machine's memory at this batch size, fails before any data is
    # made and before anything in the folder is written.
    run_identity = run_settings(cfg)
    check_train_resume(cfg, run_identity)
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
    extra_state = {"arch": to_dict(config), "teacher": None, "settings": run_identity}
    # The data it was trained on: experiments.evaluate's default for this checkpoint.
    extra_state["dataset"] = dataset_settings(cfg.dataset)
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
    model = build_model(config)
    extra_state["init"] = _start_from(cfg, model, config, run_dir, ctx.is_main)
    trainer = Trainer(
        model,
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
        if result.best_score is None:  # "best AP None" said nothing of why
            print(
                "no best.pt: dataset.select_split is null (no selection split, as in the "
                f"release's recipe); checkpoints (last.pt) in {run_dir / 'checkpoints'}"
            )
        else:
            print(f"best AP {result.best_score:.4f}; checkpoints in {run_dir / 'checkpoints'}")
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


def _start_from(cfg: DictConfig, model, config, run_dir: Path, report: bool) -> dict:
    """Copy ``init=``'s weights into ``model`` (a fresh run only: a resume restores
    ``last.pt``) and return the provenance record the checkpoints carry; the transfer is printed
    and written whole to ``init.json``."""
    if (run_dir / LAST).exists():
        return load_checkpoint(run_dir / LAST).get("init")
    if not cfg.init:
        return provenance("random", seed=cfg.trainer.seed)
    done, record = inherit_into(
        model,
        config,
        cfg.init,
        cfg.init_mode,
        cfg.init_scope,
        cfg.dataset,
        cfg.init_recalibration_batches,
    )
    if report:
        print(f"init={cfg.init} ({cfg.init_mode}, scope {cfg.init_scope}):")
        print("\n".join(done.summary()))
        (run_dir / "init.json").write_text(
            json.dumps(record | {"tensors": done.as_dict()}, indent=2) + "\n"
        )
    return record


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    with fail_clearly("train"), stop_on_signals():
        run(cfg)


if __name__ == "__main__":
    main()
