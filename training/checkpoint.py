"""Checkpoints that survive a kill at any instant and fail loudly when damaged.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over
the old one: a kill mid-write leaves the previous checkpoint intact. Loading checks the format and
names the file and the fix when it is unreadable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

FORMAT = "posearch-checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        torch.save({"format": FORMAT, **state}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for truncated / foreign files
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a posearch checkpoint ({type(err).__name__}: "
            f"{err}); delete it to start over, or point at another checkpoint"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} is not a {FORMAT} file (found format "
            f"{state.get('format') if isinstance(state, dict) else type(state).__name__!r})"
        )
    return state
