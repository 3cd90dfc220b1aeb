"""Several search workers on one PostgreSQL-backed study.

The server is a throwaway one in a temporary folder, listening on a Unix socket only. It comes from
the ``pgserver`` wheel (PostgreSQL inside a PyPI package, in the test extra; as root it runs the
server as a system user that it creates, since PostgreSQL refuses to run as root) or, where that
wheel does not exist (Python 3.13+), from ``initdb`` / ``pg_ctl`` on the PATH or in Debian's
``/usr/lib/postgresql/*/bin``. No server means a failure, never a skip: CI must run this.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_search import _run_cli

N_TRIALS = 12
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # what the driver counts toward n_trials
NO_EXPORTS = ("exports=false",)  # per-budget ONNX exports would take most of the time


def _pgserver(pgdata: Path) -> tuple[str, Callable[[], None]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import pgserver

    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    info = server.get_postmaster_info()
    return f"host={info.socket_dir}&port={info.port}", server.cleanup


def _system_postgres(pgdata: Path) -> tuple[str, Callable[[], None]]:
    found = [shutil.which("pg_ctl")] + sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    found = [p for p in found if p]
    if not found:
        raise FileNotFoundError("no pg_ctl on the PATH nor in /usr/lib/postgresql/*/bin")
    bindir = Path(found[0]).parent
    user = "nobody" if os.geteuid() == 0 else None  # postgres refuses to run as root
    if user:
        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)

    def run(*args: str) -> None:
        subprocess.run(args, user=user, check=True, capture_output=True, text=True, timeout=60)

    run(str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust")
    options = f"-h '' -k {pgdata} -c fsync=off"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(pgdata),
        "-l",
        str(pgdata / "log"),
        "-o",
        options,
        "-w",
        "start",
    )

    def stop() -> None:
        run(str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "stop")
        shutil.rmtree(pgdata, ignore_errors=True)

    return f"host={pgdata}&port=5432", stop


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty PostgreSQL database (psycopg 3 driver)."""
    errors = []
    for start in (_pgserver, _system_postgres):
        pgdata = Path(tempfile.mkdtemp(prefix="posearch-pg-"))
        try:
            query, stop = start(pgdata)
            break
        except Exception as err:  # every way of failing is reported below
            detail = getattr(err, "stderr", "") or ""
            log = pgdata / "log"
            if log.exists():
                detail += log.read_text()[-2000:]
            errors.append(f"{start.__name__}: {err!r}\n{detail}")
            shutil.rmtree(pgdata, ignore_errors=True)
    else:
        pytest.fail(
            "could not start a PostgreSQL server (install the test extra, which brings pgserver, "
            "or PostgreSQL's server binaries):\n" + "\n".join(errors)
        )
    yield f"postgresql+psycopg://postgres@/postgres?{query}"
    stop()


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
