"""A sampler whose order is a pure function of (seed, epoch), sharded by rank, resumable mid-epoch.

Exact resume needs the batches after a restart to be exactly those an uninterrupted run would have
seen next. The order of epoch e is a permutation drawn from (seed, e); rank r of W takes every W-th
index (padded by wrapping, so every rank runs the same number of steps, as DDP requires); and
``start_batch`` skips the batches already consumed.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ):
        if dataset_size < 1:
            raise ValueError("ResumableSampler: the dataset is empty")
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.epoch = 0
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        """Full batches per rank per epoch (the last, partial batch is dropped)."""
        per_rank = -(-self.dataset_size // self.world_size)
        return max(per_rank // self.batch_size, 1)

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """This rank's indices of ``epoch``, in order, before skipping."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.dataset_size)
        else:
            order = np.arange(self.dataset_size)
        per_rank = -(-self.dataset_size // self.world_size)
        total = per_rank * self.world_size
        order = np.resize(order, total)  # wrap to an equal share per rank
        mine = order[self.rank :: self.world_size]
        needed = self.batches_per_epoch * self.batch_size
        return np.resize(mine, needed)

    def __iter__(self) -> Iterator[int]:
        indices = self.epoch_indices(self.epoch)[self.start_batch * self.batch_size :]
        return iter(int(i) for i in indices)

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size
