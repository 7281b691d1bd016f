"""DVC stage `ingest`: source tree --src -> canonical dataset --out (params `ingest.*`)."""

from __future__ import annotations

import sys
from pathlib import Path

from stages.runner import stage_main


def run(params: Path, src: Path, out: Path) -> None:
    from pipeline.config import load_section
    from pipeline.ingest import ingest

    ds = ingest(src, out, load_section("ingest", params))
    print(f"ingest: {len(ds.samples)} samples, {len(ds.classes)} classes, "
          f"{len(ds.quarantine)} quarantined (see {out}/quarantine.jsonl)")


if __name__ == "__main__":
    sys.exit(stage_main("ingest", {"src": "source tree", "out": "canonical dataset directory"}, run))
