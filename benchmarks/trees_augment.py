"""Does the augment stage earn its place on the trees example? The same detector trained
with and without augmentation, over several seeds, scored on the test split.

    python benchmarks/trees_augment.py [--seeds 0 1 2] [--arms augmented none] [--out DIR]

Run from the repository root after `cd examples/trees && dvc repro split` (it reads that
example's canonical dataset, splits and params.yaml). For each seed and arm it writes a
version, trains and evaluates through the stages' own entry points (`python -m stages.X
--params ...`), in a directory of its own (default: a temporary one), and prints one JSON
line per run, then a summary:

* ``augmented``: the example's params as they are (two augmented copies of each train
  tile beside the original), ``augment.seed`` and ``train.seed`` set to the seed;
* ``none``: ``augment.copies: 0`` and no ops (the originals alone), with ``train.epochs``
  multiplied by ``copies + 1`` so both arms take the same number of optimizer steps over
  the same schedule: augmentation is compared with simply training longer.

The recipe is the example's, fixed before this script ran; the test split is the score.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "trees"
ARMS = ("augmented", "none")


def arm_params(base: dict, arm: str, seed: int) -> dict:
    p = json.loads(json.dumps(base))
    p["augment"]["seed"] = seed
    p["train"]["seed"] = seed
    if arm == "none":
        copies = p["augment"].get("copies", 2)
        p["train"]["epochs"] = p["train"]["epochs"] * (copies + 1)
        p["augment"]["copies"] = 0
        p["augment"]["pipeline"] = []
    return p


def stage(name: str, params: Path, **paths: Path) -> float:
    """Run one stage as dvc.yaml would; returns its wall seconds."""
    cmd = [sys.executable, "-m", f"stages.{name}", "--params", str(params)]
    for key, value in paths.items():
        cmd += [f"--{key}", str(value)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PIPELINE_NO_PROGRESS": "1"}
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def run(arm: str, seed: int, base: dict, out: Path) -> dict:
    d = out / f"{arm}-{seed}"
    d.mkdir(parents=True)
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump(arm_params(base, arm, seed), sort_keys=False))
    data = EXAMPLE / "data"
    stage("augment", params, dataset=data / "canonical", splits=data / "splits", out=d / "version")
    seconds = stage("train", params, version=d / "version", checkpoint=d / "model.pt", logdir=d / "runs",
                    metrics=d / "train.json", curve=d / "curve.csv")
    stage("evaluate", params, version=d / "version", checkpoint=d / "model.pt", metrics=d / "eval.json",
          confusion=d / "confusion.csv", logdir=d / "runs", report=d / "report.json", hparams=d / "hparams")
    test = json.loads((d / "eval.json").read_text())
    return {"arm": arm, "seed": seed, "train_seconds": round(seconds, 1), **test}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS),
                    help="which arms to run (e.g. none alone, where dvc repro already gave the augmented one)")
    ap.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temporary directory)")
    args = ap.parse_args()
    base = yaml.safe_load((EXAMPLE / "params.yaml").read_text())
    out = args.out or Path(tempfile.mkdtemp(prefix="trees-augment-"))
    results = []
    for seed in args.seeds:
        for arm in args.arms:
            r = run(arm, seed, base, out)
            results.append(r)
            print(json.dumps(r), flush=True)
    for arm in args.arms:
        m50 = [r["map50"] for r in results if r["arm"] == arm]
        secs = [r["train_seconds"] for r in results if r["arm"] == arm]
        spread = statistics.stdev(m50) if len(m50) > 1 else 0.0
        print(f"{arm}: mAP50 {statistics.mean(m50):.3f} ± {spread:.3f} over seeds {args.seeds} "
              f"({', '.join(f'{v:.3f}' for v in m50)}); training {min(secs):.0f}-{max(secs):.0f} s")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of the largest stage: {peak:.0f} MiB; runs in {out}")


if __name__ == "__main__":
    main()
