"""Several search workers on one PostgreSQL-backed study.

The server is a throwaway one (``tests/storages.py``, through the ``postgres_url`` fixture of
``conftest.py``: a fresh database for each test). No server means a failure, never a skip: CI must
run this.
"""

from __future__ import annotations

from collections import Counter

import optuna
from optuna.trial import TrialState
from test_search import _run_cli

N_TRIALS = 12
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # what the driver counts toward n_trials
NO_EXPORTS = ("exports=false",)  # per-budget ONNX exports would take most of the time


def test_two_workers_finish_n_trials_between_them_without_duplicates(postgres_url, tmp_path):
    # Both workers keep the default seed, so their samplers propose the same candidates at the same
    # moments: the hardest case for de-duplication and for the shared trial count.
    storage = f"storage='{postgres_url}'"  # quoted: Hydra would split the URL's '=' and '&'
    workers = [
        _run_cli(tmp_path / f"worker{i}", N_TRIALS, storage, "study_name=shared", *NO_EXPORTS)
        for i in range(2)
    ]
    try:
        logs = [w.communicate(timeout=240) for w in workers]
    finally:
        for w in workers:
            w.kill()
    for w, (_, err) in zip(workers, logs, strict=True):
        assert w.returncode == 0, err

    trials = optuna.load_study(study_name="shared", storage=postgres_url).trials
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == N_TRIALS, Counter(t.state.name for t in trials)
    assert not [t for t in trials if not t.state.is_finished()], "no trial may be left running"

    per_worker = Counter(t.user_attrs["worker"] for t in finished)
    assert len(per_worker) == 2 and min(per_worker.values()) >= 1, per_worker

    scored = [
        t for t in finished if "params" in t.user_attrs and "duplicate_of" not in t.user_attrs
    ]
    hashes = Counter(t.user_attrs["hash"] for t in scored)
    assert scored, "no trial was scored"
    assert max(hashes.values()) == 1, f"architectures scored twice: {hashes}"
    by_number = {t.number: t for t in trials}
    for t in finished:
        if "duplicate_of" in t.user_attrs:
            original = by_number[t.user_attrs["duplicate_of"]]
            assert original.user_attrs["hash"] == t.user_attrs["hash"]
            assert original.values[0] == t.values[0]


def test_submitit_local_multirun_workers_finish_n_trials_between_them(postgres_url, tmp_path):
    # One Hydra multirun, the sweep over run_dir making two jobs that hydra-submitit-launcher
    # starts as local processes, both on the one PostgreSQL study.
    runs = [tmp_path / f"worker{i}" for i in range(2)]
    sweep = tmp_path / "multirun"
    launcher = _run_cli(
        f"{runs[0]},{runs[1]}",
        N_TRIALS,
        "+launcher=submitit_local",
        f"hydra.sweep.dir={sweep}",
        f"storage='{postgres_url}'",
        "study_name=submitit",
        *NO_EXPORTS,
        multirun=True,
    )
    try:
        out, err = launcher.communicate(timeout=300)
    finally:
        launcher.kill()
    logs = "\n".join(p.read_text() for p in sorted(sweep.glob(".submitit/*/*.err")))
    assert launcher.returncode == 0, err + logs
    trials = optuna.load_study(study_name="submitit", storage=postgres_url).trials
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == N_TRIALS, Counter(t.state.name for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2, "both jobs must have run trials"
    for run in runs:  # each job wrote the study's table in its own run_dir
        assert (run / "trials.csv").exists(), logs
