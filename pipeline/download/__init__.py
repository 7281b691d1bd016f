"""The download stage: open datasets written as trees the ingest stage reads.

``CATALOG`` lists every dataset ``pipeline download`` knows; ``download`` writes one
into ``out`` atomically.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.download.catalog import CATALOG, DatasetInfo, get_info

__all__ = ["CATALOG", "DatasetInfo", "download", "get_info"]


def download(name: str, out: Path, **options) -> Path:
    """Write dataset ``name`` into ``out`` (replaced atomically) and return ``out``."""
    info = get_info(name)
    return info.fetch(Path(out), **options)
