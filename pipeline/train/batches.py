"""Batches of a split through a ``DataLoader``: which rows (samplers), and reading them.

``EpochBatches`` is the distributed sampler of training: every rank draws the same
keyed epoch order and takes its shard of each global batch (``data.shard``), so the
union of the shards is the single-process batch. ``StridedBatches`` walks this
rank's strided share of a split in order, for validation and evaluation.

A batch is read by ``SplitRows.read`` as one item (``batch_size=None``): packed rows
in this process (a few ``pread`` calls a batch), images stored as files or resized
in ``workers`` processes, prefetching while the model runs; a loader is made once per
split and run, so its workers start once. What a batch holds is
a function of its indices alone, so results do not depend on the worker count.
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pipeline.core.ranks import Ranks
from pipeline.train.data import InputSize, SplitRows, epoch_order, shard


class EpochBatches(Sampler):
    """``(this rank's indices, global batch length)`` for each global batch of the epoch."""

    def __init__(self, n: int, batch_size: int, seed: int, world: Ranks = Ranks()):
        self.n, self.batch_size, self.seed, self.world = n, batch_size, seed, world
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self):
        order = epoch_order(self.n, self.seed, self.epoch)
        for start in range(0, self.n, self.batch_size):
            global_idx = order[start:start + self.batch_size]
            yield shard(global_idx, self.world.rank, self.world.size), len(global_idx)


class StridedBatches(Sampler):
    """This rank's strided share of ``n`` rows (all of them in one process), in order."""

    def __init__(self, n: int, batch_size: int, world: Ranks = Ranks()):
        self.idx = torch.arange(world.rank, n, world.size)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-len(self.idx) // self.batch_size)

    def __iter__(self):
        for start in range(0, len(self.idx), self.batch_size):
            part = self.idx[start:start + self.batch_size]
            yield part, len(part)


class _Reader(Dataset):
    def __init__(self, rows: SplitRows, size: InputSize):
        self.rows, self.size = rows, size

    def __getitem__(self, item):
        idx, n_global = item
        return idx, n_global, self.rows.read(idx, self.size), self.rows.labels[idx]


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def loader(rows: SplitRows, size: InputSize, sampler: Sampler, workers: int = 0,
           pin: bool = False) -> DataLoader:
    """Batches ``(indices, global batch length, uint8 images, labels)`` in sampler order.

    ``workers``: decode processes where rows need decoding or resizing (0: one per core);
    packed rows already at ``size`` are read here, which is faster than a worker's
    round trip for small images."""
    n = 0 if rows.packed is not None and rows.fits(size) else min(workers or cores(), cores())
    # forkserver, not fork: the trainer has threads by then (gloo, TensorBoard's writer), and
    # a worker forked while one of them held a lock hung on its first batch (seen under torchrun).
    return DataLoader(_Reader(rows, size), batch_size=None, sampler=sampler, num_workers=n, pin_memory=pin,
                      persistent_workers=n > 0, prefetch_factor=2 if n else None,
                      multiprocessing_context="forkserver" if n else None)
