"""The ingest stage: user trees in, one canonical dataset out.

``ingest`` reads a source with its format reader, decodes and checks every image
(``build.py``), and writes the canonical dataset (see ``pipeline.record``)
atomically. Bad inputs go to the quarantine list with a reason; accepted +
quarantined always equals the inputs found.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.atomic import atomic_dir
from pipeline.config import IngestParams
from pipeline.errors import ConfigError
from pipeline.ingest.build import decode_all, to_sample
from pipeline.ingest.candidate import Candidate
from pipeline.ingest.imagefolder import read_imagefolder
from pipeline.record import Dataset, Rejected, save_dataset, load_dataset

READERS = {"imagefolder": read_imagefolder}


def ingest(src: Path, out: Path, params: IngestParams, fmt: str | None = None) -> Dataset:
    """Ingest ``src`` (read-only) into the canonical dataset directory ``out``."""
    fmt = fmt or params.format
    if fmt not in READERS:
        raise ConfigError(f"unknown ingest format {fmt!r}; known: {', '.join(sorted(READERS))}")
    items = list(READERS[fmt](Path(src)))
    candidates = [c for c in items if isinstance(c, Candidate)]
    rejected = [r for r in items if isinstance(r, Rejected)]
    with atomic_dir(Path(out)) as tmp:
        accepted, bad = decode_all(candidates, tmp, params.min_size, params.max_pixels, params.workers)
        samples = [to_sample(c, rel, info) for c, rel, info in accepted]
        classes = sorted({s.label for s in samples if s.label is not None}
                         | {o.label for s in samples for o in s.objects})
        save_dataset(tmp, samples, classes, rejected + bad)
    return load_dataset(Path(out))
