"""Ingest throughput vs a plain PIL decode loop, in the same run.

    python benchmarks/ingest.py [--n 2000] [--workers 0] [--repeat 1] [--keep DIR]
                                [--near-duplicate-bits B]

Generates ``n`` 500x375 JPEGs (smooth random content, quality 90) as an ImageFolder
tree, then times (1) a plain loop ``Image.open(p).load()`` over every file in one
process and (2) ``pipeline.ingest.ingest`` on the same tree (full decode, checks,
pixel hash, dHash unless ``--near-duplicate-bits -1``, canonical copy into the image
pack and its index, manifest; ``ingest.workers`` processes). The default is
``IngestParams``' (3, near duplicates on, as for photos); the project's
``params.yaml`` runs -1 for its 28x28 digits.
Prints images/s for both and the ratio (target: ingest >= 90% of the plain loop).
With ``--repeat k`` both are run k times, alternating, and the best time of each is
kept (the usual defence against a noisy, shared machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def generate(root: Path, n: int) -> list[Path]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((500, 375), Image.Resampling.BICUBIC)
        d = root / f"class{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{i:05d}.jpg"
        img.save(p, quality=90)
        paths.append(p)
    return paths


def plain_loop(paths: list[Path]) -> float:
    from PIL import Image

    t = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.load()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=0, help="ingest.workers (0 = one per core)")
    ap.add_argument("--repeat", type=int, default=1, help="alternate runs; keep each one's best")
    ap.add_argument("--keep", type=Path, default=None, help="work directory to keep (default: temporary)")
    ap.add_argument("--near-duplicate-bits", type=int, default=None,
                    help="ingest.near_duplicate_bits (default: IngestParams'; -1 skips the dHash)")
    args = ap.parse_args()
    os.environ.setdefault("PIPELINE_NO_PROGRESS", "1")
    from pipeline.config import IngestParams
    from pipeline.ingest import ingest

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        paths = generate(work / "src", args.n)
        plain_loop(paths[:50])  # warm the page cache and imports alike for both
        params = IngestParams(workers=args.workers) if args.near_duplicate_bits is None else \
            IngestParams(workers=args.workers, near_duplicate_bits=args.near_duplicate_bits)
        plain = ours = float("inf")
        ratios: list[float] = []
        for k in range(args.repeat):
            p = plain_loop(paths)
            t = time.perf_counter()
            ds = ingest(work / "src", work / "out", params)
            o = time.perf_counter() - t
            print(f"run {k + 1}: plain {args.n / p:7.1f} images/s, ingest {args.n / o:7.1f} images/s, "
                  f"ratio {p / o:.2f}")
            plain, ours = min(plain, p), min(ours, o)
            ratios.append(p / o)
        assert len(ds.samples) == args.n, (len(ds.samples), ds.quarantine[:3])
        print(f"images: {args.n} x 500x375 JPEG, cpus: {os.cpu_count()}, ingest.workers: {args.workers}, "
              f"near_duplicate_bits: {params.near_duplicate_bits}, best of {args.repeat}")
        print(f"plain PIL open+load loop: {args.n / plain:8.1f} images/s ({plain:.2f} s)")
        print(f"pipeline ingest:          {args.n / ours:8.1f} images/s ({ours:.2f} s)")
        print(f"ratio ingest / plain:     {plain / ours:8.2f}  (target >= 0.90)")
        if len(ratios) > 1:
            print(f"per-run ratios:           {min(ratios):8.2f} .. {max(ratios):.2f}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
