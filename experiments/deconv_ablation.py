"""The deconvolution-width ablation: one preset with its fusion head's widths scaled.

    python -m experiments.deconv_ablation                        # LitePose-S, 0.25x .. 2x widths
    python -m experiments.deconv_ablation 'widths=[[16,16,16],[32,24,32]]' latency=false
    python -m experiments.deconv_ablation train=true             # + AP on the demo data

The paper fixes LitePose's deconv head widths by hand; this sweep asks what they cost and buy.
Every row is ``preset`` with only ``head.channels`` changed (the preset's widths times each of
``scales``, rounded to ``multiple``; or ``widths`` given outright), so MACs, parameters and
latency differences are the head's alone. MACs come from ``evaluators.macs_fast`` (true count
and the paper's convention), latency from ``evaluators.latency`` at one thread.

``train=true`` trains each width once under the ground truth's fixed schedule (the same
``experiments.short_training.train_one`` as ``experiments.ground_truth``: ``ShortTrainProxy``
at the preset's size under ``resolution_rule``, 144 px for a 448-px preset) and adds validation
AP. Each finished width is a line of ``run_dir/trained.jsonl``; a rerun of the same command
trains only the missing ones.
The table is written as ``deconv_ablation.csv`` / ``.md`` and drawn as ``deconv_ablation.png``.

A top-down preset (``preset=rethinking_mobile_demo``, ``simplebaseline_resnet50``) sweeps the
widths of its decoder's deconvolutions instead (``TopDownHeadConfig.deconvs``, kernels kept):
the ablation of "Rethinking Deconvolution". Its costs are per person crop, and the table adds
``decoder GMACs`` (the deconvolutions, their BN and the final conv, true count). With
``train=true`` each width is trained at the preset's own crop on ground-truth person crops of
``dataset`` (``experiments.family_training.train_short``: ``schedule.steps`` batches of
``schedule.batch_size`` crops, the loss group's foreground weight) once per seed of ``seeds``
(null: ``[seed]``), and scored by AP on the first ``schedule.eval_images`` validation images
(ground-truth boxes, no flip test); the table has the seeds' mean AP and its standard deviation,
and the figure AP against decoder GMACs. Rows resume from ``trained.jsonl`` as above.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from arch_search.ground_truth import Schedule
from evaluators.latency import measure_latency
from evaluators.macs import count_params
from evaluators.macs_fast import fast_macs, layer_macs
from experiments.cli import fail_clearly
from experiments.data import DatasetSchema, dataset_settings
from experiments.deconv_figure import plot_deconv_ablation
from experiments.sections import LossSchema, section_dataclass
from experiments.tables import to_markdown
from posecore.errors import SettingError, UnknownNameError
from posecore.records import JsonlRecords
from posenets import build_model
from search_space import get_preset, list_presets, to_json
from search_space.config import LitePoseConfig
from search_space.plan import layer_plan
from search_space.resolution import ResolutionRule
from search_space.topdown import DeconvLayerConfig, TopDownConfig

Widths = tuple[int, int, int]
STEM = "deconv_ablation"


@dataclass
class DeconvAblationConfig:
    """The schema of ``conf/deconv_ablation.yaml`` (its values and their meaning are there): an
    unknown key or a wrongly typed value fails when the config is composed."""

    preset: str = MISSING
    scales: list[float] = MISSING
    multiple: int = MISSING
    widths: Any = MISSING  # null or [[c1, c2, c3], ...]
    num_joints: int = MISSING
    latency: bool = MISSING
    latency_size: int | None = MISSING
    latency_runs: int = MISSING
    latency_warmup: int = MISSING
    threads: int | None = MISSING
    train: bool = MISSING
    seed: int = MISSING
    seeds: list[int] | None = None  # top-down train=true: every seed (null: [seed])
    schedule: dict[str, Any] = MISSING  # arch_search.ground_truth.Schedule's fields
    resolution_rule: dict[str, Any] = MISSING  # search_space.resolution.ResolutionRule's fields
    run_dir: str = MISSING
    dataset: DatasetSchema | None = None  # the groups, typed (experiments.data)
    loss: LossSchema | None = None  # the group, typed (experiments.sections)


ConfigStore.instance().store(name="deconv_ablation_schema", node=DeconvAblationConfig)


def scaled_widths(base: Widths, scales: list[float], multiple: int) -> list[Widths]:
    """``base`` times each scale, every width rounded half up to ``multiple`` (at least one
    multiple; half up, not Python's half-to-even, so 1.5x of 24 is 40 and not 32); duplicates
    after rounding are dropped, so each row is a distinct head."""
    rows: list[Widths] = []
    for scale in scales:
        if scale <= 0:
            raise SettingError(f"scales: {scale} must be > 0")
        row = tuple(max(multiple, multiple * int(w * scale / multiple + 0.5)) for w in base)
        if row not in rows:
            rows.append(row)
    return rows


def head_widths(config: LitePoseConfig | TopDownConfig) -> Widths:
    """The widths the sweep scales: LitePose's head channels or a top-down decoder's deconvs."""
    if isinstance(config, TopDownConfig):
        return tuple(layer.channels for layer in config.head.deconvs)
    return tuple(config.head.channels)


def with_head_widths(config: LitePoseConfig | TopDownConfig, widths: Widths):
    if isinstance(config, TopDownConfig):
        if len(widths) != len(config.head.deconvs):
            raise SettingError(
                f"widths {list(widths)}: the decoder has {len(config.head.deconvs)} deconvs"
            )
        deconvs = tuple(
            DeconvLayerConfig(w, layer.kernel)
            for w, layer in zip(widths, config.head.deconvs, strict=True)
        )
        return dataclasses.replace(config, head=dataclasses.replace(config.head, deconvs=deconvs))
    head = dataclasses.replace(config.head, channels=tuple(widths))
    return dataclasses.replace(config, head=head)


def base_config(cfg: DictConfig) -> LitePoseConfig | TopDownConfig:
    if cfg.preset not in list_presets(pipeline=None):
        raise UnknownNameError(
            f"preset={cfg.preset!r}: unknown; LitePose presets: {list_presets('litepose_*')}, "
            f"top-down presets: {list_presets(pipeline='topdown')}"
        )
    config = get_preset(cfg.preset, num_joints=cfg.num_joints)
    if isinstance(config, TopDownConfig):
        return config
    if not isinstance(config, LitePoseConfig):
        raise SettingError(
            f"preset={cfg.preset!r} is a {type(config).__name__}; the deconv head is LitePose's: "
            f"{list_presets('litepose_*')}"
        )
    return config


def planned_widths(cfg: DictConfig, base: LitePoseConfig) -> list[Widths]:
    if cfg.widths is not None:
        rows = [tuple(int(w) for w in row) for row in cfg.widths]
        for row in rows:
            with_head_widths(base, row)  # a bad width fails (validation) before anything runs
        return rows
    return scaled_widths(head_widths(base), list(cfg.scales), cfg.multiple)


def cost_record(config: LitePoseConfig, cfg: DictConfig) -> dict:
    """MACs and parameters, plus latency when ``cfg.latency``."""
    counts = fast_macs(config)
    model = build_model(config)
    record = {
        "head channels": "-".join(str(w) for w in head_widths(config)),
        "GMACs (true)": counts.macs / 1e9,
        "GMACs (paper conv.)": counts.macs_paper / 1e9,
        "params (M)": count_params(model) / 1e6,
    }
    if isinstance(config, TopDownConfig):
        record["decoder GMACs"] = decoder_macs(config) / 1e9
    if cfg.latency:
        size = cfg.latency_size or config.input_size
        report = measure_latency(
            model,
            size,
            runs=cfg.latency_runs,
            warmup=cfg.latency_warmup,
            threads=cfg.threads,
            macs=fast_macs(config, size).macs,
        )
        label = size if isinstance(size, int) else "x".join(str(side) for side in size)
        record[f"CPU ms @{label}"] = report.latency_ms
        record[f"IQR ms @{label}"] = report.iqr_ms
    return record


def decoder_macs(config: TopDownConfig) -> int:
    """True MACs of a top-down decoder: its plan's deconvolution layers (with their BN) and the
    final conv, one person crop."""
    return sum(
        layer_macs(layer)
        for layer in layer_plan(config)
        if layer.name.startswith("deconv.") or layer.name == "final"
    )


def trained_rows(path: Path) -> JsonlRecords:
    """``trained.jsonl``: one line per trained (widths, size, seed, schedule); append-only, so an
    interrupted sweep keeps what finished."""
    return JsonlRecords(path, key=lambda row: json.dumps(_trained_key(row), sort_keys=True))


def _trained_key(row: dict) -> dict:
    return {k: row[k] for k in ("channels", "size", "seed", "schedule")}


def train_widths(cfg: DictConfig, configs: list[LitePoseConfig], run_dir: Path) -> list[dict]:
    """Each config trained once (or its finished line reused); one score dict per config."""
    from experiments.short_training import train_one  # the training stack, only when asked

    schedule = section_dataclass(Schedule, cfg.schedule, "schedule")
    rule = section_dataclass(ResolutionRule, cfg.resolution_rule, "resolution_rule")
    store = trained_rows(run_dir / "trained.jsonl")
    dataset = dataset_settings(cfg.dataset)
    loss = OmegaConf.to_container(cfg.loss, resolve=True)
    results = []
    for config in configs:
        size = rule.size(config.input_size)
        key = {
            "channels": list(config.head.channels),
            "size": size,
            "seed": cfg.seed,
            "schedule": asdict(schedule),
        }
        row = store.done.get(store.key(key))
        if row is None:
            print(f"training head {config.head.channels} at {size} px", flush=True)
            metrics, seconds = train_one(
                to_json(config, indent=None),
                cfg.seed,
                asdict(schedule),
                asdict(rule),
                dataset,
                loss,
            )
            row = {**key, **metrics, "seconds": seconds}
            store.add(row)
        results.append(
            {
                "train size": size,
                "GMACs @train": fast_macs(config, size).macs / 1e9,
                "train steps": schedule.steps,
                "AP": row["AP"],
                "AP50": row["AP50"],
                "val loss": row["loss"],
                "train s": row["seconds"],
            }
        )
    return results


def train_topdown_widths(
    cfg: DictConfig, configs: list[TopDownConfig], run_dir: Path
) -> list[dict]:
    """Each top-down width trained once per seed (finished lines of ``trained.jsonl`` reused);
    one dict per width: the seeds' mean AP, its standard deviation and the training time."""
    from experiments.data import load_datasets  # the training stack, only when asked
    from experiments.family_training import train_short, validation_ap
    from experiments.sections import loss_config

    schedule = section_dataclass(Schedule, cfg.schedule, "schedule")
    seeds = list(cfg.seeds) if cfg.seeds is not None else [cfg.seed]
    store = trained_rows(run_dir / "trained.jsonl")
    data: tuple | None = None
    results = []
    for config in configs:
        rows = []
        for seed in seeds:
            key = {
                "channels": list(head_widths(config)),
                "size": list(config.input_size),
                "seed": seed,
                "schedule": asdict(schedule),
            }
            row = store.done.get(store.key(key))
            if row is None:
                if data is None:
                    data = load_datasets(cfg.dataset)
                train_set, val_set = data
                print(f"training decoder {key['channels']} seed {seed}", flush=True)
                start = time.process_time()
                model = train_short(config, train_set, schedule, seed, loss_config(cfg.loss))
                metrics = validation_ap(model, config, val_set, schedule.eval_images)
                row = {**key, **metrics, "cpu_seconds": time.process_time() - start}
                store.add(row)
            rows.append(row)
        ap = [r["AP"] for r in rows]
        results.append(
            {
                "train size": "x".join(str(side) for side in config.input_size),
                "GMACs @train": fast_macs(config).macs / 1e9,
                "train steps": schedule.steps,
                "seeds": len(rows),
                "AP": float(np.mean(ap)),
                "AP sd": float(np.std(ap, ddof=1)) if len(ap) > 1 else float("nan"),
                "AP50": float(np.mean([r["AP50"] for r in rows])),
                "train CPU s": float(np.mean([r["cpu_seconds"] for r in rows])),
            }
        )
    return results


def run(cfg: DictConfig) -> pd.DataFrame:
    """The whole command: every setting checked before any model is built, timed or trained."""
    base = base_config(cfg)
    rows = planned_widths(cfg, base)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    configs = [with_head_widths(base, row) for row in rows]
    preset = head_widths(base)
    table = pd.DataFrame(
        [
            {"preset": row == preset, **cost_record(c, cfg)}
            for row, c in zip(rows, configs, strict=True)
        ]
    )
    run_dir = Path(cfg.run_dir)
    if cfg.train:
        train = train_topdown_widths if isinstance(base, TopDownConfig) else train_widths
        table = pd.concat([table, pd.DataFrame(train(cfg, configs, run_dir))], axis=1)
    run_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(run_dir / f"{STEM}.csv", index=False)
    (run_dir / f"{STEM}.md").write_text(to_markdown(table) + "\n")
    figures = plot_deconv_ablation(table, run_dir, f"deconv head widths: {cfg.preset}", STEM)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {run_dir / (STEM + '.csv')}, {STEM}.md and {figures[0]}")
    return table


@hydra.main(version_base="1.3", config_path="conf", config_name="deconv_ablation")
def main(cfg: DictConfig) -> None:
    with fail_clearly("deconv_ablation"):
        run(cfg)


if __name__ == "__main__":
    main()
