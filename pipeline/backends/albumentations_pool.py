"""The albumentations backend over worker processes, one per torch thread.

albumentations runs one sample at a time with much Python between its OpenCV
calls, so threads fight over the GIL (measured slower than one thread on the
2-core machine, see docs/benchmarks.md); worker processes scale. Each worker
rebuilds the Compose from the ops' parameters once, then takes chunks of
(seed, uint8 HWC image). A sample's output depends only on its seed, so the
result does not depend on the chunking or the number of workers (tested).

Used for image-only uint8 batches (what offline versioning of classification data
and the benchmark run); batches with targets run in-process. Workers never outlive
the run: they ignore Ctrl-C, die with their parent (``pipeline.core.workers``) and are
killed at once when a batch fails or is interrupted.
"""

from __future__ import annotations

import atexit
import json

import numpy as np

_pools: dict[tuple, object] = {}
_worker: dict = {}


def _init(spec: list[dict], h: int, w: int, c: int) -> None:
    import cv2
    import torch

    cv2.setNumThreads(1)  # one core per worker: the pool is the parallelism
    torch.set_num_threads(1)
    from pipeline.augment.registry import build_pipeline
    from pipeline.backends.albumentations_backend import compose, to_albumentations

    pipe = build_pipeline(spec)  # importing this package registered the albumentations.* ops
    _worker["compose"] = compose([to_albumentations(op, h, w, c) for op in pipe.ops], False)


def _run_chunk(chunk: tuple[list[int], np.ndarray]) -> np.ndarray:
    from pipeline.backends.albumentations_backend import one_sample

    seeds, images = chunk
    outs = [one_sample(_worker["compose"], s, img, None, i)[0].numpy() for i, (s, img) in
            enumerate(zip(seeds, images))]
    return np.stack(outs)


def _pool(ops, h: int, w: int, c: int, workers: int):
    from pipeline.core.workers import OrderedPool

    spec = [op.params.model_dump(mode="json") for op in ops]
    key = (json.dumps(spec, sort_keys=True), h, w, c, workers)
    if key not in _pools:
        # spawn, not fork: forking a process that holds torch/OpenMP threads can hang
        _pools[key] = OrderedPool(_run_chunk, workers, initializer=_init, initargs=(spec, h, w, c),
                                  context="spawn")
    return _pools[key]


def run_in_processes(ops, seeds: list[int], images: np.ndarray, workers: int) -> np.ndarray:
    """(B, H, W, C) uint8 images through the ops' albumentations Compose, sample i
    seeded by ``seeds[i]``, split into two chunks per worker."""
    b, h, w, c = images.shape
    pool = _pool(ops, h, w, c, workers)
    step = max(1, -(-b // (2 * workers)))
    try:
        return np.concatenate(list(pool.map((seeds[i:i + step], images[i:i + step]) for i in range(0, b, step))))
    except BaseException:  # an error or Ctrl-C: no worker keeps running (a later call starts afresh)
        for key in [k for k, v in _pools.items() if v is pool]:
            del _pools[key]
        pool.kill()
        raise


@atexit.register
def _shutdown() -> None:
    for pool in _pools.values():
        pool.close()
    _pools.clear()
