"""The albumentations backend over worker processes, one per torch thread.

albumentations runs one sample at a time with much Python between its OpenCV
calls, so threads fight over the GIL (measured slower than one thread on the
2-core machine, see docs/benchmarks.md); worker processes scale. Each worker
rebuilds the Compose from the ops' parameters once, then takes chunks of
(seed, uint8 HWC image). A sample's output depends only on its seed, so the
result does not depend on the chunking or the number of workers (tested).

Used for image-only uint8 batches (what offline versioning of classification data
and the benchmark run); batches with targets run in-process. Workers never outlive
the run: they ignore Ctrl-C, die with their parent (``pipeline.workers``) and are
killed at once when a batch fails or is interrupted.
"""

from __future__ import annotations

import atexit
import json
import os

import numpy as np

from pipeline.interrupts import held_signals

_pools: dict[tuple, object] = {}
_worker: dict = {}


def _init(parent: int, spec: list[dict], h: int, w: int, c: int) -> None:
    from pipeline.workers import worker_init

    worker_init(parent)
    import cv2
    import torch

    cv2.setNumThreads(1)  # one core per worker: the pool is the parallelism
    torch.set_num_threads(1)
    from pipeline.augment.albumentations_backend import _compose, to_albumentations
    from pipeline.augment.registry import build_pipeline

    pipe = build_pipeline(spec)
    _worker["compose"] = _compose([to_albumentations(op, h, w, c) for op in pipe.ops], False)


def _run_chunk(seeds: list[int], images: np.ndarray) -> np.ndarray:
    from pipeline.augment.albumentations_backend import _one_sample

    outs = [_one_sample(_worker["compose"], s, img, None, i)[0].numpy() for i, (s, img) in
            enumerate(zip(seeds, images))]
    return np.stack(outs)


def _pool(ops, h: int, w: int, c: int, workers: int):
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    spec = [op.params.model_dump(mode="json") for op in ops]
    key = (json.dumps(spec, sort_keys=True), h, w, c, workers)
    if key not in _pools:
        # spawn, not fork: forking a process that holds torch/OpenMP threads can hang
        _pools[key] = ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                          initializer=_init, initargs=(os.getpid(), spec, h, w, c))
    return _pools[key]


def run_in_processes(ops, seeds: list[int], images: np.ndarray, workers: int) -> np.ndarray:
    """(B, H, W, C) uint8 images through the ops' albumentations Compose, sample i
    seeded by ``seeds[i]``, split into two chunks per worker."""
    b, h, w, c = images.shape
    pool = _pool(ops, h, w, c, workers)
    step = max(1, -(-b // (2 * workers)))
    try:
        with held_signals():  # a submit may start a worker
            futures = [pool.submit(_run_chunk, seeds[i:i + step], images[i:i + step]) for i in range(0, b, step)]
        return np.concatenate([f.result() for f in futures])
    except BaseException:  # an error or Ctrl-C: no worker keeps running (a later call starts afresh)
        from pipeline.workers import stop_pool

        for key in [k for k, v in _pools.items() if v is pool]:
            del _pools[key]
        stop_pool(pool)
        raise


@atexit.register
def _shutdown() -> None:
    for pool in _pools.values():
        pool.shutdown(wait=True, cancel_futures=True)
    _pools.clear()
