"""DVC stage `evaluate`: checkpoint + dataset version -> metrics and plots of the scored split (params `evaluate.*`).

The checkpoint says what it is: a classifier is scored by accuracy and F1
(``pipeline.train.evaluate``), a detector or segmenter by COCO mAP
(``pipeline.train.detevaluate``, which also writes ``--pr`` when given)."""

from __future__ import annotations

import sys
from pathlib import Path

from stages.runner import stage_main


def run(params: Path, version: Path, checkpoint: Path, metrics: Path, confusion: Path, logdir: Path,
        report: Path, hparams: Path, pr: Path | None = None) -> None:
    from pipeline.config import load_section
    from pipeline.train.checkpoint import checkpoint_task

    evaluate_params = load_section("evaluate", params)
    if checkpoint_task(checkpoint) == "classify":
        from pipeline.core.errors import InputError
        from pipeline.reports.summary import evaluate_line
        from pipeline.train.evaluate import evaluate

        if pr is not None:
            raise InputError(f"{pr}: --pr is a detector's precision-recall CSV; {checkpoint} is a classifier")

        print(evaluate_line(evaluate(version, checkpoint, evaluate_params, metrics, confusion, logdir, report,
                                     hparams)))
        return
    from pipeline.reports.summary import detection_evaluate_line
    from pipeline.train.detevaluate import evaluate_detection

    print(detection_evaluate_line(evaluate_detection(version, checkpoint, evaluate_params, metrics, confusion,
                                                     logdir, report, pr, hparams)))


if __name__ == "__main__":
    sys.exit(stage_main("evaluate", {
        "version": "dataset version", "checkpoint": "checkpoint file",
        "metrics": "metrics JSON", "confusion": "confusion CSV (actual, predicted)",
        "logdir": "TensorBoard log directory", "report": "per-class scores and confusion matrix (JSON)",
        "hparams": "TensorBoard HParams directory: the run's one trial (train and evaluate params and metrics)",
        "pr": "detection only: per-class precision-recall CSV (class, recall, precision)",
    }, run, torch_threads=0, optional=("pr",)))
