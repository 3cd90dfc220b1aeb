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
the ablation of "Rethinking Deconvolution". Its costs are per person crop; ``train=true`` is
refused for it (the ground truth's short training is bottom-up), train a width with
``experiments.train model=<arch file>`` (docs/topdown.md).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from arch_search.ground_truth import Schedule
from evaluators.latency import measure_latency
from evaluators.macs import count_params
from evaluators.macs_fast import fast_macs
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
        if cfg.train:
            raise SettingError(
                f"train=true trains bottom-up heads; for the top-down preset {cfg.preset!r} train "
                "each width with experiments.train model=<arch file> (docs/topdown.md)"
            )
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
        table = pd.concat([table, pd.DataFrame(train_widths(cfg, configs, run_dir))], axis=1)
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
