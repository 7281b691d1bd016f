"""Where the CPU engine's time goes at one size: parameter sampling, the chunked
transform as the augment stage runs it, the whole batch on one thread, a batch cut into
N chunks over the cores' threads, and how well two half batches overlap on two threads
and on two processes (threads share one interpreter lock; processes do not).

    python benchmarks/augment_chunks.py [--size 32] [--batch 512]

The pipeline is ``benchmarks/augment.py``'s; torch runs one thread per chunk, as the
augment stage sets itself up. Times are the mean of 10 runs after 3 warm-ups.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def mean_ms(fn, n: int = 10) -> float:
    for _ in range(3):
        fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e3


def half_batch(size: int, batch: int):
    """The transform of the first half of a batch, set up as the augment stage sets up."""
    import augment as bench

    from pipeline.augment.registry import build_pipeline
    from pipeline.augment.rng import keys_tensor
    from pipeline.core.device import configure_process
    from pipeline.core.seeding import sample_key

    configure_process(torch_threads=1)
    pipe = build_pipeline(bench.spec(size), backend="torch")
    x = bench.images(batch, size)
    keys = keys_tensor([sample_key(0, f"img{i}") for i in range(batch)], "cpu")
    drawn = [{k: v[:batch // 2] for k, v in d.items()} for d in pipe.sample(keys, size, size)]
    return lambda: pipe._transform(x[:batch // 2], None, drawn, None)


def time_half(args: tuple[int, int]) -> float:
    return mean_ms(half_batch(*args), n=20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=512)
    args = ap.parse_args()

    import augment as bench
    import torch

    from pipeline.augment.registry import build_pipeline
    from pipeline.augment.rng import keys_tensor
    from pipeline.core.device import configure_process, cpu_cores
    from pipeline.core.seeding import sample_key

    configure_process(torch_threads=1)
    size, batch = args.size, args.batch
    pipe = build_pipeline(bench.spec(size), backend="torch")
    x = bench.images(batch, size)
    keys = keys_tensor([sample_key(0, f"img{i}") for i in range(batch)], "cpu")
    drawn = pipe.sample(keys, size, size)

    def part(lo: int, hi: int):
        return lambda: pipe._transform(x[lo:hi], None, [{k: v[lo:hi] for k, v in d.items()} for d in drawn], None)

    threads = cpu_cores()
    print(f"{size}x{size}, batch {batch}, {threads} threads, torch {torch.__version__}")
    print(f"sample parameters          {mean_ms(lambda: pipe.sample(keys, size, size)):7.2f} ms")
    print(f"apply (as the stage runs)  {mean_ms(lambda: pipe.apply(x, drawn)):7.2f} ms")
    print(f"whole batch, one thread    {mean_ms(part(0, batch)):7.2f} ms")
    with ThreadPoolExecutor(threads) as pool:
        for n in (1, threads, 2 * threads, 4 * threads):
            step = -(-batch // n)
            parts = [part(lo, min(lo + step, batch)) for lo in range(0, batch, step)]
            print(f"{n:2d} chunks on {threads} threads   "
                  f"{mean_ms(lambda: list(pool.map(lambda f: f(), parts))):7.2f} ms")
        half = part(0, batch // 2)
        alone = mean_ms(half)
        both = mean_ms(lambda: list(pool.map(lambda _: half(), range(2))))
        print(f"half batch alone {alone:.2f} ms, two halves on two threads {both:.2f} ms: "
              f"parallel efficiency {2 * alone / both:.2f} of 2")
    alone = time_half((size, batch))
    with get_context("spawn").Pool(2) as procs:
        both = max(procs.map(time_half, [(size, batch)] * 2))
    print(f"half batch alone {alone:.2f} ms, a half in each of two processes at once {both:.2f} ms: "
          f"parallel efficiency {2 * alone / both:.2f} of 2")


if __name__ == "__main__":
    main()
