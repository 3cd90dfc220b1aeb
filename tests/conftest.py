"""Shared fixtures; tests/ is importable so that the toy training scripts serve as modules."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# Tiny models gain nothing from threads, and the tests that spawn trainers (torchrun, the CLI)
# would oversubscribe the cores: OpenMP's busy-waiting made the suite 30% slower on 2 cores.
# Set before anything imports torch; child processes inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import repo_writes  # noqa: E402 (tests/ is on the path from here)
from storages import STORAGES, file_storage_url  # noqa: E402

# Every interpreter a test starts imports this checkout's code wherever it runs (an editable
# install may point at another checkout): the tests run from a scratch folder, below.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="session", autouse=True)
def scratch_working_directory():
    """Every test runs from a scratch folder, removed afterwards: an entry point's default output
    folder (``outputs/...``, ``results/ground_truth``) or a library call given ``Path(".")`` lands
    there, never in the repository (``tests/repo_writes.py``)."""
    before = Path.cwd()
    folder = Path(tempfile.mkdtemp(prefix="posearch-tests-"))
    os.chdir(folder)
    yield folder
    os.chdir(before)
    shutil.rmtree(folder, ignore_errors=True)


_BEFORE = pytest.StashKey[dict]()


def _checks_the_repository(config) -> bool:
    """The one process that sees the whole session (not an xdist worker), unless switched off."""
    return not hasattr(config, "workerinput") and os.environ.get(repo_writes.SWITCH) != "0"


def pytest_sessionstart(session):
    if _checks_the_repository(session.config):
        session.config.stash[_BEFORE] = repo_writes.snapshot(REPO)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run, naming the files, if it wrote into the repository."""
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    paths = repo_writes.written(before, repo_writes.snapshot(REPO))
    if paths:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = repo_writes.report(paths)
        if reporter is not None:
            reporter.write("\n")
            reporter.write_line(f"ERROR: {message}", red=True)
        else:
            print(f"ERROR: {message}", file=sys.stderr)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


# Copies of the real COCO / CrowdPose fixtures (4 COCO images, 2 CrowdPose images, 300 CrowdPose
# val annotations, golden numbers; each folder's SOURCE.md says where they come from), kept in the
# repository so that the suite passes in a clone anywhere.
REAL_DATA = TESTS / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real COCO / CrowdPose fixtures (``tests/data``)."""
    missing = [
        name
        for name in ("coco_kpt_mini", "crowdpose_mini", "crowdpose_valsub")
        if not (REAL_DATA / name).is_dir()
    ]
    if missing:
        raise FileNotFoundError(f"real fixtures {missing} are missing from {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server for the session (``storages.start_postgres``). None
    started is a failure naming why (every attempt's error), never a skip."""
    from storages import NoPostgres, start_postgres

    try:
        server = start_postgres()
    except NoPostgres as err:
        pytest.fail(str(err), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """SQLAlchemy URL of a fresh, empty PostgreSQL database on the session's server."""
    return postgres_server.database()


@pytest.fixture(params=STORAGES)
def storage_url(request, tmp_path) -> str:
    """A fresh study storage of each kind the search supports, one test run per kind: the
    test body is written once and runs on every backend (as Optuna's storage tests do)."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return file_storage_url(request.param, tmp_path)


def free_port() -> int:
    """A free TCP port on the loopback, for torchrun's rendezvous in tests."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(script: Path, *args: str, env: dict, timeout: int = 300):
    """Run ``script`` under torchrun with two CPU processes."""
    import subprocess

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        str(script),
        *args,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
