"""Peak memory of the augment stage does not grow with the dataset.

Generates canonical datasets of 10,000 and 40,000 small grey images (28x28, like
MNIST, one PNG file each), splits them, runs the augment stage on each in a
fresh process (``python -m stages.augment``) and reports that process's peak RSS
(``wait4`` rusage) and its throughput. The version is streamed in batches, so the
two peaks should differ by well under 30%.

    python benchmarks/version_memory.py [--sizes 10000 40000] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PARAMS = """augment:
  seed: 0
  copies: 2
  batch_size: 256
  device: cpu
  pipeline:
    - {name: rotate, p: 0.8, degrees: 12}
    - {name: crop, p: 0.8, padding: 2}
"""


def make_dataset(root: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    from pipeline.config import SplitParams
    from pipeline.datasets import load_dataset
    from pipeline.record import Sample, Source, save_dataset
    from pipeline.split import write_splits

    (root / "canonical" / "images").mkdir(parents=True)
    rng = np.random.default_rng(n)
    samples = []
    for i in range(n):
        label = str(i % 10)
        a = rng.integers(0, 255, size=(28, 28), dtype=np.uint8)
        name = f"images/{i:06d}.png"
        Image.fromarray(a).save(root / "canonical" / name, compress_level=1)
        samples.append(Sample(id=f"gen/{i:06d}", image=name, width=28, height=28, channels=1, label=label,
                              source=Source("generated", name)))
    save_dataset(root / "canonical", samples, [str(k) for k in range(10)], [])
    write_splits(load_dataset(root / "canonical"), SplitParams(), root / "splits")
    (root / "params.yaml").write_text(PARAMS)


def run_stage(root: Path) -> tuple[float, float, int]:
    """(peak RSS in MiB, wall seconds, output images) of one stage process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PIPELINE_NO_PROGRESS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "stages.augment", "--params", str(root / "params.yaml"),
                             "--dataset", str(root / "canonical"), "--splits", str(root / "splits"),
                             "--out", str(root / "version")], cwd=REPO, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"augment stage failed on {root}")
    import json

    card = json.loads((root / "version" / "card.json").read_text())
    return usage.ru_maxrss / 1024.0, wall, sum(s["samples"] for s in card["splits"].values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 40_000])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated data")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="version-memory-"))
    results = []
    try:
        for n in args.sizes:
            root = work / f"n{n}"
            if not (root / "params.yaml").is_file():
                t0 = time.perf_counter()
                make_dataset(root, n)
                print(f"generated {n} samples in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            shutil.rmtree(root / "version", ignore_errors=True)
            rss, wall, images = run_stage(root)
            results.append((n, images, rss, wall))
        print("| source samples | output images | peak RSS (MiB) | wall (s) | images/s |")
        print("|---|---|---|---|---|")
        for n, images, rss, wall in results:
            print(f"| {n} | {images} | {rss:.0f} | {wall:.1f} | {images / wall:.0f} |")
        if len(results) > 1:
            lo, hi = min(r[2] for r in results), max(r[2] for r in results)
            print(f"\npeak RSS difference: {100 * (hi - lo) / lo:.1f}% (target < 30%)", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
