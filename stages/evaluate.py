"""DVC stage `evaluate`: checkpoint + dataset version -> test metrics and plots (params `evaluate.*`)."""

from __future__ import annotations

import sys
from pathlib import Path

from stages.runner import stage_main


def run(params: Path, version: Path, checkpoint: Path, metrics: Path, confusion: Path, logdir: Path,
        report: Path, hparams: Path) -> None:
    from pipeline.config import load_section
    from pipeline.summary import evaluate_line
    from pipeline.train.evaluate import evaluate

    print(evaluate_line(evaluate(version, checkpoint, load_section("evaluate", params), metrics, confusion,
                                 logdir, report, hparams)))


if __name__ == "__main__":
    sys.exit(stage_main("evaluate", {
        "version": "dataset version", "checkpoint": "checkpoint file",
        "metrics": "metrics JSON", "confusion": "confusion CSV (actual, predicted)",
        "logdir": "TensorBoard log directory", "report": "per-class scores and confusion matrix (JSON)",
        "hparams": "TensorBoard HParams directory: the run's one trial (train and evaluate params and metrics)",
    }, run, torch_threads=0))
