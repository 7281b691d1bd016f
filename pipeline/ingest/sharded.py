"""Ingest under torchrun: every rank decodes and checks a share, rank 0 writes, bytes of one process.

Every rank reads the sources' trees and annotations (cheap, deterministic: the same
candidate list everywhere) and decodes a contiguous share of the candidates
(``Ranks.share``) with its own worker processes. Rank 0 stores its share straight
into the image packs of its temporary directory; each other rank writes its
results, in candidate order, to ``.parts/<rank>`` inside that directory (storage
every node sees). Rank 0 then appends them in rank order, so the packs hold every
image in candidate order as one process writes them, builds the manifest,
quarantine, report and duplicates as one process does, and renames the directory
into place; the other ranks never touch ``out``. The decode budget is the whole
run's (``decode_jobs``), so every rank refuses exactly what one process would.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
from pathlib import Path
from typing import Callable, Iterator

from pipeline.core.atomic import atomic_dir
from pipeline.config import IngestParams
from pipeline.images.imagestore import PackWriter
from pipeline.ingest.build import _results, decode_jobs, store
from pipeline.ingest.candidate import Candidate
from pipeline.core.ranks import Ranks, join
from pipeline.record import IMAGES

PARTS = ".parts"


def _read_part(path: Path) -> Iterator:
    """The results a rank wrote with ``_write_part``, in order."""
    with open(path, "rb") as f:
        while True:
            try:
                yield pickle.load(f)
            except EOFError:
                return


def _write_part(path: Path, results: Iterator) -> None:
    with open(path, "wb") as f:
        for result in results:
            pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)


def ingest_sharded(candidates: list[Candidate], out: Path, source_paths: list[Path], params: IngestParams,
                   write: Callable[[Path, list], None]) -> None:
    """Decode ``candidates`` on every rank; rank 0 stores them and calls ``write(tmp, outcomes)``
    for the rest of the dataset, then renames it into ``out``. ``write`` decides the loss
    policy on rank 0: a ``DataLossError`` there stops every rank (``Ranks.sync``), each
    with exit 3, and nothing is renamed."""
    ranks = join("cpu")
    try:
        _run(ranks, candidates, out, source_paths, params, write)
    finally:
        ranks.close()


def _run(ranks: Ranks, candidates, out, source_paths, params: IngestParams, write) -> None:
    jobs = decode_jobs(candidates, params.min_size, params.max_pixels, params.workers, params.max_decode_bytes,
                       params.near_duplicate_bits >= 0, params.tile)
    lo, hi = ranks.share(len(jobs))
    # The node's cores are split between its ranks (no byte depends on it).
    workers = params.workers or max(1, (os.cpu_count() or 1) // ranks.local_size)
    outcomes: list = []
    with contextlib.ExitStack() as stack:
        packs: list[PackWriter] = []

        def open_tmp() -> str | None:
            if not ranks.main:
                return None
            tmp = stack.enter_context(atomic_dir(out, "canonical", source_paths))
            (tmp / PARTS).mkdir()
            packs.append(stack.enter_context(PackWriter(tmp, IMAGES)))
            return os.path.abspath(tmp)

        tmp = Path(ranks.from_main(ranks.sync(open_tmp)))

        def decode_share() -> None:
            results = _results(jobs[lo:hi], workers)
            try:
                if ranks.main:
                    store(results, candidates[lo:hi], packs[0], outcomes, tile=params.tile)
                else:
                    _write_part(tmp / PARTS / str(ranks.rank), results)
            finally:
                results.close()  # stops the workers now if the loop ended early

        ranks.sync(decode_share)

        def assemble() -> None:
            for r in range(1, ranks.size):
                a, b = ranks.share(len(jobs), r)
                store(_read_part(tmp / PARTS / str(r)), candidates[a:b], packs[0], outcomes, show=False,
                      tile=params.tile)
            packs[0].close()
            shutil.rmtree(tmp / PARTS)
            write(tmp, outcomes)

        ranks.sync(lambda: assemble() if ranks.main else None)
        ranks.sync(stack.close)  # rank 0: the checks again and the rename
