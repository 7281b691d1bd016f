"""DVC stage `split`: canonical dataset --dataset -> split assignment --out (params `split.*`)."""

from __future__ import annotations

import sys
from pathlib import Path

from stages.runner import stage_main


def run(params: Path, dataset: Path, out: Path) -> None:
    from pipeline.config import load_section
    from pipeline.datasets import load_dataset
    from pipeline.split import write_splits
    from pipeline.reports.summary import split_facts, split_line

    p = load_section("split", params)  # validated before any data is read
    print(split_line(split_facts(write_splits(load_dataset(dataset), p, out), out)))


if __name__ == "__main__":
    sys.exit(stage_main("split", {"dataset": "canonical dataset", "out": "split directory"}, run))
