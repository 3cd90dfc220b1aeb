"""Shared fixtures; tests/ is importable so that the toy training scripts serve as modules."""

import sys
from pathlib import Path

import pytest

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
