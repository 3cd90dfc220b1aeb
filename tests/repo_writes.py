"""What a test run wrote into the repository: the suite writes only under temporary folders.

An entry point's default output folder is relative to the working directory (``outputs/train/
<model>``, ``results/ground_truth``, ``outputs/search``), and the suite used to run the entry
points, and a few library calls with ``Path(".")``, from the repository root: a test run left
``outputs/`` behind, and a test without ``run_dir=`` could have rewritten the recorded
``results/``. ``conftest.py`` now runs every test from a scratch folder and compares two
:func:`snapshot` s of the repository, one taken before the session and one after it; a file that
appeared or changed fails the run, named.
"""

from __future__ import annotations

import os
from pathlib import Path

# What a test run may write inside the repository: caches of the tools themselves (Python's byte
# code, pytest's own cache, ruff's), the virtual environment and the editable install's metadata.
ALLOWED_DIRS = frozenset(
    {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
)  # fmt: skip
ALLOWED_SUFFIXES = (".egg-info",)
# Source files are left out: they are what a developer edits while a run is under way (the check
# flagged exactly that), and no test writes one; what tests write is data (csv, json, pt, db).
SOURCE_SUFFIXES = (".py",)

# Set to 0 to skip the comparison, e.g. while a job of your own writes into this checkout.
SWITCH = "POSEARCH_TEST_REPO_CHECK"


def _allowed(name: str) -> bool:
    return name in ALLOWED_DIRS or name.endswith(ALLOWED_SUFFIXES)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` outside the allowed caches: relative path -> (mtime_ns, size).
    Symbolic links are listed, not followed (``.venv`` is one in a worktree)."""
    files: dict[str, tuple[int, int]] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not _allowed(d)]
        for name in names:
            if name.endswith(SOURCE_SUFFIXES):
                continue
            path = Path(folder, name)
            try:
                stat = path.lstat()
            except FileNotFoundError:  # removed while we walked
                continue
            files[path.relative_to(root).as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return files


def written(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """The files of ``after`` that are new or changed since ``before``, sorted (a file deleted
    is not listed: the suite's own checks catch a lost fixture)."""
    return sorted(path for path, stat in after.items() if before.get(path) != stat)


def report(paths: list[str], limit: int = 20) -> str:
    shown = ", ".join(paths[:limit]) + (
        f" and {len(paths) - limit} more" if len(paths) > limit else ""
    )
    return (
        f"the test run wrote {len(paths)} file(s) into the repository: {shown}; a test must write "
        f"under tmp_path (the suite runs from a scratch folder; give run_dir= / out= there), or "
        f"set {SWITCH}=0 if something else wrote them"
    )
