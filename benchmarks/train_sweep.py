"""Compare training recipes over several seeds on one dataset version, choosing on val.

    python benchmarks/train_sweep.py --version data/version --name default
    python benchmarks/train_sweep.py --version data/version --name seedcnn -S model=seed_cnn -S epochs=6
    python benchmarks/train_sweep.py --version data/version --name default --test   # the check, once

Each seed is trained with the train stage's own ``pipeline.train.loop.train`` (the
params file's ``train`` section, ``-S`` overrides on top, ``train.seed`` replaced by
each of ``--seeds``). Printed per seed: training wall seconds, val accuracy and the
val images it gets wrong; then the mean, and the images wrong in most runs.

The test split is scored only with ``--test``: recipes are chosen on val, and the
test accuracy is the check afterwards, not the guide. ``--jsonl`` appends one line
per seed (recipe, seed, seconds, accuracies, the ids wrong) for later comparison.

500 val digits move in 0.2-point steps, too coarse to tell recipes apart that differ
by a digit or two. ``--cv K`` adds K-fold cross-validation on the train split: the
train images' sources are dealt to K folds (per class, in a hashed order), and for
each fold a model trains on the other folds' rows (all augmented copies) and is
scored on the fold's originals (copy 0), so every train digit is scored once by a
model that never saw it or a copy of it. The fold versions are written to a temp
dir beside the real one's card, with the train statistics recomputed per fold. A
version with offline mixing (mixup, cutmix in ``augment.pipeline``) blends
partners from any fold into its rows, so held-out digits would leak into training:
cross-validate refuses such a version.

``--tta-hflip`` also scores every split and fold with the mirrored image's softmax
averaged in (``evaluate.tta_hflip``), from the same models: plain and mirrored
side by side. ``--cv-only`` skips the full-train model and its val score: a recipe
is chosen on the CV figure, so val need not even be looked at until the choice.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def score(model, ckpt: dict, version: Path, split: str, tta_hflip: bool = False) -> tuple[float, list[str]]:
    """Accuracy of ``model`` on ``split`` and the source ids it gets wrong, in array order
    (``tta_hflip``: each image's softmax averaged with its mirror's)."""
    import torch

    from pipeline.train.data import InputSize, load_split, split_ids
    from pipeline.train.loop import predict_split, split_batches

    data = load_split(version, split)
    size = InputSize(*ckpt["shape"], tuple(ckpt["resize"]))
    device = torch.device("cpu")
    _, probs = predict_split(model, split_batches(data, size, device), torch.tensor(ckpt["mean"]),
                             torch.tensor(ckpt["std"]), device, tta_hflip=tta_hflip)
    wrong = (probs.argmax(1) != data.labels).nonzero().flatten().tolist()
    ids = split_ids(version, split)
    return 1.0 - len(wrong) / max(len(data), 1), [ids[i].split("#")[0] for i in wrong]


def cv_folds(ids: list[str], labels, k: int) -> list[int]:
    """Fold (0..k-1) of each train row: sources dealt per class in blake2b order, so a
    digit and all its augmented copies share a fold and every fold holds every class."""
    import hashlib

    by_class: dict[int, set[str]] = collections.defaultdict(set)
    for row_id, y in zip(ids, labels.tolist()):
        by_class[y].add(row_id.split("#")[0])
    fold_of: dict[str, int] = {}
    for y in sorted(by_class):
        order = sorted(by_class[y], key=lambda s: hashlib.blake2b(s.encode(), digest_size=8).digest())
        fold_of.update((src, i % k) for i, src in enumerate(order))
    return [fold_of[r.split("#")[0]] for r in ids]


def write_fold(version: Path, out: Path, fold: int, folds: list[int], ids: list[str]) -> None:
    """A dataset version at ``out`` whose train split is the other folds' rows and
    whose val split is this fold's originals (copy 0)."""
    import numpy as np

    out.mkdir(parents=True)
    keep = np.array([f != fold for f in folds])
    held = np.array([f == fold and r.endswith("#0") for f, r in zip(folds, ids)])
    for name in ("images", "labels", "mix_labels", "mix_weights"):
        src = version / f"train_{name}.npy"
        if src.is_file():
            arr = np.load(src)
            np.save(out / f"train_{name}.npy", arr[keep])
            np.save(out / f"val_{name}.npy", arr[held])
    card = json.loads((version / "card.json").read_text())
    x = np.load(out / "train_images.npy").astype(np.float64) / 255.0
    card["splits"]["train"].update(samples=int(keep.sum()), pixel_mean=x.mean(axis=(0, 1, 2)).round(6).tolist(),
                                   pixel_std=x.std(axis=(0, 1, 2)).round(6).tolist())
    (out / "card.json").write_text(json.dumps(card))
    rows = [r for r, k_ in zip(ids, keep) if k_]  # split_ids (online augment keys) reads these
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"id": r, "split": "train"}) + "\n" for r in rows)
        f.writelines(json.dumps({"id": r, "split": "val"}) + "\n" for r, h in zip(ids, held) if h)


@dataclass(frozen=True)
class CVResult:
    accuracy: float  # over all train originals, each scored by the fold model that never saw it
    wrong: list[str]  # their source ids
    seconds: float  # training wall time of the K fold models
    tta_accuracy: float | None = None  # the same models, mirrored softmax averaged in (tta_hflip)
    tta_wrong: list[str] | None = None


def cross_validate(version: Path, params, k: int, work: Path, tta_hflip: bool = False) -> CVResult:
    """K fold models trained and scored; with ``tta_hflip`` also scored with the mirror."""
    from pipeline.train.checkpoint import load_model
    from pipeline.train.data import load_split, split_ids
    from pipeline.train.loop import train

    ids = split_ids(version, "train")
    train_split = load_split(version, "train")
    if train_split.mix_weights is not None and bool((train_split.mix_weights != 1.0).any()):
        raise SystemExit(f"{version}: its train rows mix digits across folds (offline mixup/cutmix); "
                         "cross-validate on a version built without them")
    folds = cv_folds(ids, train_split.labels, k)
    wrong: list[str] = []
    tta_wrong: list[str] = []
    seconds = 0.0
    for fold in range(k):
        fv = work / f"fold{fold}"
        write_fold(version, fv, fold, folds, ids)
        t0 = time.perf_counter()
        train(fv, params, work / f"f{fold}.pt", work / "tb", work / "f.json", work / "f.csv")
        seconds += time.perf_counter() - t0
        model, ckpt = load_model(work / f"f{fold}.pt", "cpu")
        wrong += score(model, ckpt, fv, "val")[1]
        if tta_hflip:
            tta_wrong += score(model, ckpt, fv, "val", tta_hflip=True)[1]
    originals = sum(r.endswith("#0") for r in ids)  # each fold's val: its originals
    if not tta_hflip:
        return CVResult(1.0 - len(wrong) / originals, wrong, seconds)
    return CVResult(1.0 - len(wrong) / originals, wrong, seconds, 1.0 - len(tta_wrong) / originals, tta_wrong)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", type=Path, required=True, help="a packed dataset version (e.g. data/version)")
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml")
    ap.add_argument("--name", default="recipe", help="the recipe's name in the output")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated train.seed values")
    ap.add_argument("-S", dest="overrides", action="append", default=[], help="train param override k=v (YAML)")
    ap.add_argument("--test", action="store_true", help="also score the test split (the check, not the guide)")
    ap.add_argument("--jsonl", type=Path, help="append one JSON line per seed here")
    ap.add_argument("--cv", type=int, default=0, metavar="K", help="also K-fold cross-validate on train")
    ap.add_argument("--cv-only", action="store_true", help="with --cv: no full-train model, no val score")
    ap.add_argument("--tta-hflip", action="store_true", help="also score with hflip test-time augmentation")
    args = ap.parse_args()

    import yaml

    from pipeline.config import TrainParams, load_section
    from pipeline.train.checkpoint import load_model
    from pipeline.train.loop import train

    base = load_section("train", args.params).model_dump()
    over = {}
    for o in args.overrides:
        k, _, v = o.partition("=")
        over[k] = yaml.safe_load(v)
    if args.cv_only and (not args.cv or args.test):
        ap.error("--cv-only goes with --cv and without --test")
    splits = () if args.cv_only else ("val", "test") if args.test else ("val",)
    if args.cv:
        splits = ("cv",) + splits
    if args.tta_hflip:  # "cv+tta": the same models' scores with the mirror averaged in
        splits += tuple(f"{s}+tta" for s in splits)
    acc: dict[str, list[float]] = {s: [] for s in splits}
    missed: dict[str, collections.Counter] = {s: collections.Counter() for s in splits}
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        params = TrainParams(**{**base, **over, "seed": seed, "resume": False})
        with tempfile.TemporaryDirectory(prefix="sweep-") as tmp:
            work = Path(tmp)
            line = {"recipe": args.name, "overrides": over, "seed": seed}
            results: dict[str, tuple[float, list[str]]] = {}
            if not args.cv_only:
                t0 = time.perf_counter()
                train(args.version, params, work / "m.pt", work / "tb", work / "m.json", work / "c.csv")
                line["train_wall_s"] = round(time.perf_counter() - t0, 1)
                model, ckpt = load_model(work / "m.pt", "cpu")
                for split in ("val", "test") if args.test else ("val",):
                    results[split] = score(model, ckpt, args.version, split)
                    if args.tta_hflip:
                        results[f"{split}+tta"] = score(model, ckpt, args.version, split, tta_hflip=True)
            if args.cv:
                cv = cross_validate(args.version, params, args.cv, work / "cv", args.tta_hflip)
                line["cv_train_wall_s"] = round(cv.seconds, 1)
                results["cv"] = cv.accuracy, cv.wrong
                if args.tta_hflip:
                    results["cv+tta"] = cv.tta_accuracy, cv.tta_wrong
            for split in splits:
                a, wrong = results[split]
                acc[split].append(a)
                missed[split].update(wrong)
                line[f"{split}_accuracy"], line[f"{split}_wrong"] = round(a, 6), wrong
        print(json.dumps(line), flush=True)
        if args.jsonl:
            with open(args.jsonl, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
    for split in splits:
        per = ", ".join(f"{100 * a:.2f}" for a in acc[split])
        print(f"{args.name} {split}: {per} (mean {100 * sum(acc[split]) / len(acc[split]):.2f} %)")
        if len(seeds) > 1:  # one seed: its JSON line lists them
            common = [f"{i} ({n}/{len(seeds)})" for i, n in missed[split].most_common() if 2 * n > len(seeds)]
            print(f"  wrong in most runs: {', '.join(common) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
