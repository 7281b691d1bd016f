"""The evaluate stage for a detector or segmenter: COCO scores of the scored split
(``evaluate.split``: test by default).

The checkpoint's detector runs on every image of it; ``detscore`` scores boxes (and
masks, for ``segment``) with pycocotools' COCOeval. Written:

* ``metrics``: the headline (map, map50, map75, ar100; mask_* for segment), so
  ``dvc exp show`` and ``dvc metrics diff`` compare detectors;
* ``report``: per-class AP table(s) and the detection confusion matrix;
* ``confusion_csv``: one (actual, predicted) row per count of the confusion matrix
  with a background class, the rows DVC's ``confusion`` template counts;
* ``pr_csv`` (optional): the per-class precision-recall curves at IoU .5;
* TensorBoard: scored images with ground truth and predictions drawn in two colours.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pipeline.core.atomic import atomic_write_text
from pipeline.config import EvaluateParams
from pipeline.core.device import resolve_device
from pipeline.core.errors import InputError
from pipeline.core.outputs import check_apart, check_dir_target, claim_file
from pipeline.train import board, hparams


def evaluate_detection(version: Path, checkpoint: Path, params: EvaluateParams, metrics: Path,
                       confusion_csv: Path, logdir: Path, report: Path | None = None,
                       pr_csv: Path | None = None, hparams_logdir: Path | None = None) -> dict:
    from torch.utils.tensorboard import SummaryWriter

    from pipeline.torchdata import open_splits
    from pipeline.train import detscore
    from pipeline.train.checkpoint import load_model
    from pipeline.train.detect import score_split

    for path, what in ((metrics, "metrics file"), (confusion_csv, "confusion CSV"), (report, "report"),
                       (pr_csv, "precision-recall CSV")):
        if path is not None:
            claim_file(path, [version, checkpoint], what)  # never inside (or onto) what it reads
    check_apart(logdir, [version, checkpoint], "the log directory", cwd=False)
    check_dir_target(logdir, "the log directory")
    device = resolve_device(params.device)
    model, ckpt = load_model(checkpoint, device)
    classes, masks = list(ckpt["classes"]), ckpt["task"] == "segment"
    scored = params.split
    test = open_splits(version, masks=masks).get(scored)
    if test is None or len(test) == 0:
        raise InputError(f"{version}: the {scored} split (evaluate.split) is empty; give split.ratios a {scored} share")
    if not test.detection:
        raise InputError(f"{version}: has image labels only, but {checkpoint} is a {ckpt['task']} model; "
                         "evaluate it on a version with objects")
    if list(test.classes) != classes:
        raise InputError(f"{version}: classes {list(test.classes)} are not the {classes} {checkpoint} was "
                         "trained on; evaluate on its version")
    preds, targets, box, mask = score_split(model, test, device, classes, masks,
                                            batch_size=min(params.batch_size, 16))
    cm = detscore.confusion(targets, preds, classes)
    headline = {**box.headline(), **(mask.headline("mask_") if mask is not None else {}),
                f"{scored}_images": len(test)}
    details = {"box": box.report(), **({"mask": mask.report()} if mask is not None else {}),
               "confusion_matrix": cm.tolist(), "confusion_axes": "rows predicted, columns true",
               "classes": classes + [detscore.background_name(classes)]}
    atomic_write_text(metrics, json.dumps(headline, indent=1) + "\n")
    if report is not None:
        atomic_write_text(report, json.dumps(details, indent=1) + "\n")
    atomic_write_text(confusion_csv, detscore.csv_text(detscore.confusion_rows(cm, classes),
                                                       detscore.CONFUSION_HEADER))
    if pr_csv is not None:
        atomic_write_text(pr_csv, detscore.csv_text(box.pr_rows(), detscore.PR_HEADER))
    name = board.evaluation_run(ckpt)
    trial = (hparams.run_hparams(ckpt.get("params", {}), params),
             hparams.run_metrics(ckpt.get("history", []), headline, scored))
    run_dir = logdir / name
    hparams.clear_events(run_dir, hparams.EVENTS_SUFFIX)
    run_dir.mkdir(parents=True, exist_ok=True)
    with SummaryWriter(str(run_dir), filename_suffix=hparams.EVENTS_SUFFIX) as writer:
        for i in range(min(params.worst, len(test))):  # evaluate.worst: images shown
            image = test[i][0].as_subclass(torch.Tensor).permute(1, 2, 0).numpy()
            drawn = detscore.draw(np.ascontiguousarray(image), targets[i], preds[i], classes)
            writer.add_image(f"{scored}/predictions/{i:03d}", drawn, 0, dataformats="HWC")
        if hparams_logdir is None:
            hparams.write_trial(writer._get_file_writer(), name, *trial)
    if hparams_logdir is not None:
        hparams.write_apart(hparams_logdir, name, trial)
    return {**headline, **details, "split": scored}
