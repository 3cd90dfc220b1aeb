"""Training-step cost of a subnet inside the supernet against the same subnet built standalone.

    .venv/bin/python benchmarks/supernet_step_cost.py [--subnets smallest,litepose_xs,largest]
        [--supernet litepose_supernet_multibranch] [--size 256] [--batch 4] [--repeats 15]
        [--warmup 3] [--threads N] [--limit 1.3]

Criterion: a supernet training step on a subnet costs at most 1.3x a step of the same subnet built
standalone (``LitePoseSupernet.export``). Both run forward + loss + backward + Adam step on the
same random image and targets, in channels-last and train mode as the trainer runs them; the
supernet's optimiser holds all its parameters (as in supernet training), the standalone one only
the subnet's. Supernet and standalone steps alternate so that a change of machine load hits both;
the median over ``--repeats`` after ``--warmup`` is reported. Exits 1 if any ratio is over
``--limit``.

``--profile`` prints the torch profiler's top operators of one supernet step and one standalone
step of each subnet (where the overhead comes from).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import random_targets  # noqa: E402

from bottomup.losses import BottomUpLoss  # noqa: E402
from search_space import LitePoseConfig, get_preset, list_presets  # noqa: E402
from search_space.space import LitePoseSpace  # noqa: E402
from supernet import LitePoseSupernet  # noqa: E402


def subnet(name: str, space: LitePoseSpace, size: int) -> LitePoseConfig:
    """``smallest``, ``largest`` or a LitePose preset, at input ``size``."""
    if name == "smallest":
        config = space.smallest()
    elif name == "largest":
        config = space.largest_member()
    elif name in list_presets("litepose*"):
        config = get_preset(name)
    else:
        raise SystemExit(
            f"--subnets: unknown subnet {name!r}; use smallest, largest or one of "
            f"{list_presets('litepose*')}"
        )
    return dataclasses.replace(config, input_size=size)


class Stepper:
    """One training step of ``model``: forward, loss, backward, Adam, on fixed inputs."""

    def __init__(self, model: nn.Module, image: torch.Tensor, targets: dict, num_joints: int):
        self.model = model.to(memory_format=torch.channels_last).train()
        self.image = image
        self.targets = targets
        self.loss_fn = BottomUpLoss(num_joints)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def __call__(self) -> float:
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        outputs = self.model(self.image)
        loss = self.loss_fn([o.float() for o in outputs], self.targets)["loss"]
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start


def measure(name: str, config: LitePoseConfig, args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    net = LitePoseSupernet(get_preset(args.supernet))
    net.set_active(config)
    standalone = net.export(config)
    image = torch.randn(args.batch, 3, args.size, args.size)
    image = image.contiguous(memory_format=torch.channels_last)
    targets = random_targets(config, args.batch)
    steps = {
        "supernet": Stepper(net, image, targets, config.num_joints),
        "standalone": Stepper(standalone, image, targets, config.num_joints),
    }
    if args.profile:
        for kind, step in steps.items():
            profile(f"{name} {kind}", step)
    times: dict[str, list[float]] = {kind: [] for kind in steps}
    for i in range(args.warmup + args.repeats):
        order = list(steps) if i % 2 == 0 else list(reversed(steps))
        for kind in order:
            seconds = steps[kind]()
            if i >= args.warmup:
                times[kind].append(seconds)
    sup, alone = (statistics.median(times[k]) * 1e3 for k in ("supernet", "standalone"))
    return {
        "subnet": name,
        "input": args.size,
        "batch": args.batch,
        "supernet_ms": sup,
        "standalone_ms": alone,
        "ratio": sup / alone,
        "ratio_min": min(times["supernet"]) / min(times["standalone"]),
    }


def profile(label: str, step: Stepper) -> None:
    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step()
    print(f"--- {label}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subnets", default="smallest,litepose_xs,largest")
    parser.add_argument("--supernet", default="litepose_supernet", help="its largest member")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--limit", type=float, default=1.3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    space = LitePoseSpace(largest=get_preset(args.supernet), resolutions=(args.size,))
    rows = [measure(name, subnet(name, space, args.size), args) for name in args.subnets.split(",")]
    table = pd.DataFrame(rows)
    print(
        f"{args.supernet}, torch {torch.__version__}, {torch.get_num_threads()} threads, median of "
        f"{args.repeats} steps after {args.warmup} warm-up"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    over = table[table["ratio"] > args.limit]
    if len(over):
        print(f"FAIL: ratio over {args.limit} for {', '.join(over['subnet'])}", file=sys.stderr)
        raise SystemExit(1)
    print(f"OK: every ratio <= {args.limit}")


if __name__ == "__main__":
    main()
