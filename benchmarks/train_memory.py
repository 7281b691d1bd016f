"""Peak memory of the train stage does not grow with the dataset version.

Writes packed versions of 10,000 and 100,000 train rows (32x32x3 uint8, plus a
validation split a tenth of that) straight as the arrays and card the augment
stage lays out (``pipeline/version/writer.py``: ``<split>_images.npy`` (N, H, W, C),
``<split>_labels.npy``, ``card.json``), trains one epoch on each in a fresh process
(``python -m stages.train``) and reports that process's peak RSS (``wait4``
rusage: the child's own ``ru_maxrss``, which ``RUSAGE_CHILDREN`` would take the
maximum of over both runs). Rows are read per batch, so the ratio of the two peaks
should be at most 1.1.

    python benchmarks/train_memory.py [--sizes 10000 100000] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIDE, CHANNELS, CLASSES, CHUNK = 32, 3, 10, 4096
PARAMS = """train:
  model: seed_cnn
  optimizer: adam
  lr: 0.001
  epochs: 1
  batch_size: 256
  schedule: constant
  device: cpu
  resume: false
"""


def make_version(root: Path, n: int) -> None:
    """A packed version of ``n`` train and ``n // 10`` val rows: the class is a bright band's row."""
    import numpy as np

    root.mkdir(parents=True)
    rng = np.random.default_rng(n)
    for split, rows in (("train", n), ("val", max(1, n // 10))):
        images = np.lib.format.open_memmap(root / f"{split}_images.npy", "w+", np.uint8,
                                           (rows, SIDE, SIDE, CHANNELS))
        labels = np.arange(rows, dtype=np.int64) % CLASSES
        for start in range(0, rows, CHUNK):  # chunked: the generator stays small too
            stop = min(rows, start + CHUNK)
            a = rng.integers(0, 60, size=(stop - start, SIDE, SIDE, CHANNELS), dtype=np.uint8)
            for k in range(CLASSES):
                a[labels[start:stop] == k, 3 * k:3 * k + 3] = 220
            images[start:stop] = a
        images.flush()
        del images
        np.save(root / f"{split}_labels.npy", labels)
    card = {"format": 1, "kind": "classification", "storage": "packed", "image_shape": [SIDE, SIDE, CHANNELS],
            "classes": [str(k) for k in range(CLASSES)], "params": {"resize": "stretch", "pad_value": 114},
            "splits": {s: {"pixel_mean": [0.2] * CHANNELS, "pixel_std": [0.3] * CHANNELS} for s in ("train", "val")}}
    (root / "card.json").write_text(json.dumps(card))


def run_stage(root: Path) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one train stage process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PIPELINE_NO_PROGRESS": "1"}
    out = root.with_name(root.name + "-out")  # never inside the version it reads
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "stages.train", "--params", str(root.parent / "params.yaml"),
                             "--version", str(root), "--checkpoint", str(out / "m.pt"), "--logdir", str(out / "tb"),
                             "--metrics", str(out / "train.json"), "--curve", str(out / "curve.csv")],
                            cwd=REPO, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"train stage failed on {root}")
    return usage.ru_maxrss / 1024.0, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated versions")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="train-memory-"))
    results = []
    try:
        work.mkdir(parents=True, exist_ok=True)
        (work / "params.yaml").write_text(PARAMS)
        for n in args.sizes:
            root = work / f"n{n}"
            if not (root / "card.json").is_file():
                t0 = time.perf_counter()
                make_version(root, n)
                print(f"generated {n} rows in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            rss, wall = run_stage(root)
            size = (root / "train_images.npy").stat().st_size / 2**20
            results.append((n, size, rss, wall))
        print("| train rows | train_images.npy (MiB) | peak RSS (MiB) | wall (s) | rows/s |")
        print("|---|---|---|---|---|")
        for n, size, rss, wall in results:
            print(f"| {n} | {size:.0f} | {rss:.0f} | {wall:.1f} | {n / wall:.0f} |")
        if len(results) > 1:
            lo, hi = results[0][2], results[-1][2]
            print(f"\npeak RSS ratio, largest / smallest version: {hi / lo:.3f} (target <= 1.1)", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
