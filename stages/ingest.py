"""DVC stage `ingest`: source tree --src -> canonical dataset --out, health report --stats (params `ingest.*`).

With ``ingest.sources`` set in params.yaml those sources are merged instead of --src.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stages.runner import stage_main


def run(params: Path, src: Path, out: Path, stats: Path) -> None:
    from pipeline.config import load_section
    from pipeline.ingest import ingest
    from pipeline.core.outputs import claim_file
    from pipeline.core.ranks import main_rank
    from pipeline.reports.stats import write_stats
    from pipeline.reports.summary import ingest_facts, ingest_lines

    p = load_section("ingest", params)
    claim_file(stats, [src, out, *(s.path for s in p.sources)], "health report")  # before the work
    ds = ingest(src, out, p)
    if not main_rank():  # under torchrun, rank 0 writes the report and speaks for all
        return
    write_stats(ds, stats)
    print(ingest_lines(ingest_facts(ds, out)))


if __name__ == "__main__":
    sys.exit(stage_main("ingest", {"src": "source tree", "out": "canonical dataset directory",
                                   "stats": "health report (metrics JSON)"}, run))
