"""DVC stage `train`: dataset version -> checkpoint, TensorBoard log, metrics (params `train.*`)."""

from __future__ import annotations

import sys
from pathlib import Path

from stages.runner import stage_main


def run(params: Path, version: Path, checkpoint: Path, logdir: Path, metrics: Path, curve: Path) -> None:
    from pipeline.config import load_section
    from pipeline.core.ranks import main_rank
    from pipeline.reports.summary import detection_train_facts, detection_train_line, train_facts, train_line
    from pipeline.train.loop import train

    history = train(version, load_section("train", params), checkpoint, logdir, metrics, curve)
    if main_rank():  # under torchrun, rank 0 reports for all
        if hasattr(history[-1], "val_map"):  # a detector's epochs
            print(detection_train_line(detection_train_facts(history, checkpoint)))
        else:
            print(train_line(train_facts(history, checkpoint)))


if __name__ == "__main__":
    sys.exit(stage_main("train", {
        "version": "dataset version", "checkpoint": "checkpoint file to write",
        "logdir": "TensorBoard log directory", "metrics": "metrics JSON", "curve": "per-epoch CSV",
    }, run))
