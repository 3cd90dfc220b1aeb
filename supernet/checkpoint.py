"""Supernet checkpoints carry the largest architecture, so they rebuild without other input."""

from __future__ import annotations

from pathlib import Path

from models.checkpoint import CheckpointError, load_checkpoint
from search_space import LitePoseConfig, from_dict, to_dict
from supernet.litepose_supernet import LitePoseSupernet

SUPERNET_KEY = "supernet_arch"


def supernet_state(net: LitePoseSupernet) -> dict:
    """Extra checkpoint entries that let :func:`load_supernet` rebuild ``net``."""
    return {SUPERNET_KEY: to_dict(net.largest), "supernet_kernels": list(net.kernel_sizes)}


def load_supernet(path: str | Path) -> LitePoseSupernet:
    state = load_checkpoint(path)
    if SUPERNET_KEY not in state:
        raise CheckpointError(
            f"checkpoint {path} is not a supernet checkpoint (no "
            f"'{SUPERNET_KEY}'); train one with experiments.train_supernet"
        )
    largest = from_dict(state[SUPERNET_KEY])
    if not isinstance(largest, LitePoseConfig):
        raise CheckpointError(f"checkpoint {path}: the supernet architecture must be litepose")
    net = LitePoseSupernet(largest, tuple(state["supernet_kernels"]))
    net.load_state_dict(state["model"])
    return net
