"""Checkpoints that survive a kill at any instant and fail loudly when damaged.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over
the old one: a kill mid-write leaves the previous checkpoint intact. Loading checks the format and
names the file and the fix when it is unreadable. The format lives here, below ``posetrain``,
because standalone model folders (``posenets.io``) store their weights in it too.

Every file is read with ``torch.load(weights_only=True)`` (:func:`read_torch_file`): a checkpoint
may come from anywhere, and a full unpickler runs whatever code the file names. What posearch
saves (tensors, numbers, strings, lists, dicts, optimizer and scheduler state) needs nothing
beyond what that loader accepts, so no extra globals are allowed.
"""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from posecore.errors import UserError

FORMAT = "posearch-checkpoint-v1"


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file that cannot be used."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save({"format": FORMAT, **state}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:  # a full disk, a kill: no partial file, the old one kept
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            kept = "the previous one is kept" if path.exists() else "nothing was written"
            raise CheckpointError(
                f"cannot write checkpoint {path} ({err.strerror}; {kept}): free some space "
                "and rerun the same command to resume"
            ) from None
        raise
    return path


def read_torch_file(path: Path, what: str, fix: str) -> object:
    """The contents of a ``torch.save`` file, read without running code: tensors and plain data
    only. A file that names any other object is refused unread, a damaged one named as such;
    ``fix`` (what the user can do) ends the message."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line]
        if refused:
            raise CheckpointError(
                f"{what} {path} cannot be read as plain tensors: it holds pickled objects "
                f"({refused[0]}), and unpickling them could run code, so it was not loaded; {fix}"
            ) from None
        raise _damaged(path, what, err, fix) from None
    except Exception as err:  # torch raises several types for truncated / foreign files
        raise _damaged(path, what, err, fix) from None


def _damaged(path: Path, what: str, err: Exception, fix: str) -> CheckpointError:
    first = next((line for line in str(err).splitlines() if line.strip()), "")
    return CheckpointError(
        f"{what} {path} is corrupt or not a PyTorch file ({type(err).__name__}: {first}); {fix}"
    )


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    state = read_torch_file(
        path, "checkpoint", "delete it to start over, or point at another checkpoint"
    )
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} is not a {FORMAT} file (found format "
            f"{state.get('format') if isinstance(state, dict) else type(state).__name__!r})"
        )
    return state
