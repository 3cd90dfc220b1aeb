"""Training-step throughput (images/s) of presets at their own input sizes.

    .venv/bin/python benchmarks/train_throughput.py [--presets litepose_xs,higherhrnet_w16]
        [--batch 4] [--steps 5] [--device cpu|cuda] [--amp]

Measures forward + loss + backward + Adam step on random images and random targets of the right
shapes, so the number is the network's cost alone (the data pipeline is measured separately).
Uses channels-last memory format and, with --amp on CUDA, bf16 autocast, as the trainer does.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from bottomup.losses import BottomUpLoss
from posenets import build_model
from search_space import get_preset


def random_targets(config, batch: int) -> dict[str, torch.Tensor]:
    k, s = config.num_joints, config.input_size
    q, h = s // 4, s // 2
    joints = torch.stack(
        [torch.randint(0, q * q, (batch, 30, k)), torch.randint(0, 2, (batch, 30, k))], dim=-1
    )
    return {
        "heatmaps_quarter": torch.rand(batch, k, q, q),
        "masks_quarter": torch.ones(batch, q, q),
        "heatmaps_half": torch.rand(batch, k, h, h),
        "masks_half": torch.ones(batch, h, h),
        "joints": joints,
    }


def measure(name: str, batch: int, steps: int, device: str, amp: bool) -> dict:
    config = get_preset(name)
    dev = torch.device(device)
    model = build_model(config).to(dev).to(memory_format=torch.channels_last).train()
    loss_fn = BottomUpLoss(config.num_joints)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    targets = {k: v.to(dev) for k, v in random_targets(config, batch).items()}
    image = torch.randn(batch, 3, config.input_size, config.input_size, device=dev)
    image = image.contiguous(memory_format=torch.channels_last)

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp and dev.type == "cuda"):
            outputs = model(image)
        loss = loss_fn([o.float() for o in outputs], targets)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "preset": name,
        "input": config.input_size,
        "batch": batch,
        "device": device,
        "amp": amp,
        "images_per_s": batch * steps / seconds,
        "ms_per_step": seconds / steps * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="litepose_xs,litepose_s,higherhrnet_w16")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true")
    args = parser.parse_args()
    rows = [
        measure(n, args.batch, args.steps, args.device, args.amp) for n in args.presets.split(",")
    ]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
