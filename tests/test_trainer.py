"""The trainer: exact resume after a real kill, two-process gloo DDP, NaN guard, corrupt files."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import torchrun

from posenets.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from posetrain.sampler import ResumableSampler
from posetrain.trainer import Trainer, TrainerConfig, TrainingDiverged

REPO = Path(__file__).resolve().parents[1]
TOY = REPO / "tests" / "toy_training.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _toy(run_dir: Path, steps: int = 12) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(TOY), str(run_dir), str(steps)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _weights(run_dir: Path, rank: int = 0) -> dict:
    return torch.load(run_dir / f"weights-rank{rank}.pt")


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    full = tmp_path / "full"
    assert _toy(full).wait(timeout=120) == 0
    killed = tmp_path / "killed"
    proc = _toy(killed)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill -9 once a mid-run checkpoint (step >= 4) exists
        last = killed / "checkpoints" / "last.pt"
        if last.exists():
            try:
                if load_checkpoint(last)["step"] >= 4:
                    break
            except CheckpointError:
                pass
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "weights-rank0.pt").exists(), "the run finished before it was killed"
    step_at_kill = load_checkpoint(killed / "checkpoints" / "last.pt")["step"]
    assert 4 <= step_at_kill < 12
    assert _toy(killed).wait(timeout=120) == 0
    a, b = _weights(full), _weights(killed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    steps_logged = [
        int(line.split(",")[0]) for line in (killed / "metrics.csv").read_text().splitlines()[1:]
    ]
    assert steps_logged == list(range(1, 13)), "resumed log must have each step exactly once"


def test_two_process_gloo_ddp_keeps_ranks_identical(tmp_path):
    result = torchrun(TOY, str(tmp_path), "5", env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    w0, w1 = _weights(tmp_path, 0), _weights(tmp_path, 1)
    for key in w0:
        assert torch.equal(w0[key], w1[key]), key
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 5


def test_ranks_see_disjoint_shards_of_one_epoch():
    shards = [list(ResumableSampler(16, 4, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(16))
    sampler = ResumableSampler(20, 4, seed=3)
    sampler.set_position(epoch=1, start_batch=2)
    assert list(sampler) == list(sampler.epoch_indices(1))[8:]


class _NanLoss(torch.nn.Module):
    def forward(self, outputs, targets):
        return {"loss": outputs[0].sum() * float("nan")}


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    from toy_training import ToyData, ToyLoss, ToyNet

    config = TrainerConfig(epochs=1, max_steps=2, batch_size=4, progress=False)
    Trainer(ToyNet(), ToyLoss(), ToyData(), config, tmp_path).fit()
    good = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    config = TrainerConfig(epochs=2, batch_size=4, progress=False)
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        Trainer(ToyNet(), _NanLoss(), ToyData(), config, tmp_path).fit()
    after = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert after["step"] == good["step"]
    for key, value in good["model"].items():
        assert torch.equal(value, after["model"][key])


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)
    assert load_checkpoint(path)["step"] == 1
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)
    torch.save({"weights": 1}, path)
    with pytest.raises(CheckpointError, match="not a posearch-checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_bad_trainer_settings_name_the_field():
    with pytest.raises(ValueError, match="trainer.schedule"):
        TrainerConfig(schedule="linear")
    with pytest.raises(ValueError, match="trainer.batch_size"):
        TrainerConfig(batch_size=0)
