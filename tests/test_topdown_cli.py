"""The top-down family through the same commands as the others: train, evaluate, export."""

import json
import subprocess

import commands
import numpy as np
import onnxruntime as ort
from test_train_cli import TINY as BOTTOM_UP_TINY

from search_space import load_arch

# The bottom-up tiny run's settings (64-px square crops suit the encoder's 1/32), this model.
TINY = [*BOTTOM_UP_TINY, "model=rethinking_mobile_demo"]
DATA = [o for o in BOTTOM_UP_TINY if o.startswith("dataset.")]


def _run(command: str, *overrides: str) -> subprocess.CompletedProcess:
    return commands.run(command, *overrides, timeout=300)


def test_train_evaluate_and_export_a_topdown_model(tmp_path):
    run_dir, data = tmp_path / "run", f"dataset.root={tmp_path / 'data'}"
    trained = _run("train", f"run_dir={run_dir}", data, *TINY)
    assert trained.returncode == 0, trained.stderr[-2000:]
    config = load_arch(run_dir / "arch.json")
    assert config.family == "topdown" and config.input_size == (64, 64)
    assert config.num_joints == 14  # the synthetic data's CrowdPose layout
    checkpoint = f"checkpoint={run_dir / 'checkpoints' / 'last.pt'}"
    evaluated = _run("evaluate", checkpoint, data, *DATA, "format=json")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    stats = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert set(stats) >= {"AP", "AP_easy"} and 0.0 <= stats["AP"] <= 1.0
    out = tmp_path / "export"
    exported = _run("export", checkpoint, f"out={out}", "precision=int8", data, *DATA,
                    "calibration_images=2")  # fmt: skip
    assert exported.returncode == 0, exported.stderr[-2000:]
    for name in ("model.onnx", "model.int8.onnx"):
        session = ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
        (heatmaps,) = session.run(None, {"image": np.zeros((3, 3, 64, 64), np.float32)})
        assert heatmaps.shape == (3, 14, 16, 16)


def test_distillation_is_refused_for_a_topdown_model(tmp_path):
    done = _run("train", f"run_dir={tmp_path / 'run'}", f"dataset.root={tmp_path / 'data'}",
                *TINY, f"teacher={tmp_path / 'teacher.pt'}")  # fmt: skip
    assert done.returncode == 2
    assert "teacher= (distillation) is for the bottom-up families" in done.stderr
