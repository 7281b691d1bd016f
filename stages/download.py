"""DVC stage `download`: params `download.*` -> dataset tree at --out."""

from __future__ import annotations

import sys
from pathlib import Path

from stages.runner import stage_main


def run(params: Path, out: Path) -> None:
    from pipeline.config import load_section
    from pipeline.download import download

    p = load_section("download", params)
    download(p.dataset, out, mirror=p.mirror, digests=tuple(p.checksums.items()), timeout=p.timeout,
             min_rate=p.min_rate, rate_window=p.rate_window)


if __name__ == "__main__":
    sys.exit(stage_main("download", {"out": "where the dataset tree is written"}, run))
