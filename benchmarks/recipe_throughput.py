"""Training throughput (images/s) of a LitePose reproduction recipe on CUDA: 100 real steps.

    .venv/bin/python benchmarks/recipe_throughput.py [--experiment litepose_s_crowdpose]
        [--steps 100] [--workers 8] [--data-root /data/crowdpose]

Runs the trainer (``posetrain.Trainer``) for ``--steps`` steps of ``+experiment=<name>`` as
``experiments.train`` composes it: the release recipe (fp32, batch 16, Adam 4e-3, the release's
augmentation and targets, DataLoader workers), on the real CrowdPose / COCO folder given by
``--data-root`` or else on 400 synthetic 512-px images (generated first, not timed). It reports
images/s over the steps after the first ``--warmup`` and the GPU-hours that rate means for the
recipe's 500-epoch fine-tune of a training split of ``--train-images`` images (CrowdPose
trainval: 12,000).

Needs CUDA: without it, it stops with one line (exit 2). ``--device cpu`` runs the same loop as a
smoke test of the script (a few steps at a small input size), not a measurement. Not run in CI.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

import experiments.train as train_entry
from bottomup.datasets import SyntheticOptions, build_dataset
from bottomup.losses import BottomUpLoss
from bottomup.training_data import TrainingSamples
from experiments.sections import loss_config, recipe_config, trainer_config
from posenets import build_model
from posetrain.distributed import DistContext
from posetrain.trainer import Trainer
from search_space import resolve_arch

CONF = str(Path(train_entry.__file__).parent / "conf")


def compose_recipe(experiment: str, real: bool, overrides: list[str]):
    """The experiment's config as ``experiments.train`` would compose it."""
    extra = [] if real else ["dataset=synthetic", "recipe=release"]
    with initialize_config_dir(CONF, version_base="1.3"):
        return compose("train", [f"+experiment={experiment}", *extra, *overrides])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="litepose_s_crowdpose")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the rate")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--data-root", default=None, help="a real dataset folder")
    parser.add_argument("--train-images", type=int, default=12_000)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run, not a measurement")
    parser.add_argument("--input-size", type=int, default=None, help="smoke runs only")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "recipe_throughput: CUDA is not available here (torch "
            f"{torch.__version__}); this benchmark measures a GPU. --device cpu runs a smoke test",
            file=sys.stderr,
        )
        sys.exit(2)
    smoke = args.device != "cuda"
    overrides = [f"trainer.max_steps={args.steps}", f"trainer.num_workers={args.workers}"]
    overrides += ["trainer.progress=false", f"trainer.log_every={1}"]
    if args.data_root:
        overrides.append(f"dataset.root={args.data_root}")
    cfg = compose_recipe(args.experiment, bool(args.data_root), overrides)
    settings = trainer_config(cfg.trainer)
    recipe = recipe_config(cfg.recipe)
    with tempfile.TemporaryDirectory() as tmp:
        if args.data_root:
            data = build_dataset(
                cfg.dataset.name,
                cfg.dataset.train_split,
                args.data_root,
                only_with_persons=True,
                ignore_mask=cfg.dataset.ignore_mask,
            )
        else:
            options = SyntheticOptions(num_train=64 if smoke else 400, num_val=1, image_size=512)
            data = build_dataset(
                "synthetic", "train", Path(tmp) / "data", options, only_with_persons=True
            )
        arch = resolve_arch(
            cfg.model,
            num_joints=data.keypoint_layout.num_joints,
            **({"input_size": args.input_size} if args.input_size else {}),
        )
        samples = TrainingSamples(
            data, arch.input_size, cfg.tag_dim, settings.seed, recipe.augment, recipe.targets
        )
        torch.manual_seed(settings.seed)
        trainer = Trainer(
            build_model(arch),
            BottomUpLoss(arch.num_joints, loss_config(cfg.loss)),
            samples,
            settings,
            Path(tmp) / "run",
            ctx=DistContext(device=torch.device(args.device)),
        )
        start = time.perf_counter()
        result = trainer.fit()
        if args.device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        with open(Path(tmp) / "run" / "metrics.csv", newline="") as handle:
            rates = [float(r["images_per_s"]) for r in csv.DictReader(handle)]
    steady = rates[args.warmup :] or rates
    rate = len(steady) / sum(1 / r for r in steady)  # images over seconds of those steps
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu (smoke run)"
    print(
        f"{args.experiment}: {arch.input_size} px, batch {settings.batch_size}, "
        f"amp {settings.amp}, {result.steps} steps on {name}, data "
        f"{'real' if args.data_root else 'synthetic'}, {args.workers} workers"
    )
    print(
        f"images/s after {args.warmup} warm-up steps: {rate:.1f} "
        f"(whole run incl. start-up: {result.steps * settings.batch_size / seconds:.1f})"
    )
    samples_total = settings.epochs * args.train_images
    if smoke:
        print("smoke run on the CPU: the loop works; the rate above measures nothing")
        return
    print(
        f"{settings.epochs} epochs x {args.train_images} images = {samples_total / 1e6:.1f} M "
        f"samples: {samples_total / rate / 3600:.1f} GPU-hours at this rate"
    )


if __name__ == "__main__":
    main()
