"""The settings that define an ``experiments.train`` run, and the check that a rerun keeps them.

A run folder holds one run. Its checkpoints store :func:`run_settings` (architecture, input size,
batch size, seed, data, starting weights); a rerun that changes any of them is refused, naming
the first that differs (``posetrain.resume.check_resume``), instead of resuming into a mix of two
runs or a ``load_state_dict`` traceback. :class:`ResumeCheck` runs the check as a Hydra callback,
when the run starts: before Hydra rewrites ``.hydra/`` in the folder and before ``arch.json``.

Everything is computed from the config alone (no data loaded), so the check takes a second. The
architecture is compared without its joint count (the data's, compared as the data).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from experiments.cli import fail_clearly
from experiments.data import dataset_settings
from experiments.families import arch_with
from experiments.starting_weights import init_fingerprint
from posetrain.resume import LABELS, check_resume
from search_space import ArchConfig, from_dict, to_dict

LAST = Path("checkpoints") / "last.pt"


def architecture_key(config: ArchConfig) -> str:
    """A hash of the architecture without ``num_joints`` (which the dataset sets)."""
    fields = {k: v for k, v in to_dict(config).items() if k != "num_joints"}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def run_settings(cfg: DictConfig) -> dict[str, Any]:
    """What defines the run ``cfg`` asks for, in the order a difference is reported."""
    sized = {"input_size": cfg.input_size} if cfg.input_size else {}
    config = arch_with(cfg.model, tag_dim=cfg.tag_dim, **sized)
    init = None
    if cfg.init:
        init = init_fingerprint(
            cfg.init, cfg.init_mode, cfg.init_scope, cfg.init_recalibration_batches
        )
    return {
        "input_size": config.input_size,
        "architecture": architecture_key(config),
        "batch_size": cfg.trainer.batch_size,
        "seed": cfg.trainer.seed,
        "dataset": dataset_settings(cfg.dataset),
        "init": init,
        LABELS: {"architecture": f"model={cfg.model}"},
    }


def settings_of_older_checkpoint(state: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint written before settings were stored still tells: its architecture
    and trainer settings; such runs always started from random weights."""
    saved: dict[str, Any] = {"init": None}
    if "arch" in state:
        config = from_dict(state["arch"])
        saved |= {"input_size": config.input_size, "architecture": architecture_key(config)}
    trainer = state.get("trainer_config", {})
    saved |= {k: trainer[k] for k in ("batch_size", "seed") if k in trainer}
    return saved


def check_train_resume(cfg: DictConfig, settings: dict[str, Any] | None = None) -> None:
    check_resume(
        Path(cfg.run_dir) / LAST, settings or run_settings(cfg), settings_of_older_checkpoint
    )


class ResumeCheck(Callback):
    """Hydra callback (``hydra.callbacks.resume._target_``): :func:`check_train_resume` when the
    run starts, before Hydra writes ``.hydra/`` into the run folder; a refusal is one line on
    stderr, exit status 2."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with fail_clearly(config.hydra.job.name):
            check_train_resume(config)
