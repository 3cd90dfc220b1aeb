"""The warm runner of the entry-point tests (``tests/commands.py``) behaves as ``python -m``."""

import signal
import subprocess
import sys

import commands


def _fresh(command: str, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"experiments.{command}", *overrides],
        cwd=commands.REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_warm_run_prints_and_exits_as_a_fresh_interpreter_does():
    overrides = ["format=json", "presets=litepose_xs"]
    warm, fresh = commands.run("describe", *overrides), _fresh("describe", *overrides)
    assert (warm.returncode, warm.stdout) == (fresh.returncode, fresh.stdout)
    assert fresh.returncode == 0 and '"name": "litepose_xs"' in fresh.stdout
    failed = commands.run("describe", "presets=litepose_xxl")  # one clear line, exit 2
    assert failed.returncode == 2 and failed.stdout == ""
    assert failed.stderr.splitlines()[-1].startswith("describe failed: ")


def test_a_run_works_in_its_own_directory_with_its_own_arguments(tmp_path):
    first = commands.run("make_synthetic", "out=data", "num_train=1", "num_val=1",
                         "image_size=64", "progress=false", cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "data" / "COMPLETE.json").is_file()
    again = commands.run("make_synthetic", "out=/proc/posearch", cwd=tmp_path)
    assert again.returncode == 2 and "out=/proc/posearch" in again.stderr.splitlines()[-1]


def test_a_started_run_can_be_signalled_and_reports_the_signal(tmp_path):
    started = commands.start(
        "make_synthetic", f"out={tmp_path / 'data'}", "num_train=100000", "progress=false"
    )
    started.send_signal(signal.SIGKILL)
    started.communicate(timeout=60)
    assert started.returncode == -signal.SIGKILL
