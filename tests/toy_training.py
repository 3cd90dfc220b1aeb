"""A tiny, self-contained training job for the trainer's tests (also run as a script).

    python tests/toy_training.py RUN_DIR [MAX_STEPS]      # plain or under torchrun

Trains a two-conv model on random data with the real Trainer and writes the final weights to
RUN_DIR/weights-rank{R}.pt.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from posetrain.distributed import init_distributed, shutdown
from posetrain.trainer import Trainer, TrainerConfig


class ToyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.quarter = nn.Conv2d(8, 4, 1)
        self.half_head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        f = self.body(x)
        return [self.quarter(f), self.half_head(f)]


class ToyLoss(nn.Module):
    def forward(self, outputs, targets):
        quarter, half = outputs
        loss = (quarter - targets["q"]).square().mean() + (half - targets["h"]).square().mean()
        return {"loss": loss}


class ToyData(Dataset):
    """Items depend only on (epoch, index): augmentation noise included, as the trainer needs."""

    def __len__(self) -> int:
        return 20

    def __getitem__(self, key):
        epoch, index, _ = key
        g = torch.Generator().manual_seed(index)
        image = torch.randn(3, 8, 8, generator=g)
        noise = torch.Generator().manual_seed(1000 * epoch + index)
        image = image + 0.1 * torch.randn(3, 8, 8, generator=noise)
        return {"image": image, "q": image[:2].repeat(2, 1, 1), "h": image[:2]}


def run(run_dir: str, max_steps: int = 12, checkpoint_every: int = 1) -> dict:
    ctx = init_distributed("cpu")
    torch.manual_seed(0)
    config = TrainerConfig(
        epochs=100,
        max_steps=max_steps,
        batch_size=4,
        lr=1e-2,
        checkpoint_every=checkpoint_every,
        progress=False,
        log_every=1,
    )
    trainer = Trainer(ToyNet(), ToyLoss(), ToyData(), config, run_dir, ctx=ctx)
    trainer.fit()
    state = trainer.model.state_dict()
    torch.save(state, Path(run_dir) / f"weights-rank{ctx.rank}.pt")
    shutdown(ctx)
    return state


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 12)
