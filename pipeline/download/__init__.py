"""The download stage: open datasets written as trees the ingest stage reads.

``CATALOG`` lists every dataset ``pipeline download`` knows; ``download`` writes one
into ``out`` atomically.
"""

from __future__ import annotations

import errno
from pathlib import Path

from pipeline.download.catalog import CATALOG, DatasetInfo, get_info
from pipeline.download.remote import FetchOptions, cache_root
from pipeline.core.errors import DownloadError
from pipeline.core.outputs import check_dir_target, claim_dir

__all__ = ["CATALOG", "DatasetInfo", "FetchOptions", "download", "get_info", "inputs_of"]


def inputs_of(opts: FetchOptions) -> list[Path | None]:
    """What a download reads: ``--from``, ``--checksums`` and the cache; ``out`` stays apart from them."""
    return [opts.source, opts.checksums, cache_root(opts)]


def download(name: str, out: Path, opts: FetchOptions | None = None, **options) -> Path:
    """Write dataset ``name`` into ``out`` (replaced atomically) and return ``out``.

    ``options`` are ``FetchOptions`` fields (``mirror``, ``checksums``, ``source``,
    ``cache``, ``retries``, ``backoff``, ``timeout``), or pass ``opts`` whole.
    """
    info = get_info(name)
    opts = opts or FetchOptions(**options)
    claim_dir(Path(out), "download", inputs_of(opts))  # before anything is fetched
    check_dir_target(cache_root(opts), "the download cache (--cache, $PIPELINE_CACHE)")
    try:
        return info.fetch(Path(out), opts)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise DownloadError(f"disk full while writing {name} into {out}: free some space "
                                "(nothing was left behind)") from None
        raise
