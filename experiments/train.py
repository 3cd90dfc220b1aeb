"""Train any architecture on a dataset, resumably, on one process or under torchrun.

    python -m experiments.train model=litepose_xs dataset=synthetic
    python -m experiments.train model=shrink3 dataset=crowdpose dataset.root=/data/crowdpose
    torchrun --nproc_per_node 8 -m experiments.train model=litepose_s dataset=coco dataset.root=...

The run folder (``run_dir``) holds the resolved config (``.hydra/``), ``metrics.csv``,
``eval.csv``, ``arch.json`` and ``checkpoints/{last,best}.pt``; rerunning the same command resumes
from ``last.pt``. Checkpoints carry the architecture, so ``experiments.evaluate`` and
``experiments.export`` take them directly.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from bottomup.losses import BottomUpLoss
from bottomup.training_data import TrainingSamples
from evaluators.pose_eval import evaluate_model
from experiments.cli import fail_clearly
from experiments.data import load_datasets
from experiments.sections import loss_config, trainer_config
from models import build_model
from search_space import resolve_arch, save_arch, to_dict
from training.distributed import init_distributed, shutdown
from training.interrupts import stop_on_signals
from training.trainer import Trainer


def run(cfg: DictConfig) -> None:
    resolve_arch(cfg.model)  # a wrong model or trainer setting fails before any data is made
    settings = trainer_config(cfg.trainer)
    ctx = init_distributed(cfg.device)
    train_set, val_set = load_datasets(cfg.dataset, ctx)
    overrides = {"num_joints": train_set.keypoint_layout.num_joints, "tag_dim": cfg.tag_dim}
    if cfg.input_size:
        overrides["input_size"] = cfg.input_size
    config = resolve_arch(cfg.model, **overrides)
    run_dir = Path(cfg.run_dir)
    if ctx.is_main:
        save_arch(config, run_dir / "arch.json")

    def evaluate(model):
        ap = evaluate_model(
            model,
            val_set,
            config.input_size,
            config.tag_dim,
            flip=cfg.eval_flip,
            max_images=cfg.eval_max_images,
        )
        return ap.stats

    # The process starts from a random torch seed: draw the initial weights from ours, before
    # the trainer exists (it seeds torch only after it was handed the built model).
    torch.manual_seed(settings.seed)
    trainer = Trainer(
        build_model(config),
        BottomUpLoss(config.num_joints, loss_config(cfg.loss)),
        TrainingSamples(train_set, config.input_size, config.tag_dim, settings.seed),
        settings,
        run_dir,
        ctx=ctx,
        evaluate=evaluate,
        extra_state={"arch": to_dict(config)},
    )
    result = trainer.fit()
    if ctx.is_main:
        for record in result.history:
            print(
                f"step {record['step']:6d}  epoch {record['epoch']:3d}  AP {record['AP']:.4f}  "
                f"AP50 {record['AP50']:.4f}"
            )
        print(f"best AP {result.best_score}; checkpoints in {run_dir / 'checkpoints'}")
    shutdown(ctx)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    with fail_clearly("train"), stop_on_signals():
        run(cfg)


if __name__ == "__main__":
    main()
