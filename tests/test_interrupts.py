"""Runs repeated, killed or interrupted through the commands a user types (docs/reliability.md).

Training is bit-reproducible on CPU: the same command twice gives the same weights, and so does
a run killed with SIGKILL and rerun (it resumes from ``last.pt``).
"""

import subprocess
import sys
import time
from pathlib import Path

import torch

from training.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
STEPS = 8
TRAIN = [
    "input_size=64",
    "trainer.epochs=1",
    f"trainer.max_steps={STEPS}",
    "trainer.batch_size=4",
    "trainer.num_workers=0",
    "trainer.checkpoint_every=2",
    "trainer.progress=false",
    "eval_flip=false",
    "eval_max_images=2",
    "dataset.synthetic.num_train=32",
    "dataset.synthetic.num_val=2",
    "dataset.synthetic.image_size=64",
]


def _train(run_dir: Path, data: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.train", f"run_dir={run_dir}", f"dataset.root={data}"]
        + TRAIN,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _when_checkpointed(proc: subprocess.Popen, run_dir: Path, timeout: float = 120) -> None:
    """Wait until the run has written its first ``last.pt`` (step 2 of 8)."""
    last = run_dir / "checkpoints" / "last.pt"
    deadline = time.monotonic() + timeout
    while not last.exists():
        assert proc.poll() is None, _finish(proc).stderr[-2000:]
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.01)


def _final_state(run_dir: Path) -> dict:
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["step"] == STEPS
    return state


def _assert_identical(a: dict, b: dict) -> None:
    assert a["model"].keys() == b["model"].keys()
    differing = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    assert not differing, f"{len(differing)} of {len(a['model'])} tensors differ: {differing[:3]}"
    moments = [
        (name, key)
        for key, slot in a["optimizer"]["state"].items()
        for name, value in slot.items()
        if not torch.equal(value, b["optimizer"]["state"][key][name])
    ]
    assert not moments, f"optimizer state differs: {moments[:3]}"


def test_training_twice_or_killed_and_resumed_gives_the_same_weights(tmp_path):
    data = tmp_path / "data"
    first = _finish(_train(tmp_path / "a", data))
    assert first.returncode == 0, first.stderr[-2000:]
    again = _finish(_train(tmp_path / "b", data))
    assert again.returncode == 0, again.stderr[-2000:]
    _assert_identical(_final_state(tmp_path / "a"), _final_state(tmp_path / "b"))

    killed = _train(tmp_path / "c", data)
    _when_checkpointed(killed, tmp_path / "c")
    killed.kill()  # SIGKILL: no handler runs
    killed.wait()
    saved = load_checkpoint(tmp_path / "c" / "checkpoints" / "last.pt")["step"]
    assert 0 < saved < STEPS, "the kill should land mid-run"
    resumed = _finish(_train(tmp_path / "c", data))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_identical(_final_state(tmp_path / "a"), _final_state(tmp_path / "c"))
