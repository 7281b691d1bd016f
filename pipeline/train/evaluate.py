"""The evaluate stage: metrics of the scored split (``evaluate.split``: test, or the
user's own val) for a checkpoint, for DVC and TensorBoard.

Writes ``metrics.json`` (accuracy, loss, macro-F1, per-class precision/recall/F1
and the confusion matrix) and a CSV of (actual, predicted) class names per scored
image, which DVC's ``confusion`` plot template reads.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import torch

from pipeline.core.atomic import atomic_write_text
from pipeline.config import EvaluateParams
from pipeline.core.device import resolve_device
from pipeline.core.errors import InputError
from pipeline.core.outputs import check_apart, check_dir_target, claim_file
from pipeline.train import board, hparams
from pipeline.train.hparams import EVENTS_SUFFIX
from pipeline.train.checkpoint import load_model
from pipeline.train.data import InputSize, SplitRows, checkpoint_input, load_split, read_card
from pipeline.train.loop import evaluate_split, split_batches


# Evaluate's event files end so: a re-evaluation replaces them and nothing else.


def load_checkpoint(path: Path, device="cpu"):
    """Rebuild the model stored in a checkpoint; returns (model, checkpoint dict)."""
    model, ckpt = load_model(path, device)
    return model.to(memory_format=torch.channels_last), ckpt


class RowImages:
    """``[i]``: uint8 (C, H, W) of row ``i`` as the model saw it; read only for the rows shown."""

    def __init__(self, rows: SplitRows, size: InputSize):
        self.rows, self.size = rows, size

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.rows.read([i], self.size)[0]


def confusion_matrix(actual: torch.Tensor, predicted: torch.Tensor, k: int) -> torch.Tensor:
    """(k, k) counts: row = actual class, column = predicted class."""
    return torch.bincount(actual * k + predicted, minlength=k * k).reshape(k, k)


def per_class_scores(cm: torch.Tensor, classes: list[str]) -> tuple[dict, float]:
    cm = cm.to(torch.float64)
    tp = cm.diag()
    precision = tp / cm.sum(0).clamp(min=1)
    recall = tp / cm.sum(1).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    scores = {
        name: {"precision": round(float(precision[i]), 6), "recall": round(float(recall[i]), 6),
               "f1": round(float(f1[i]), 6), "support": int(cm[i].sum())}
        for i, name in enumerate(classes)
    }
    return scores, float(f1.mean())


def evaluate(version: Path, checkpoint: Path, params: EvaluateParams, metrics: Path,
             confusion_csv: Path, logdir: Path, report: Path | None = None, hparams_logdir: Path | None = None) -> dict:
    """Metrics of the split ``params.split`` names (test by default) for ``checkpoint``:
    metrics JSON, confusion CSV, TensorBoard run, and the per-class report. Returns all
    of it as one dict.

    ``metrics`` holds only the headline numbers, accuracy and macro-F1 first, so they
    lead ``dvc exp show``'s columns; per-class scores and the confusion matrix go to
    ``report`` (a DVC output, not a metrics file: dozens of columns otherwise).

    The TensorBoard run is ``logdir/<run>`` (``<run>``: ``DVC_EXP_NAME``, else the
    checkpoint's run name): confusion matrix, per-class PR curves and the worst
    misclassified test images. The run's one HParams trial (train and evaluate params
    against train, val and test metrics: ``pipeline.train.hparams``) goes to
    ``hparams_logdir/<run>``, or into the evaluate run itself without one. A
    re-evaluation replaces both.
    """
    from torch.utils.tensorboard import SummaryWriter

    for path, what in ((metrics, "metrics file"), (confusion_csv, "confusion CSV"), (report, "report")):
        if path is None:
            continue
        claim_file(path, [version, checkpoint], what)  # never inside (or onto) what it reads
    for d, what in ((logdir, "the log directory"), (hparams_logdir, "the HParams log directory")):
        if d is not None:
            check_apart(d, [version, checkpoint], what, cwd=False)
            check_dir_target(d, what)
    device = resolve_device(params.device)
    model, ckpt = load_checkpoint(checkpoint, device)
    classes = ckpt["classes"]
    scored = params.split
    test = load_split(version, scored)
    if len(test) == 0:
        raise InputError(f"{version}: the {scored} split (evaluate.split) is empty; give split.ratios a {scored} share")
    size = checkpoint_input(ckpt)
    c = size.channels
    stored = read_card(version).shape
    # A checkpoint trained without resizing saw one size: a version of another is another
    # data set. One trained through the resize (mixed sizes, train.image_size) takes any.
    if stored[2] != c or (not ckpt.get("resized") and not test.fits(size)):
        raise InputError(f"{version}: {scored} images are {tuple(stored)} (H, W, C) but {checkpoint} was trained on "
                         f"{ckpt['shape']} (H, W, C); evaluate on its version")
    mean, std = torch.tensor(ckpt["mean"]), torch.tensor(ckpt["std"])
    loss, acc, probs = evaluate_split(model, test, split_batches(test, size, device, params.batch_size), mean, std,
                                      device, tta_hflip=params.tta_hflip)
    pred = probs.argmax(1)
    cm = confusion_matrix(test.labels, pred, len(classes))
    per_class, macro_f1 = per_class_scores(cm, classes)
    headline = {"accuracy": round(acc, 6), "macro_f1": round(macro_f1, 6), "loss": round(loss, 6),
                f"{scored}_samples": len(test), "tta_hflip": params.tta_hflip}
    details = {"per_class": per_class, "confusion_matrix": cm.tolist(), "classes": list(classes)}
    atomic_write_text(metrics, json.dumps(headline, indent=1) + "\n")
    if report is not None:
        atomic_write_text(report, json.dumps(details, indent=1) + "\n")
    result = {**headline, **details, "split": scored}
    f = io.StringIO(newline="")
    out = csv.writer(f)
    out.writerow(["actual", "predicted"])
    out.writerows((classes[a], classes[p]) for a, p in zip(test.labels.tolist(), pred.tolist()))
    atomic_write_text(confusion_csv, f.getvalue())
    name = board.evaluation_run(ckpt)
    trial = (hparams.run_hparams(ckpt.get("params", {}), params),
             hparams.run_metrics(ckpt.get("history", []), headline, scored))
    run_dir = logdir / name
    hparams.clear_events(run_dir, EVENTS_SUFFIX)
    run_dir.mkdir(parents=True, exist_ok=True)
    with SummaryWriter(str(run_dir), filename_suffix=EVENTS_SUFFIX) as writer:
        writer.add_figure(f"{scored}/confusion_matrix", board.confusion_figure(cm, classes, scored), 0)
        board.log_pr_curves(writer, probs, test.labels, classes, f"{scored}/pr")
        fig = board.worst_grid(RowImages(test, size), test.labels, probs, classes, params.worst)
        if fig is not None:
            writer.add_figure(f"{scored}/worst_misclassified", fig, 0)
        if hparams_logdir is None:
            hparams.write_trial(writer._get_file_writer(), name, *trial)
    if hparams_logdir is not None:
        hparams.write_apart(hparams_logdir, name, trial)
    return result
