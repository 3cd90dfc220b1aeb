"""Process-group set-up for torchrun: NCCL on GPUs, gloo on CPU; a no-op for a single process.

The environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) is checked before it is used: a ``RANK=1`` left over in a shell made a single
process train the whole schedule as a silent non-main rank (nothing printed, nothing written, exit
0). A world that does not form within ``POSEARCH_DIST_TIMEOUT`` seconds (default 600) is an error
naming the variables, not a hang.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from posecore.errors import UserError

TIMEOUT_VARIABLE = "POSEARCH_DIST_TIMEOUT"


class DistributedSetupError(UserError, RuntimeError):
    """Distributed environment variables that cannot describe a world, or a world that did not
    form."""


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE, ...)."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    world_size, rank, local_rank = world_from_environment(os.environ)
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        timeout = _number(os.environ, TIMEOUT_VARIABLE, "600", minimum=1)
        try:
            dist.init_process_group(
                backend="nccl" if use_cuda else "gloo",
                timeout=datetime.timedelta(seconds=timeout),
            )
        except (RuntimeError, ValueError) as err:  # torch's DistError family, a bad address
            first = next((line for line in str(err).splitlines() if line.strip()), "")
            raise DistributedSetupError(
                f"rank {rank} of WORLD_SIZE={world_size} could not join the process group at "
                f"MASTER_ADDR={os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} "
                f"within {timeout} s ({type(err).__name__}: {first[:200]}); start every rank "
                f"(torchrun does), or set {TIMEOUT_VARIABLE}=<seconds>"
            ) from None
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def world_from_environment(env) -> tuple[int, int, int]:
    """``(world_size, rank, local_rank)`` from torchrun's variables, checked: integers, a rank
    inside the world, and for a world of several processes the rendezvous address."""
    if "WORLD_SIZE" not in env:
        stray = [name for name in ("RANK", "LOCAL_RANK") if name in env]
        if stray:
            name = stray[0]
            raise DistributedSetupError(
                f"{name}={env[name]} is set but WORLD_SIZE is not: a single process would run "
                f"as a non-main rank; unset {name} (e.g. `env -u {name} ...`) or launch with "
                "torchrun"
            )
        return 1, 0, 0
    world_size = _number(env, "WORLD_SIZE", "1", minimum=1)
    rank = _number(env, "RANK", "0", minimum=0)
    local_rank = _number(env, "LOCAL_RANK", "0", minimum=0)
    if rank >= world_size:
        raise DistributedSetupError(
            f"RANK={rank}: must be below WORLD_SIZE={world_size} (ranks count from 0)"
        )
    if world_size > 1:
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not env.get(name):
                raise DistributedSetupError(
                    f"WORLD_SIZE={world_size} needs {name}, which is not set: launch with "
                    "torchrun, which sets it"
                )
        _number(env, "MASTER_PORT", "0", minimum=1)
    return world_size, rank, local_rank


def _number(env, name: str, default: str, minimum: int) -> int:
    text = env.get(name, default)
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise DistributedSetupError(f"{name}={text!r}: must be an integer >= {minimum}")
    return value


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()
