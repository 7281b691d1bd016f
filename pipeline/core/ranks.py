"""The processes ``torchrun`` starts: the batch stages (augment, ingest) shard their
work over them, training splits each global batch between them.

``torchrun --nproc_per_node N [--nnodes M ...] -m stages.augment ...`` sets RANK,
WORLD_SIZE and LOCAL_RANK; without them this is one process and ``Ranks.sync``
only runs its work. The same engine as training (gloo on CPU, NCCL on CUDA).

Each rank takes a contiguous share of the work (``share``), writes what it made
into its own part directory inside rank 0's temporary output directory (on
storage every node sees), and rank 0 alone assembles the parts in order and
renames the result into place: the other ranks never touch the output path.

Every step ends in ``sync``: each rank runs its local work, then all ranks swap
outcomes, so one rank's failure stops every rank at the same step (and rank 0's
``atomic_dir`` removes the temporary directory), never a rank left waiting. A rank
that dies closes its connections (the others' collective fails at once) and
``torchrun`` stops the rest; a rank that hangs is caught by the group's timeout
(``PIPELINE_RANK_TIMEOUT_S``, seconds, default 3600: the slowest share plus rank
0's assembly must fit in it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, TypeVar

from pipeline.core.errors import PipelineError

T = TypeVar("T")
TIMEOUT_ENV = "PIPELINE_RANK_TIMEOUT_S"


class RankFailed(PipelineError):
    """Another rank of the same run failed; its message says which and why, and it exits
    with that rank's code (a ``DataLossError`` on rank 0 stops every rank with 3)."""

    def __init__(self, message: str, exit_code: int = PipelineError.exit_code):
        super().__init__(message)
        self.exit_code = exit_code


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def main_rank() -> bool:
    """Whether this process prints and writes the outputs (rank 0, or no torchrun)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    size: int = 1
    local_size: int = 1  # processes on this node (to split its cores)
    local_rank: int = 0  # this process's place on its node (its GPU on CUDA)

    @property
    def main(self) -> bool:
        """Rank 0 alone prints, logs and writes the outputs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def share(self, n: int, rank: int | None = None) -> tuple[int, int]:
        """``[start, stop)`` of rank ``rank``'s contiguous share of ``n`` items (sizes differ by <= 1)."""
        r = self.rank if rank is None else rank
        return r * n // self.size, (r + 1) * n // self.size

    def sync(self, work: Callable[[], T]) -> T:
        """Run ``work`` here, then tell every rank how it went: this rank's result when all
        ranks succeeded; otherwise every rank raises (this rank its own error as raised,
        the others ``RankFailed`` naming the first rank that failed and why).

        Ctrl-C and SIGTERM are not reported: the run is being stopped, and a rank that
        exits closes its connections, which fails the others' next step at once."""
        err: Exception | None = None
        value = None
        try:
            value = work()
        except Exception as e:  # noqa: BLE001 - reported to every rank, then raised again here
            err = e
        if not self.distributed:
            if err is not None:
                raise err
            return value
        import torch.distributed as dist

        message = None if err is None else (str(err), err.exit_code) if isinstance(err, PipelineError) else \
            (f"{type(err).__name__}: {err}", PipelineError.exit_code)
        got: list = [None] * self.size
        dist.all_gather_object(got, message)
        if err is not None:
            raise err
        for r, m in enumerate(got):
            if m is not None:
                raise RankFailed(f"rank {r} of {self.size} failed: {m[0]}", m[1])
        return value

    def from_main(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (small picklable values: a path, a card)."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, value: T) -> list[T]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        got: list = [None] * self.size
        dist.all_gather_object(got, value)
        return got

    def all_sum(self, values):
        """Element-wise sum of a tensor over ranks (the tensor itself in one process)."""
        if not self.distributed:
            return values
        import torch.distributed as dist

        values = values.clone()
        dist.all_reduce(values)
        return values

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def join(device: str = "cpu") -> Ranks:
    """This process's place in the torchrun world (a single process without torchrun).

    ``device``: the resolved device type; on CUDA each rank takes GPU LOCAL_RANK and
    the group runs over NCCL, else over gloo."""
    size = world_size()
    if size <= 1:
        return Ranks()
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    ranks = Ranks(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1),
                  int(os.environ.get("LOCAL_RANK", "0") or 0))
    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(ranks.local_rank)
    if not dist.is_initialized():
        timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, "3600")))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    return ranks
