"""Train the weight-sharing LitePose supernet, then report its subnets' AP with and without BN
recalibration.

    python -m experiments.train_supernet                         # synthetic data, the full space
    python -m experiments.train_supernet +experiment=supernet_demo   # a few minutes on a CPU
    python -m experiments.train_supernet dataset=crowdpose dataset.root=/data/crowdpose
    torchrun --nproc_per_node 8 -m experiments.train_supernet dataset=coco dataset.root=...

Training is the sandwich rule with in-place distillation (``supernet.training.SandwichStep``) on
the generic trainer, one input resolution per batch drawn from ``space.resolutions``. The run
folder (``run_dir``) holds what ``experiments.train`` writes (``.hydra/``, ``metrics.csv``,
``eval.csv``, ``checkpoints/{last,best}.pt``); rerunning the same command resumes from
``last.pt``. The checkpoints are supernet checkpoints: ``experiments.export supernet=<ckpt>``
slices any member out of them. The training-time score (``eval.csv``, ``best.pt``) is the AP of
the largest member after BN recalibration.

With ``report=true`` the trained supernet's ``report_subnets`` (``smallest``, ``largest``, or a
preset / architecture file that is a member; others are skipped with a note) are exported and
evaluated on the validation split, each with the supernet's BN statistics and after
recalibrating them on ``recalibrate_batches`` training batches; ``run_dir/subnets.csv`` gets one
row per subnet and setting. A preset is evaluated at its own input size if the space trains at
it, else at the nearest trained resolution (column ``input``).

``sandwich.*`` sets the step (``supernet.training.SandwichStep``): members per batch, the
distillation weight and its start / ramp, the other members' loss weight, and ``phases`` for
progressive shrinking (``[{start: 0, open: []}, {start: 100, open: [kernel, depth, width,
branch]}]`` trains the largest alone for 100 steps, then every member). ``standalone=true``
trains the largest member as a plain network on the same batches and schedule instead: the
reference for the largest member's AP (``docs/supernet.md``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from torch import nn

from arch_search.trained_proxies import sample_batches
from bottomup.datasets.coco_format import KeypointDataset
from bottomup.losses import BottomUpLoss
from bottomup.training_data import TrainingSamples
from evaluators.macs import count_params
from evaluators.macs_fast import fast_macs
from evaluators.pose_eval import ap_evaluator, evaluate_model
from experiments.cli import fail_clearly
from experiments.data import DatasetSchema, load_datasets
from experiments.sections import LossSchema, TrainerSchema, loss_config, trainer_config
from posecore.errors import SettingError
from posecore.interrupts import stop_on_signals
from posenets import build_model
from posenets.checkpoint import CheckpointError, load_checkpoint
from posetrain.distributed import init_distributed, shutdown
from posetrain.trainer import Trainer
from search_space import ArchConfigError, LitePoseConfig, resolve_arch, to_dict
from search_space.space import LitePoseSpace, largest_member_of
from supernet import LitePoseSupernet
from supernet.checkpoint import SUPERNET_KEY, supernet_state
from supernet.recalibrate import export_recalibrated
from supernet.training import Phase, SandwichStep, check_phases, resolution_for_batch


@dataclasses.dataclass
class TrainSupernetConfig:
    """The schema of ``conf/train_supernet.yaml`` (its values and their meaning are there): an
    unknown key or a wrongly typed value fails when the config is composed."""

    supernet: str = MISSING
    tag_dim: int = MISSING
    space: dict[str, Any] = MISSING  # LitePoseSpace's choices, checked by build_space
    sandwich: dict[str, Any] = MISSING  # SandwichStep's options, read by sandwich_step
    run_dir: str = MISSING
    standalone: bool = MISSING
    device: str = MISSING
    threads: int | None = MISSING
    eval_flip: bool = MISSING
    eval_max_images: int | None = MISSING
    recalibrate_batches: int = MISSING
    report: bool = MISSING
    report_subnets: list[str] = MISSING
    dataset: DatasetSchema | None = None  # the groups, typed (experiments.data, .sections)
    trainer: TrainerSchema | None = None  # the group, typed (experiments.sections)
    loss: LossSchema | None = None  # the group, typed (experiments.sections)


ConfigStore.instance().store(name="train_supernet_schema", node=TrainSupernetConfig)


def build_space(cfg: DictConfig, num_joints: int) -> LitePoseSpace:
    """The search space from ``supernet`` (its largest member) and the ``space`` section."""
    options = OmegaConf.to_container(cfg.space, resolve=True)
    known = {f.name for f in dataclasses.fields(LitePoseSpace)} - {"largest"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SettingError(f"unknown space settings {unknown}; known: {sorted(known)}")
    options = {k: tuple(v) for k, v in options.items()}
    if not options.get("resolutions"):
        raise SettingError("space.resolutions must list at least one input size")
    largest = largest_member_of(
        cfg.supernet,
        num_joints=num_joints,
        tag_dim=cfg.tag_dim,
        input_size=max(options["resolutions"]),
    )
    return LitePoseSpace(largest=largest, **options)


SANDWICH_KEYS = (
    "num_random",
    "distill_weight",
    "member_weight",
    "distill_start",
    "distill_ramp",
    "phases",
    "smallest",
)


def sandwich_phases(phases) -> tuple[Phase, ...]:
    """``sandwich.phases`` (null: the plain sandwich rule throughout) as validated ``Phase``s."""
    if phases is None:
        return (Phase(0),)
    out = []
    for i, phase in enumerate(OmegaConf.to_container(phases, resolve=True)):
        if not isinstance(phase, dict) or set(phase) - {"start", "open"} or "start" not in phase:
            raise SettingError(
                f"sandwich.phases[{i}]={phase!r}: each phase is {{start: <step>, open: "
                "[kernel, depth, width, branch]}} (open: the dimensions members vary in)"
            )
        out.append(Phase(int(phase["start"]), tuple(phase.get("open", ()) or ())))
    return check_phases(out)


def sandwich_step(cfg: DictConfig, net: LitePoseSupernet, space: LitePoseSpace, loss_fn, seed, amp):
    """The ``SandwichStep`` the ``sandwich`` section describes (unknown keys are an error)."""
    unknown = sorted(set(cfg.sandwich) - set(SANDWICH_KEYS))
    if unknown:
        raise SettingError(f"unknown sandwich settings {unknown}; known: {list(SANDWICH_KEYS)}")
    options = cfg.sandwich
    return SandwichStep(
        net,
        space,
        loss_fn,
        num_random=options.num_random,
        distill_weight=options.distill_weight,
        seed=seed,
        amp=amp,
        member_weight=options.get("member_weight", 1.0),
        distill_start=options.get("distill_start", 0),
        distill_ramp=options.get("distill_ramp", 0),
        phases=sandwich_phases(options.get("phases")),
        smallest=bool(options.get("smallest", True)),
    )


def calibration_images(samples: TrainingSamples, size: int, cfg: DictConfig) -> list[torch.Tensor]:
    """The BN recalibration batches at ``size``: the first training images, augmented as in
    training; the same for every subnet evaluated at that size."""
    batches = sample_batches(samples, size, cfg.trainer.batch_size, 0, cfg.recalibrate_batches)
    return [batch["image"] for batch in batches]


def check_resumable(run_dir: Path, net: LitePoseSupernet, space: LitePoseSpace) -> int | None:
    """The step ``run_dir``'s last checkpoint resumes from (None: a fresh run); an error if that
    checkpoint holds another supernet or space, which would not load or not continue the run."""
    last = run_dir / "checkpoints" / "last.pt"
    if not last.exists():
        return None
    state = load_checkpoint(last)
    if SUPERNET_KEY not in state:
        raise CheckpointError(
            f"{last} is not a supernet checkpoint (no '{SUPERNET_KEY}'; experiments.train "
            "writes standalone ones); choose another run_dir"
        )
    for key, value in supernet_state(net, space).items():
        if state.get(key) != value:
            raise CheckpointError(
                f"{last} holds another supernet or search space ({key}: {state.get(key)!r}, "
                f"this run: {value!r}); choose another run_dir or the settings it was trained with"
            )
    return int(state["step"])


def report_config(name: str, space: LitePoseSpace) -> LitePoseConfig:
    """``smallest``, ``largest`` or a preset / architecture file, at a trained resolution."""
    if name == "smallest":
        return space.smallest()
    if name == "largest":
        return space.largest_member()
    big = space.largest
    config = resolve_arch(name, num_joints=big.num_joints, tag_dim=big.tag_dim)
    if not isinstance(config, LitePoseConfig):
        raise ArchConfigError("report_subnets", name, "must be a LitePose architecture")
    size = min(space.resolutions, key=lambda r: (abs(r - config.input_size), r))
    return dataclasses.replace(config, input_size=size)


def report_configs(
    net: LitePoseSupernet, space: LitePoseSpace, names: list[str]
) -> dict[str, LitePoseConfig]:
    """The members among ``names`` (an unknown name is an error, a non-member a printed note)."""
    configs = {}
    for name in names:
        config = report_config(name, space)
        try:
            net.check_member(config)
        except ArchConfigError as err:
            print(f"report: {name} skipped, not a member of this supernet ({err})")
            continue
        configs[name] = config
    return configs


def evaluate_subnet(
    net: LitePoseSupernet,
    config: LitePoseConfig,
    val_set: KeypointDataset,
    calibration: list | None,
    cfg: DictConfig,
) -> tuple[nn.Module, dict[str, float]]:
    """AP of ``config``'s standalone export; BN recalibrated first when ``calibration`` is given
    (on the exported copy: the supernet's statistics stay as trained)."""
    model = export_recalibrated(net, config, calibration, next(net.parameters()).device)
    ap = evaluate_model(
        model,
        val_set,
        config.input_size,
        config.tag_dim,
        flip=cfg.eval_flip,
        max_images=cfg.eval_max_images,
    )
    return model, ap.stats


def subnet_report(
    net: LitePoseSupernet,
    space: LitePoseSpace,
    samples: TrainingSamples,
    val_set: KeypointDataset,
    cfg: DictConfig,
) -> pd.DataFrame:
    rows = []
    for name, config in report_configs(net, space, cfg.report_subnets).items():
        macs = fast_macs(config)
        calibration = calibration_images(samples, config.input_size, cfg)
        for recalibrated in (False, True):
            model, stats = evaluate_subnet(
                net, config, val_set, calibration if recalibrated else None, cfg
            )
            rows.append(
                {
                    "subnet": name,
                    "input": config.input_size,
                    "macs": macs.macs,
                    "macs_paper": macs.macs_paper,
                    "params": count_params(model),
                    "recalibrated": recalibrated,
                    **stats,
                }
            )
    return pd.DataFrame(rows)


def print_report(table: pd.DataFrame) -> None:
    giga = {name: (lambda v: f"{v / 1e9:.3f}G") for name in ("macs", "macs_paper")}
    millions = {"params": lambda v: f"{v / 1e6:.2f}M"}
    floats = {c: (lambda v: f"{v:.4f}") for c in table.columns if table[c].dtype == float}
    print(table.to_string(index=False, formatters={**floats, **giga, **millions}))


def train_standalone(cfg: DictConfig, ctx, space: LitePoseSpace, train_set, val_set) -> None:
    """``standalone=true``: the largest member as a plain network (``build_model``), trained on
    exactly the supernet run's batches, per-batch resolutions, loss and schedule; the reference
    its largest member is measured against (its own BN statistics, no recalibration)."""
    settings = trainer_config(cfg.trainer)
    config = space.largest_member()
    torch.manual_seed(settings.seed)  # the initial weights come from the seed, as in train

    evaluate = ap_evaluator(
        val_set, config.input_size, config.tag_dim, cfg.eval_flip, cfg.eval_max_images
    )

    trainer = Trainer(
        build_model(config),
        BottomUpLoss(config.num_joints, loss_config(cfg.loss)),
        TrainingSamples(train_set, config.input_size, cfg.tag_dim, settings.seed),
        settings,
        Path(cfg.run_dir),
        ctx=ctx,
        evaluate=evaluate,
        extra_state={"arch": to_dict(config)},
        batch_extra=resolution_for_batch(space.resolutions, settings.seed),
    )
    result = trainer.fit()
    if ctx.is_main:
        print(
            f"trained the largest member standalone for {result.steps} steps; AP "
            f"{result.history[-1]['AP']:.4f} at {config.input_size} px; checkpoints in "
            f"{Path(cfg.run_dir) / 'checkpoints'}"
        )


def run(cfg: DictConfig) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ctx = init_distributed(cfg.device)
    train_set, val_set = load_datasets(cfg.dataset, ctx)
    space = build_space(cfg, train_set.keypoint_layout.num_joints)
    if cfg.standalone:
        train_standalone(cfg, ctx, space, train_set, val_set)
        shutdown(ctx)
        return
    settings = trainer_config(cfg.trainer)
    torch.manual_seed(settings.seed)  # the initial weights come from the seed, as in train
    net = LitePoseSupernet(space.largest, space.kernel_sizes)
    run_dir = Path(cfg.run_dir)
    resumed = check_resumable(run_dir, net, space)
    if cfg.report:
        for name in cfg.report_subnets:  # fail before training, not after
            report_config(name, space)
    if ctx.is_main and resumed is not None:
        print(f"resuming from {run_dir / 'checkpoints' / 'last.pt'} at step {resumed}")
    loss_fn = BottomUpLoss(space.largest.num_joints, loss_config(cfg.loss))
    samples = TrainingSamples(train_set, space.largest.input_size, cfg.tag_dim, settings.seed)
    largest = space.largest_member()

    def evaluate(model: nn.Module) -> dict[str, float]:
        calibration = calibration_images(samples, largest.input_size, cfg)
        return evaluate_subnet(net, largest, val_set, calibration, cfg)[1]

    step = sandwich_step(cfg, net, space, loss_fn, settings.seed, settings.amp)
    trainer = Trainer(
        net,
        loss_fn,
        samples,
        settings,
        run_dir,
        ctx=ctx,
        evaluate=evaluate,
        extra_state=supernet_state(net, space),
        step=step,
        batch_extra=resolution_for_batch(space.resolutions, settings.seed),
    )
    result = trainer.fit()
    if ctx.is_main:
        print(
            f"trained {result.steps} steps; best AP of the largest member {result.best_score}; "
            f"supernet checkpoints in {run_dir / 'checkpoints'}"
        )
        if cfg.report:
            table = subnet_report(net, space, samples, val_set, cfg)
            path = run_dir / "subnets.csv"
            table.to_csv(path, index=False)
            print_report(table)
            print(f"wrote {path}")
    shutdown(ctx)


@hydra.main(version_base="1.3", config_path="conf", config_name="train_supernet")
def main(cfg: DictConfig) -> None:
    with fail_clearly("train_supernet"), stop_on_signals():
        run(cfg)


if __name__ == "__main__":
    main()
