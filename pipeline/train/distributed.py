"""Data-parallel training under ``torchrun``: the same ``train`` on 1..N processes.

``torchrun --nproc_per_node N [--nnodes ...]`` sets RANK, WORLD_SIZE and
LOCAL_RANK; without them this is a single process and nothing here does anything.
gloo on CPU, NCCL on CUDA (one GPU per local rank).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 alone logs, prints and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_world(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun set up (if any); returns the world and this rank's device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(), device
    import torch.distributed as dist

    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, device


def all_sum(values: torch.Tensor, world: World) -> torch.Tensor:
    """Element-wise sum over ranks (identity in a single process)."""
    if world.distributed:
        import torch.distributed as dist

        values = values.clone()
        dist.all_reduce(values)
    return values


def barrier(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def shutdown(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
