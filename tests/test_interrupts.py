"""Runs repeated, killed or interrupted through the commands a user types (docs/reliability.md).

Training is bit-reproducible on CPU: the same command twice gives the same weights, and so does
a run stopped by SIGKILL, SIGINT or SIGTERM and rerun (it resumes from ``last.pt``). A search
stopped by SIGINT or SIGTERM keeps and tabulates its finished trials.
"""

import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import commands
import optuna
import pandas as pd
import pytest
import torch

from posenets.checkpoint import load_checkpoint

optuna.logging.set_verbosity(optuna.logging.WARNING)
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


SUPERNET = [
    "threads=1",
    "space.resolutions=[32,64]",
    "sandwich.num_random=1",
    "report=false",
    "recalibrate_batches=1",
    *[o for o in TRAIN if not o.startswith("input_size=")],
]


def _train(run_dir: Path, data: Path, command: str = "train") -> commands.Started:
    options = TRAIN if command == "train" else SUPERNET
    return commands.start(command, f"run_dir={run_dir}", f"dataset.root={data}", *options)


def _finish(proc: commands.Started) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _when_checkpointed(proc: commands.Started, run_dir: Path, timeout: float = 120) -> None:
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


def _reference(folder: Path, command: str) -> tuple[Path, dict]:
    """The synthetic data and the final state of an uninterrupted run of ``command``."""
    run = _finish(_train(folder / "run", folder / "data", command))
    assert run.returncode == 0, run.stderr[-2000:]
    return folder / "data", _final_state(folder / "run")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict]:
    return _reference(tmp_path_factory.mktemp("reference"), "train")


@pytest.fixture(scope="module")
def supernet_reference(tmp_path_factory) -> tuple[Path, dict]:
    return _reference(tmp_path_factory.mktemp("supernet_reference"), "train_supernet")


def test_training_twice_gives_the_same_weights(reference, tmp_path):
    data, state = reference
    again = _finish(_train(tmp_path / "run", data))
    assert again.returncode == 0, again.stderr[-2000:]
    _assert_identical(state, _final_state(tmp_path / "run"))


@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name
)
def test_training_stopped_and_resumed_gives_the_same_weights(reference, tmp_path, sig):
    """SIGKILL resumes from the last periodic checkpoint; SIGINT / SIGTERM finish the step under
    way, save it and exit 128 + signal with one line naming the step."""
    data, state = reference
    run_dir = tmp_path / "run"
    stopped = _train(run_dir, data)
    _when_checkpointed(stopped, run_dir)
    stopped.send_signal(sig)
    result = _finish(stopped)
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"]
    assert 0 < saved < STEPS, "the signal should land mid-run"
    if sig != signal.SIGKILL:
        assert result.returncode == 128 + sig, result.stderr[-2000:]
        assert "Traceback" not in result.stderr, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"train interrupted: {sig.name}: training stopped after step "), last
        assert f"step {saved} of {STEPS}" in last, (saved, last)
    resumed = _finish(_train(run_dir, data))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_identical(state, _final_state(run_dir))


SEARCH = ["n_trials=400", "progress=false", "budget=5.0G"]
SHORT_TRAIN = [
    "proxy=short_train",
    "+proxy_options.steps=500",  # far more than the test waits for: the signal lands mid-training
    "+proxy_options.batch_size=2",
    "dataset.synthetic.num_train=8",
    "dataset.synthetic.num_val=3",
    "latency_runs=0",
    "seed_paper_models=false",
]


def _trials(run_dir: Path) -> list:
    storage = f"sqlite:///{run_dir / 'study.db'}"
    return optuna.load_study(study_name="posearch", storage=storage).trials


def _when_scoring(
    proc: commands.Started, run_dir: Path, finished: int, timeout: float = 120
) -> int:
    """Wait until ``finished`` trials are done and another has reached its proxy: its number."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, _finish(proc).stderr[-2000:]
        assert time.monotonic() < deadline, "the search did not get going"
        time.sleep(0.1)
        try:
            trials = _trials(run_dir)
        except Exception:  # the study is not created yet
            continue
        done = sum(t.state.is_finished() for t in trials)
        scoring = [
            t.number for t in trials if t.state.name == "RUNNING" and "params" in t.user_attrs
        ]
        if done >= finished and scoring:
            return scoring[0]


@pytest.mark.parametrize(
    "sig, overrides, trial_ends",
    [
        (signal.SIGINT, ["proxy=params"], "COMPLETE"),
        (signal.SIGTERM, SHORT_TRAIN, "FAIL"),
    ],
    ids=["SIGINT-trial-finishes", "SIGTERM-training-trial-fails"],
)
def test_interrupted_search_keeps_its_finished_trials(tmp_path, sig, overrides, trial_ends):
    """The running trial finishes (a quick proxy) or fails (a proxy that trains, stopped after a
    step); no other starts; the tables hold every trial; exit 128 + signal, one line."""
    run_dir = tmp_path / "search"
    proc = commands.start(
        "search", f"run_dir={run_dir}", f"dataset.root={tmp_path / 'data'}", *SEARCH, *overrides
    )
    finished = 1 if trial_ends == "COMPLETE" else 0
    running = _when_scoring(proc, run_dir, finished)
    signalled = datetime.now()  # Optuna stamps trials with the local time
    proc.send_signal(sig)
    result = _finish(proc)
    assert result.returncode == 128 + sig, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    trials = _trials(run_dir)
    done = sum(t.state.name == "COMPLETE" for t in trials)
    assert last.startswith(f"search interrupted: {sig.name}: search stopped after {done} "), last
    late = [t.number for t in trials if t.datetime_start and t.datetime_start > signalled]
    assert not late, f"trials {late} started after the signal"
    assert trials[running].state.name == trial_ends
    assert "RUNNING" not in {t.state.name for t in trials}
    table = pd.read_csv(run_dir / "trials.csv")
    assert list(table["number"]) == [t.number for t in trials]
    assert list(table["state"]) == [t.state.name for t in trials]
    assert (run_dir / "pareto.csv").exists() and not (run_dir / "exports").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_supernet_training_interrupted_and_resumed_gives_the_same_weights(
    supernet_reference, tmp_path, sig
):
    """train_supernet stops as train does: after the sandwich step under way, last.pt written,
    one line naming the step, exit 128 + signal; the rerun resumes and ends where an
    uninterrupted run ends."""
    data, state = supernet_reference
    run_dir = tmp_path / "run"
    stopped = _train(run_dir, data, "train_supernet")
    _when_checkpointed(stopped, run_dir)
    stopped.send_signal(sig)
    result = _finish(stopped)
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"]
    assert 0 < saved < STEPS, "the signal should land mid-run"
    assert result.returncode == 128 + sig, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"train_supernet interrupted: {sig.name}: training stopped after "), last
    assert f"step {saved} of {STEPS}" in last, (saved, last)
    resumed = _finish(_train(run_dir, data, "train_supernet"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from {run_dir / 'checkpoints' / 'last.pt'} at step {saved}" in resumed.stdout
    _assert_identical(state, _final_state(run_dir))
