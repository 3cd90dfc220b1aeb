"""Shared fixtures; tests/ is importable so that the toy training scripts serve as modules."""

import os
import sys
from pathlib import Path

import pytest

# Tiny models gain nothing from threads, and the tests that spawn trainers (torchrun, the CLI)
# would oversubscribe the cores: OpenMP's busy-waiting made the suite 30% slower on 2 cores.
# Set before anything imports torch; child processes inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

SHARED_DATA = TESTS.parents[1] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real COCO / CrowdPose fixtures in ../shared/data beside the checkout."""
    if not SHARED_DATA.is_dir():
        raise FileNotFoundError(
            f"real fixtures are missing: expected {SHARED_DATA} (the shared/ folder beside the "
            "repository checkout)"
        )
    return SHARED_DATA


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
