"""Mask R-CNN Lite0 on labelme polygons drawn on a real photo: scikit-image's coins.

    python benchmarks/segment_coins.py [--out DIR] [--epochs 4] [--threads 1]

The labelme set is ``tests.photo_polygons``' (its polygons are traced from a classical
segmentation of the photo, not drawn by hand), laid out in split folders so the test
coins are coins never trained on:

* ``train/``: 20 overlapping 112x144 crops of the photo's top three rows of coins (18 coins);
* ``val/``: 3 more crops of the same rows at other offsets (the same coins: it only
  follows training);
* ``test/``: 4 overlapping 77x144 crops of the bottom row (6 coins, none seen in training).

Then the user's commands, each a ``python -m pipeline`` process: ingest (labelme, splits
from the folders), split (given splits kept), augment (hflip, vflip, rotate: the polygons
follow), train (``task: segment``, ``model: maskrcnn_lite0``, ImageNet backbone) and
evaluate. Prints each command's summary line, the wall times and the test metrics file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.photo_polygons import windows, write_coins  # noqa: E402

TOP_ROWS = (0, 0, 226, 384)  # y0, x0, y1, x1: rows 1-3 of coins end at y 218, row 4 starts at 233
VAL_CROPS = [(19, 30, 112, 144), (57, 135, 112, 144), (95, 210, 112, 144)]


def params(epochs: int, threads: int) -> dict:
    return {
        "ingest": {"format": "labelme", "workers": 1},
        "split": {"ratios": {"train": 0.7, "val": 0.15, "test": 0.15}, "given": "keep"},
        "augment": {"copies": 2, "pipeline": [{"name": "hflip", "p": 0.5}, {"name": "vflip", "p": 0.5},
                                              {"name": "rotate", "p": 0.9, "degrees": 30}]},
        "train": {"task": "segment", "model": "maskrcnn_lite0", "epochs": epochs, "batch_size": 2,
                  "optimizer": "adamw", "lr": 0.001, "schedule": "cosine", "freeze_epochs": 0,
                  "threads": threads, "log_every": 10},
        "evaluate": {"worst": 4},
    }


def run(cwd: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PIPELINE_NO_PROGRESS": "1"}
    t = time.time()
    res = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env, text=True,
                         capture_output=True)
    print(res.stdout, end="")
    if res.returncode:
        sys.exit(f"pipeline {' '.join(args)} failed ({res.returncode}):\n{res.stderr}")
    return time.time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="work directory (default: a new temporary one)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="train.threads (1 on a loaded 2-core machine)")
    a = ap.parse_args()
    out = a.out or Path(tempfile.mkdtemp(prefix="segment_coins."))
    src = out / "coins"
    write_coins(src, windows((112, 144), (38, 60), TOP_ROWS), "train")
    write_coins(src, VAL_CROPS, "val")
    write_coins(src, windows((77, 144), (77, 80), (226, 0, 303, 384)), "test")
    (out / "params.yaml").write_text(yaml.safe_dump(params(a.epochs, a.threads)))
    seconds = {
        "ingest": run(out, "ingest", str(src), "--out", "ds", "--params", "params.yaml"),
        "split": run(out, "split", "ds", "--out", "sp", "--params", "params.yaml"),
        "augment": run(out, "augment", "ds", "--splits", "sp", "--out", "v", "--params", "params.yaml"),
        "train": run(out, "train", "v", "--checkpoint", "m.pt", "--logdir", "tb", "--metrics", "train.json",
                     "--curve", "curve.csv", "--params", "params.yaml"),
        "evaluate": run(out, "evaluate", "v", "--checkpoint", "m.pt", "--metrics", "eval.json", "--confusion",
                        "cm.csv", "--logdir", "tbe", "--report", "report.json", "--params", "params.yaml"),
    }
    print(json.dumps({"out": str(out), "seconds": {k: round(v, 1) for k, v in seconds.items()},
                      "test": json.loads((out / "eval.json").read_text())}))


if __name__ == "__main__":
    main()
