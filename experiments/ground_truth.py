"""Train a fixed set of architectures of the search space from scratch: the ground truth.

    python -m experiments.ground_truth                       # the committed table, 2 workers
    python -m experiments.ground_truth workers=1 run_dir=outputs/gt n_stratified=4 n_above=1

Picks the architectures (``arch_search.ground_truth``: the LitePose presets, members stratified over
paper-convention MACs up to ``cap_gmacs`` and a few above), trains each under one fixed schedule
at its resolution gene scaled by ``resolution_rule`` (``search_space.resolution``), evaluates AP on
the demo validation images and writes to ``run_dir``:

* ``records.jsonl``: one line per finished (architecture, seed) run; a rerun of the same command
  skips them, so an interrupted table resumes (finished over two sessions, or on another machine);
* ``table.csv`` / ``table.md``: one row per architecture, AP mean and SD over its seeds (the CSV
  is rewritten after every run, so a long table can be read while it grows);
* ``run.json``: how the table was made: command, commit, schedule, rule, wall time per session;
* ``ground_truth.png``: AP against paper GMACs, coloured by trained input size.

Each worker is one process at one thread (several one-thread jobs share a small machine's cores
without OpenMP busy-waiting).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing import active_children, get_context
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from tqdm import tqdm

from arch_search.budget import PAPER_BUDGETS
from arch_search.ground_truth import (
    RESUME_SETTINGS,
    PlannedRun,
    Schedule,
    check_resumable,
    plan_architectures,
    plan_runs,
    run_record,
    run_records,
    schedule_dict,
    search_quality,
    searched_archs,
    summarize,
    winners_by_budget,
)
from arch_search.report import plot_ground_truth
from experiments.cli import fail_clearly
from experiments.data import DatasetSchema, dataset_settings
from experiments.proxy_data import proxy_context
from experiments.sections import LossSchema, section_dataclass
from experiments.short_training import train_one
from experiments.tables import to_markdown
from posecore.interrupts import Interrupted, requested, stop_on_signals
from posecore.records import JsonlRecords
from search_space import to_json
from search_space.resolution import ResolutionRule
from search_space.space import LitePoseSpace, largest_member_of


@dataclass
class GroundTruthConfig:
    """The schema of ``conf/ground_truth.yaml`` (its values and their meaning are there): an
    unknown key or a wrongly typed value fails when the config is composed."""

    supernet: str = MISSING
    num_joints: int = MISSING
    presets: list[str] = MISSING
    n_stratified: int = MISSING
    cap_gmacs: float = MISSING
    n_above: int = MISSING
    top_gmacs: float = MISSING
    near_budgets: list[str] = MISSING
    n_near: int = MISSING
    n_seeded: int = MISSING
    seeded_presets: list[str] = MISSING
    seeds: int = MISSING
    band_seeds: bool = MISSING
    band: float = MISSING
    seed: int = MISSING
    pool_size: int = MISSING
    schedule: dict[str, Any] = MISSING  # arch_search.ground_truth.Schedule's fields
    resolution_rule: dict[str, Any] = MISSING  # search_space.resolution.ResolutionRule's fields
    searched: dict[str, str] = MISSING  # winner name -> its arch.json
    workers: int = MISSING
    run_dir: str = MISSING
    progress: bool = MISSING
    dataset: DatasetSchema | None = None  # the groups, typed (experiments.data)
    loss: LossSchema | None = None  # the group, typed (experiments.sections)


ConfigStore.instance().store(name="ground_truth_schema", node=GroundTruthConfig)


def _init_worker() -> None:
    import signal

    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (a Ctrl-C
    # reaches the whole process group)


@contextmanager
def _worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """One-thread worker processes; on a second signal (``KeyboardInterrupt``: stop at once) the
    running trainings are ended rather than waited for."""
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker
    )
    at_once = False
    try:
        yield pool
    except KeyboardInterrupt:
        at_once = True
        pool.shutdown(wait=False, cancel_futures=True)
        for child in active_children():
            child.terminate()
        raise
    finally:
        if not at_once:
            pool.shutdown(wait=True, cancel_futures=True)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def _write_outputs(run_dir: Path, records: JsonlRecords, cfg: DictConfig) -> None:
    table = summarize(list(records.done.values()))
    table.to_csv(run_dir / "table.csv", index=False)
    shown = table.drop(columns=["config", "arch", "loss_sd", "AP50_sd"])
    (run_dir / "table.md").write_text(to_markdown(shown) + "\n")
    plot_ground_truth(table, run_dir)
    if cfg.searched:
        searched = dict(cfg.searched)
        winners = winners_by_budget(searched_archs(space_of(cfg), searched, []), list(searched))
        budgets = {b: PAPER_BUDGETS[b] / 1e9 for b in cfg.near_budgets}
        quality = search_quality(table, budgets, winners)
        quality.to_csv(run_dir / "search_quality.csv", index=False)
        (run_dir / "search_quality.md").write_text(to_markdown(quality) + "\n")


def _record_session(
    run_dir: Path,
    cfg: DictConfig,
    schedule: Schedule,
    rule: ResolutionRule,
    started: float,
    finished: int,
    commit: str | None,
) -> None:
    path = run_dir / "run.json"
    info = json.loads(path.read_text()) if path.exists() else {"sessions": []}
    settings = OmegaConf.to_container(cfg, resolve=True)
    info.update(
        command="python -m experiments.ground_truth " + " ".join(sys.argv[1:]),
        **schedule_dict(schedule, rule),
        plan={
            k: settings[k]
            for k in (
                "supernet",
                "n_stratified",
                "n_above",
                "cap_gmacs",
                "top_gmacs",
                "near_budgets",
                "n_near",
                "n_seeded",
                "seeded_presets",
                "seeds",
                "band_seeds",
                "band",
                "seed",
                "pool_size",
                "searched",
            )
        },
        dataset=dataset_settings(cfg.dataset),
        loss=settings["loss"],
    )
    info["sessions"].append(
        {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "commit": commit,  # read when the session started: the code that trained
            "workers": cfg.workers,
            "wall_seconds": round(time.time() - started, 1),
            "runs_finished": finished,
            "cpu": os.cpu_count(),
        }
    )
    info["wall_seconds_total"] = round(sum(s["wall_seconds"] for s in info["sessions"]), 1)
    path.write_text(json.dumps(info, indent=2) + "\n")


def planned_runs(cfg: DictConfig) -> list[PlannedRun]:
    space = space_of(cfg)
    archs = plan_architectures(
        space,
        cfg.n_stratified,
        cfg.n_above,
        cfg.cap_gmacs,
        cfg.top_gmacs,
        cfg.seed,
        tuple(cfg.presets),
        {name: PAPER_BUDGETS[name] / 1e9 for name in cfg.near_budgets},
        cfg.n_near,
        cfg.pool_size,
    )
    searched = searched_archs(space, dict(cfg.searched), archs)
    return plan_runs(
        archs,
        cfg.n_seeded,
        cfg.seeds,
        cfg.seed,
        tuple(cfg.seeded_presets),
        searched,
        cfg.band_seeds,
        cfg.band,
    )


def space_of(cfg: DictConfig) -> LitePoseSpace:
    return LitePoseSpace(largest=largest_member_of(cfg.supernet, num_joints=cfg.num_joints))


def check_resumable_dir(
    run_dir: Path, cfg: DictConfig, schedule: Schedule, rule: ResolutionRule
) -> None:
    """A table in ``run_dir`` is only extended under its own schedule, rule and data."""
    info = run_dir / "run.json"
    if not info.exists():
        return
    settings = OmegaConf.to_container(cfg, resolve=True)
    current = {**schedule_dict(schedule, rule), "dataset": dataset_settings(cfg.dataset)}
    current["loss"] = settings["loss"]
    check_resumable(json.loads(info.read_text()), {k: current[k] for k in RESUME_SETTINGS}, info)


def run(cfg: DictConfig) -> None:
    schedule = section_dataclass(Schedule, cfg.schedule, "schedule")
    rule = section_dataclass(ResolutionRule, cfg.resolution_rule, "resolution_rule")
    run_dir = Path(cfg.run_dir)
    check_resumable_dir(run_dir, cfg, schedule, rule)
    run_dir.mkdir(parents=True, exist_ok=True)
    records = run_records(run_dir / "records.jsonl")
    runs = planned_runs(cfg)
    todo = [r for r in runs if r.key not in records.done]
    print(f"{len(runs)} runs planned, {len(runs) - len(todo)} finished, {len(todo)} to train")
    dataset = dataset_settings(cfg.dataset)
    loss = OmegaConf.to_container(cfg.loss, resolve=True)
    proxy_context(cfg.dataset, rule, 0, cfg.loss)  # generate the synthetic data once, up front
    started, finished, commit = time.time(), 0, _git_commit()
    args = (asdict(schedule), asdict(rule), dataset, loss)
    bar = tqdm(total=len(todo), desc="ground truth", unit="run", disable=not cfg.progress)
    try:
        with stop_on_signals(), _worker_pool(cfg.workers) as pool:
            waiting, running = list(todo), {}
            while waiting or running:
                # Only as many runs in flight as workers: a stop then waits for these alone.
                while waiting and len(running) < cfg.workers and not requested():
                    planned = waiting.pop(0)
                    config = to_json(planned.arch.config, indent=None)
                    running[pool.submit(train_one, config, planned.seed, *args)] = planned
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    planned = running.pop(future)
                    metrics, seconds = future.result()
                    records.add(run_record(planned, rule, metrics, seconds))
                    summarize(list(records.done.values())).to_csv(
                        run_dir / "table.csv", index=False
                    )
                    finished += 1
                    bar.set_postfix(last=f"{planned.arch.name} AP {metrics['AP']:.3f}")
                    bar.update()
            if requested():
                raise Interrupted(
                    requested(),
                    f"stopped after {finished} runs, the running ones finished and recorded; "
                    f"{len(todo) - finished} left: rerun the same command to continue",
                )
    finally:
        bar.close()
        if records.done:
            _write_outputs(run_dir, records, cfg)
        _record_session(run_dir, cfg, schedule, rule, started, finished, commit)
    print(f"table of {len({r['arch'] for r in records.done.values()})} architectures in {run_dir}")


@hydra.main(version_base="1.3", config_path="conf", config_name="ground_truth")
def main(cfg: DictConfig) -> None:
    with fail_clearly("ground_truth"):
        run(cfg)


if __name__ == "__main__":
    main()
