"""Augmentation throughput at equal CPU cores: ours vs albumentations vs torchvision v2.

    python benchmarks/augment.py [--cores N] [--repeat R] [--sizes 32 224]

The same pipeline (flip, crop+pad at 32 / random-resized-crop at 224, rotate, colour
jitter, blur, noise, cutout) on the same uint8 images:

* ours, torch backend, batched (B, C, H, W) on the CPU, set up as the augment stage
  sets itself up (``configure_process(torch_threads=1)``): the engine splits the
  batch into chunks run by one thread per core;
* ours, ``backend: albumentations`` (per sample over ``cores`` worker processes);
* ours, ``backend: auto`` (what the augment stage would pick, recorded);
* albumentations 2.0.8, one image at a time, over ``cores`` worker processes;
* torchvision v2, batched (one random draw per batch: not equivalent, a reference);
* Kornia, batched, if installed;
* ours on CUDA when a GPU is present (the issue's GPU target is "vs albu/core").

Reports images/s, the ratio to albumentations and, as the physical ceiling, the
rate of a plain copy of the batch (memory bandwidth). The contenders are timed in
interleaved rounds (each runs once per round, ``--repeat`` rounds) and each keeps
its best round: a burst of load from elsewhere on a shared machine then hits one
round of every contender alike instead of all the rounds of one of them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from multiprocessing import get_context
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402


def spec(size: int) -> list[dict]:
    crop = ({"name": "crop", "p": 0.5, "padding": 4} if size <= 64 else
            {"name": "random_resized_crop", "p": 1.0, "scale": [0.5, 1.0]})
    return [{"name": "hflip", "p": 0.5}, crop, {"name": "rotate", "p": 0.5, "degrees": 15},
            {"name": "color_jitter", "p": 0.8, "hue": [-0.05, 0.05]},
            {"name": "gaussian_blur", "p": 0.5, "sigma": [0.1, 1.0]},
            {"name": "gaussian_noise", "p": 0.5, "std": [0.01, 0.05]},
            {"name": "cutout", "p": 0.5, "holes": [1, 1], "size": [0.1, 0.3]}]


def images(n: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def timed(fn, repeat: int) -> float:
    """Best of ``repeat`` timings after a warm-up (for a contender timed on its own)."""
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def rounds(contenders: dict, repeat: int) -> dict:
    """Best time of each contender over ``repeat`` interleaved rounds (after one warm-up
    each). A contender is ``(torch_threads, step)``: torch's thread count is set as it
    wants (ours runs one torch thread per chunk thread, as the stage sets it up) before
    its step is timed."""
    for threads, fn in contenders.values():
        torch.set_num_threads(threads)
        fn()
    best = {name: float("inf") for name in contenders}
    for _ in range(repeat):
        for name, (threads, fn) in contenders.items():
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


# ---- albumentations: per sample, one worker process per core -------------------
_worker: dict = {}


def _init_worker(size: int, batch: int):
    import cv2

    cv2.setNumThreads(1)  # one core per worker process
    from pipeline.augment.registry import build_pipeline
    from pipeline.backends.albumentations_backend import compose, to_albumentations

    pipe = build_pipeline(spec(size))
    _worker["compose"] = compose([to_albumentations(op, size, size, 3) for op in pipe.ops], False)
    _worker["images"] = images(batch, size).permute(0, 2, 3, 1).contiguous().numpy()


def _albu_chunk(bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    compose, imgs = _worker["compose"], _worker["images"]
    for i in range(lo, hi):
        compose(image=imgs[i])
    return hi - lo


def albumentations_step(pool, batch: int, cores: int):
    step = -(-batch // cores)
    chunks = [(i, min(i + step, batch)) for i in range(0, batch, step)]
    return lambda: sum(pool.map(_albu_chunk, chunks))


# ---- ours ---------------------------------------------------------------------
def ours(size: int, batch: int, backend: str = "torch", device: str = "cpu"):
    """A step that samples and applies our pipeline to one batch (keys to pixels)."""
    from dataclasses import replace

    from pipeline.augment.registry import build_pipeline
    from pipeline.augment.rng import keys_tensor
    from pipeline.backends import backend_of, resolve
    from pipeline.core.seeding import sample_key

    pipe = build_pipeline(spec(size), backend=backend)
    x = images(batch, size).to(device)
    keys = keys_tensor([sample_key(0, f"img{i}") for i in range(batch)], device)
    run = backend_of(replace(pipe, backend=resolve(pipe, device, size, size))).run

    def step():
        run(pipe, x, None, keys, pipe.sample(keys, size, size))
        if device == "cuda":
            torch.cuda.synchronize()

    return pipe, step


def as_the_stage() -> None:
    """Process settings as the augment stage's entry point makes them (one torch thread:
    the engine runs a chunk of the batch per core in its own threads)."""
    from pipeline.core.device import configure_process

    configure_process(torch_threads=1)


def bench_ours_albu(size, batch, cores, repeat):
    """``backend: albumentations``: per sample over ``cores`` worker processes, timed on
    its own and its pool shut down after (idle workers measurably slowed the next rows)."""
    torch.set_num_threads(cores)
    _, step = ours(size, batch, backend="albumentations")
    t = timed(step, repeat)
    from pipeline.backends.albumentations_pool import _shutdown

    _shutdown()
    return t


def torchvision_step(size, batch):
    from torchvision.transforms import v2

    crop = v2.RandomCrop(size, padding=4) if size <= 64 else v2.RandomResizedCrop(size, scale=(0.5, 1.0))
    tf = v2.Compose([v2.RandomHorizontalFlip(0.5), crop, v2.RandomApply([v2.RandomRotation(15)], p=0.5),
                     v2.RandomApply([v2.ColorJitter(0.2, 0.2, 0.2, 0.05)], p=0.8),
                     v2.RandomApply([v2.GaussianBlur(3, (0.1, 1.0))], p=0.5),
                     v2.ToDtype(torch.float32, scale=True),
                     v2.RandomApply([v2.GaussianNoise(sigma=0.03)], p=0.5),
                     v2.RandomErasing(p=0.5, scale=(0.01, 0.09), ratio=(1, 1)),
                     v2.ToDtype(torch.uint8, scale=True)])
    x = images(batch, size)
    return lambda: tf(x)


def kornia_step(size, batch, device="cpu"):
    import kornia.augmentation as K

    crop = K.RandomCrop((size, size), padding=4) if size <= 64 else K.RandomResizedCrop((size, size), (0.5, 1.0))
    tf = torch.nn.Sequential(K.RandomHorizontalFlip(), crop, K.RandomRotation(15, p=0.5),
                             K.ColorJitter(0.2, 0.2, 0.2, 0.05, p=0.8), K.RandomGaussianBlur((3, 3), (0.1, 1.0), p=0.5),
                             K.RandomGaussianNoise(std=0.03, p=0.5), K.RandomErasing(p=0.5))
    x = images(batch, size).to(device).float() / 255
    tf = tf.to(device)

    def step():
        tf(x)
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds (best of)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    ap.add_argument("--batches", type=int, nargs="+", help="batch per size (default 512 up to 64 px, else 64)")
    ap.add_argument("--cuda-only", action="store_true", help="only the CUDA and Kornia-on-CUDA rows "
                    "against albumentations (the GPU check)")
    args = ap.parse_args()
    cores = args.cores
    print(f"cores={cores} torch={torch.__version__} rounds={args.repeat} (best of)")
    as_the_stage()
    for k, size in enumerate(args.sizes):
        batch = args.batches[k] if args.batches else (512 if size <= 64 else 64)
        x = images(batch, size)
        contenders = {"memcpy ceiling (x.clone)": (cores, x.clone)}
        names = {}
        with get_context("spawn").Pool(cores, _init_worker, (size, batch)) as pool:
            contenders["albumentations (per sample, processes)"] = (cores, albumentations_step(pool, batch, cores))
            if not args.cuda_only:
                contenders["ours torch (batched, all cores)"] = (1, ours(size, batch)[1])
                from pipeline.backends import resolve

                pipe, step = ours(size, batch, backend="auto")
                names["auto"] = f"ours auto (-> {resolve(pipe, 'cpu', size, size)})"
                contenders[names["auto"]] = (1, step)
                contenders["torchvision v2 (batched, one draw)"] = (cores, torchvision_step(size, batch))
            try:
                contenders["kornia (batched, CPU)"] = (cores, kornia_step(size, batch))
            except ImportError:
                print("kornia not installed: its rows are skipped")
            if torch.cuda.is_available():
                contenders["ours torch on CUDA (batched)"] = (cores, ours(size, batch, device="cuda")[1])
                try:
                    contenders["kornia on CUDA (batched)"] = (cores, kornia_step(size, batch, "cuda"))
                except ImportError:
                    pass
            else:
                print("no CUDA: the CUDA rows are skipped")
            rows = rounds(contenders, args.repeat)
        if not args.cuda_only:
            rows["ours albumentations backend (processes)"] = bench_ours_albu(size, batch, cores, args.repeat)
            torch.set_num_threads(1)
        ref = rows["albumentations (per sample, processes)"]
        print(f"\n{size}x{size}, batch {batch}")
        print(f"{'':44s} {'images/s':>10s} {'vs albu':>8s} {'vs albu/core':>12s}")
        for name, t in rows.items():
            print(f"{name:44s} {batch / t:10.0f} {ref / t:8.2f}x {ref * cores / t:11.2f}x")


if __name__ == "__main__":
    main()
