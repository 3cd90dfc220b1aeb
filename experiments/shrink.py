"""The gradual-shrinking table: every model of a path with its MACs, parameters and latency.

    python -m experiments.shrink                                   # the paper's path, a table
    python -m experiments.shrink format=json                       # one JSON object per model
    python -m experiments.shrink path=generated baseline=higherhrnet_w32 steps=4
    python -m experiments.shrink latency=false run_dir=outputs/shrink   # + shrink.csv / shrink.md

MACs come from the exact fast path (``evaluators.macs_fast``), parameters from the built model,
latency from ``evaluators.latency`` at the models' own input size and at ``latency_size`` (a
smaller one; null skips it), with one CPU thread unless ``threads`` says otherwise (see
docs/shrinking.md: more threads on a shared machine oversubscribe the cores). JSON lines carry
exactly ``name``, ``blocks_removed`` (a share, 0-1), ``macs``, ``macs_paper`` and ``params``
(plain counts) and are never timed. With ``run_dir`` the table is also written as CSV and
Markdown, and every step's architecture as ``arch/<step>.json`` (trainable with
``python -m experiments.train model=<file>``).

``train=true`` also trains every model of the path on the chosen data at ``train_size`` (each
step a resumable ``experiments.train`` run under ``run_dir/train/<step>``, with ``train_args``
passed through: by default the CPU demo's data and recipe for 2 epochs of 1000 images) and adds
the validation AP columns and the AP-vs-GMACs figure. Rerunning the same command skips finished
steps and resumes an interrupted one.

    python -m experiments.shrink train=true latency=false              # outputs/shrink
    python -m experiments.shrink train=true 'train_args=["+experiment=demo","trainer.epochs=8"]'
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import hydra
import pandas as pd
from hydra.core.config_store import ConfigStore

from evaluators.latency import measure_latency
from evaluators.macs import count_params
from evaluators.macs_fast import fast_macs
from experiments.cli import fail_clearly
from experiments.shrink_training import train_path
from experiments.tables import to_markdown
from posecore.errors import SettingError, UnknownNameError
from posenets import build_model
from search_space import get_preset, list_presets, save_arch
from search_space.config import HigherHRNetConfig
from shrinking import ShrinkPath, ShrinkStep, generate_path, get_path, list_paths
from shrinking.figure import plot_shrinking

JSON_KEYS = ("name", "blocks_removed", "macs", "macs_paper", "params")


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


@dataclass
class ShrinkConfig:
    path: str = "paper"  # a registered path, or "generated"
    baseline: str = "higherhrnet_w16"  # generated paths: a HigherHRNet preset
    steps: int = 3  # generated paths: shrinking steps after the baseline
    width: int | None = None  # generated paths: base width of the steps after the baseline
    train: bool = False
    format: OutputFormat = OutputFormat.table
    latency: bool = True  # table only
    latency_size: int | None = 256  # a second, smaller input size to time (null: skip)
    latency_runs: int = 10
    latency_warmup: int = 2
    threads: int | None = 1  # CPU threads while timing (null: torch's default)
    device: str = "cpu"
    num_joints: int = 14
    run_dir: str | None = None  # train=true: defaults to outputs/shrink
    train_size: int = 128  # train=true: input size every step trains and is evaluated at
    train_args: list[str] = dataclasses.field(
        default_factory=lambda: [
            "+experiment=demo",
            "trainer.epochs=2",
            "trainer.eval_every_epochs=2",
        ]
    )


ConfigStore.instance().store(name="shrink_schema", node=ShrinkConfig)


def resolve_path(cfg: ShrinkConfig) -> ShrinkPath:
    """The registered path named ``cfg.path``, or one generated from ``cfg.baseline``."""
    if cfg.path == "generated":
        if cfg.baseline not in list_presets():
            raise UnknownNameError(
                f"baseline={cfg.baseline!r}: unknown preset; HigherHRNet presets: "
                f"{list_presets('higherhrnet_*')}"
            )
        baseline = get_preset(cfg.baseline, num_joints=cfg.num_joints)
        if not isinstance(baseline, HigherHRNetConfig):
            raise SettingError(
                f"baseline={cfg.baseline!r} is a {type(baseline).__name__}; a shrinking path "
                f"starts from a HigherHRNet preset: {list_presets('higherhrnet_*')}"
            )
        return generate_path(baseline, cfg.steps, cfg.width, name=f"{cfg.baseline}-{cfg.steps}")
    if cfg.path not in list_paths():
        raise UnknownNameError(
            f"path={cfg.path!r}: unknown; known paths: {list_paths()} or 'generated' "
            "(with baseline=<HigherHRNet preset> steps=<n> [width=<w>])"
        )
    path = get_path(cfg.path)
    if cfg.num_joints == path.baseline.config.num_joints:
        return path
    return ShrinkPath(
        path.name,
        tuple(
            ShrinkStep(
                step.name,
                dataclasses.replace(step.config, num_joints=cfg.num_joints),
                step.published_gmacs,
            )
            for step in path.steps
        ),
    )


def path_records(path: ShrinkPath, cfg: ShrinkConfig, timed: bool) -> list[dict]:
    """One record per model of ``path``; latency keys are added when ``timed``."""
    records = []
    for step, removed in zip(path.steps, path.blocks_removed, strict=True):
        config = step.config
        counts = fast_macs(config)
        model = build_model(config)
        record = {
            "name": step.name,
            "blocks_removed": removed,
            "macs": counts.macs,
            "macs_paper": counts.macs_paper,
            "params": count_params(model),
            "published_gmacs": step.published_gmacs,
            "input_size": config.input_size,
        }
        if timed:
            for size in latency_sizes(config.input_size, cfg.latency_size):
                report = measure_latency(
                    model,
                    size,
                    runs=cfg.latency_runs,
                    warmup=cfg.latency_warmup,
                    device=cfg.device,
                    threads=cfg.threads,
                    macs=fast_macs(config, size).macs,
                )
                record[f"latency_ms@{size}"] = report.latency_ms
                record[f"iqr_ms@{size}"] = report.iqr_ms
                record[f"gmacs_per_s@{size}"] = report.gmacs_per_s
        records.append(record)
    return records


def latency_sizes(full: int, small: int | None) -> list[int]:
    return [full] if small is None or small == full else [full, small]


def format_frame(records: list[dict], device: str = "cpu") -> pd.DataFrame:
    """The human table: giga-MACs, millions of parameters, removed share in percent."""
    frame = pd.DataFrame(records)
    table = pd.DataFrame(
        {
            "step": frame["name"],
            "blocks removed %": 100 * frame["blocks_removed"],
            "GMACs (true)": frame["macs"] / 1e9,
            "GMACs (paper conv.)": frame["macs_paper"] / 1e9,
            "published GMACs": frame["published_gmacs"].astype("float"),
            "params (M)": frame["params"] / 1e6,
        }
    )
    unit = "CUDA" if device.startswith("cuda") else "CPU"
    for column in frame.columns:
        if column.startswith("latency_ms@"):
            size = column.split("@")[1]
            table[f"{unit} ms @{size}"] = frame[column]
            table[f"IQR ms @{size}"] = frame[f"iqr_ms@{size}"]
            table[f"GMACs/s @{size}"] = frame[f"gmacs_per_s@{size}"]
    return table


def write_archs(run_dir: Path, path: ShrinkPath) -> None:
    for step in path.steps:
        save_arch(step.config, run_dir / "arch" / f"{step.name}.json")


def write_outputs(run_dir: Path, path: ShrinkPath, table: pd.DataFrame) -> list[Path]:
    """shrink.csv, shrink.md, the architectures and the figure; returns the figure's paths."""
    run_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(run_dir / "shrink.csv", index=False)
    (run_dir / "shrink.md").write_text(to_markdown(table) + "\n")
    write_archs(run_dir, path)
    return plot_shrinking(table, run_dir, f"gradual shrinking: {path.name}")


def add_training_columns(
    table: pd.DataFrame, path: ShrinkPath, results: list[dict], train_size: int
) -> pd.DataFrame:
    """The trained steps' scores beside their MACs (at the size they were trained at)."""
    table = table.copy()
    table["train size"] = train_size
    table["GMACs @train"] = [fast_macs(s.config, train_size).macs / 1e9 for s in path.steps]
    table["train steps"] = [r["train_steps"] for r in results]
    for key in ("AP", "AP50", "AP75", "AR"):
        table[key] = [r.get(f"final_{key}", float("nan")) for r in results]
    table["best AP"] = [r["best_AP"] for r in results]
    return table


def shrink(cfg: ShrinkConfig) -> None:
    """The whole command: every check (path, format) before any model is built or timed."""
    as_json = cfg.format == OutputFormat.json
    if cfg.train and as_json:
        raise SettingError("train=true prints a table: drop format=json (or use train=false)")
    path = resolve_path(cfg)
    records = path_records(path, cfg, timed=cfg.latency and not as_json)
    table = format_frame(records, cfg.device)
    run_dir = Path(cfg.run_dir or "outputs/shrink") if cfg.train else cfg.run_dir
    if cfg.train:
        write_archs(run_dir, path)
        results = train_path(path, run_dir, cfg.train_size, list(cfg.train_args))
        table = add_training_columns(table, path, results, cfg.train_size)
    if as_json:
        for record in records:
            print(json.dumps({key: record[key] for key in JSON_KEYS}))
    else:
        timed = f", latency on {cfg.device}" if cfg.latency else ""
        print(f"shrinking path {path.name!r}{timed}")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"))
    if run_dir:
        figures = write_outputs(Path(run_dir), path, table)
        if not as_json:
            print(f"wrote {Path(run_dir) / 'shrink.csv'}, shrink.md and {figures[0]}")


@hydra.main(version_base="1.3", config_path="conf", config_name="shrink")
def main(cfg: ShrinkConfig) -> None:
    with fail_clearly("shrink"):
        shrink(cfg)


if __name__ == "__main__":
    main()
