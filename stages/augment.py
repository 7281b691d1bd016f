"""DVC stage `augment`: canonical dataset + splits -> dataset version --out (params `augment.*`)."""

from __future__ import annotations

import sys
from pathlib import Path

from stages.runner import stage_main


def run(params: Path, dataset: Path, splits: Path, out: Path) -> None:
    from pipeline.config import load_section
    from pipeline.core.ranks import main_rank
    from pipeline.version import write_version
    from pipeline.datasets import load_dataset
    from pipeline.split import read_splits
    from pipeline.reports.summary import augment_facts, augment_line

    p = load_section("augment", params)  # validated before any data is read
    card = write_version(load_dataset(dataset), read_splits(splits), p, out, inputs=[splits])
    if main_rank():  # under torchrun, rank 0 reports for all
        print(augment_line(augment_facts(card, out)))


if __name__ == "__main__":
    sys.exit(stage_main("augment", {"dataset": "canonical dataset", "splits": "split directory",
                                    "out": "dataset version directory"}, run, torch_threads=1))
