"""A tiny supernet training job for the tests (also run as a script, plain or under torchrun).

python tests/toy_supernet_training.py RUN_DIR [MAX_STEPS]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.data import Dataset

from bottomup.losses import BottomUpLoss
from posetrain.distributed import init_distributed, shutdown
from posetrain.trainer import Trainer, TrainerConfig
from search_space.presets import litepose
from search_space.space import LitePoseSpace
from supernet import LitePoseSupernet
from supernet.training import SandwichStep, resolution_for_batch

K = 14
RESOLUTIONS = (32, 64)


def small_space() -> LitePoseSpace:
    largest = litepose(64, 16, (16, 16, 24, 24), (16, 16, 16), depths=(2, 2, 2, 2))
    return LitePoseSpace(largest=largest, depth_reductions=(0, 1), resolutions=RESOLUTIONS)


class RandomPoseTargets(Dataset):
    """Random images and targets at the batch's resolution, a pure function of the key."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, key):
        epoch, index, size = key
        g = torch.Generator().manual_seed(1000 * epoch + index)
        q, h = size // 4, size // 2
        return {
            "image": torch.randn(3, size, size, generator=g),
            "heatmaps_quarter": torch.rand(K, q, q, generator=g),
            "masks_quarter": torch.ones(q, q),
            "heatmaps_half": torch.rand(K, h, h, generator=g),
            "masks_half": torch.ones(h, h),
            "joints": torch.stack(
                [
                    torch.randint(0, q * q, (4, K), generator=g),
                    torch.randint(0, 2, (4, K), generator=g),
                ],
                dim=-1,
            ),
        }


def run(run_dir: str, max_steps: int = 3) -> None:
    ctx = init_distributed("cpu")
    torch.manual_seed(0)
    space = small_space()
    net = LitePoseSupernet(space.largest)
    config = TrainerConfig(
        epochs=10, max_steps=max_steps, batch_size=2, lr=1e-3, progress=False, log_every=1
    )
    step = SandwichStep(net, space, BottomUpLoss(K), num_random=1, seed=config.seed)
    trainer = Trainer(
        net,
        BottomUpLoss(K),
        RandomPoseTargets(),
        config,
        run_dir,
        ctx=ctx,
        step=step,
        batch_extra=resolution_for_batch(RESOLUTIONS, config.seed),
    )
    trainer.fit()
    torch.save(net.state_dict(), Path(run_dir) / f"weights-rank{ctx.rank}.pt")
    shutdown(ctx)


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
