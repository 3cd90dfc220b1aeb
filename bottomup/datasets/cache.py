"""Build a folder once, atomically: a killed build never leaves a folder that looks complete.

The folder is built under a temporary name beside the target, a marker file is written last, and
only then is it renamed into place. A target without the marker (an interrupted build of an older
version) is moved aside and replaced; when two processes race, the first rename wins and the loser
throws its copy away, so readers only ever see complete folders.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from bottomup.datasets.coco_format import DatasetError

COMPLETE_MARKER = "COMPLETE.json"


class FolderNotWritable(DatasetError):
    """The place of a folder to build refuses it; callers name the setting that chose the place."""

    def __init__(self, folder: Path, reason: str):
        super().__init__(f"{folder}: cannot write there ({reason})")
        self.folder, self.reason = folder, reason


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def build_once(target: str | Path, build: Callable[[Path], object], stamp: dict) -> Path:
    """``target`` after ``build(tmp_folder)`` has filled it, unless it is complete already.

    ``stamp`` (JSON-able) is written into the marker file, to say what the folder holds."""
    target = Path(target)
    if is_complete(target):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    except OSError as err:
        raise FolderNotWritable(target.parent, err.strerror or type(err).__name__) from None
    try:
        build(tmp)
        (tmp / COMPLETE_MARKER).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
        _move_into_place(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _move_into_place(tmp: Path, target: Path) -> None:
    try:
        os.rename(tmp, target)
        return
    except OSError:
        if is_complete(target):  # another process finished first: keep theirs
            return
    # An incomplete leftover (no marker): move it aside, then take its place.
    stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale-", dir=target.parent))
    os.rename(target, stale / "old")
    shutil.rmtree(stale, ignore_errors=True)
    os.rename(tmp, target)
