"""Training every model of a shrinking path, each in its own resumable ``experiments.train`` run.

Each step trains in a child process (``python -m experiments.train model=<arch file>
run_dir=<run_dir>/train/<step> input_size=<size> <train_args>``), so a step gets exactly the
recipe, checkpoints, resume and evaluation of a standalone training run, and its memory is freed
before the next step starts. A finished step leaves ``result.json`` and is not trained again;
an interrupted one resumes from its ``last.pt`` when the command is rerun.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from posecore.errors import UserError
from shrinking import ShrinkPath

AP_COLUMNS = ("AP", "AP50", "AP75", "AR")


class StepTrainingError(UserError, RuntimeError):
    pass


def train_step(
    name: str, arch_file: Path, run_dir: Path, input_size: int, train_args: list[str]
) -> dict:
    """Train one step (or reuse its finished run) and return its final validation scores."""
    result_file = run_dir / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    command = [
        sys.executable,
        "-m",
        "experiments.train",
        f"model={arch_file.resolve()}",
        f"run_dir={run_dir.resolve()}",
        f"input_size={input_size}",
        *train_args,
    ]
    print(f"[{name}] {' '.join(command[1:])}", flush=True)
    finished = subprocess.run(command)
    if finished.returncode != 0:
        raise StepTrainingError(
            f"training step {name!r} failed (exit {finished.returncode}); its output is above and "
            f"its run folder is {run_dir}. Fix the cause and rerun the same command: finished "
            "steps are kept and this one resumes from its last checkpoint."
        )
    evaluations = pd.read_csv(run_dir / "eval.csv")
    final = evaluations.iloc[-1]
    result = {
        "train_steps": int(final["step"]),
        **{f"final_{key}": float(final[key]) for key in AP_COLUMNS if key in final},
        "best_AP": float(evaluations["AP"].max()),
    }
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


def train_path(
    path: ShrinkPath, run_dir: Path, input_size: int, train_args: list[str]
) -> list[dict]:
    """One result per step of ``path``, in order; arch files must exist in ``run_dir/arch``."""
    results = []
    for step in path.steps:
        arch_file = run_dir / "arch" / f"{step.name}.json"
        results.append(
            train_step(step.name, arch_file, run_dir / "train" / step.name, input_size, train_args)
        )
    return results
