"""The augment stage: stream a canonical dataset into a dataset version, atomically.

Per split, rows are cut into batches of at most ``batch_size`` rows and
``batch_pixels`` pixels (memory bounded by pixels, not a count). A thread pool decodes the
next batches' images while the current batch is transformed; one writer thread
appends the results to the split's files in row order. Memory holds a few
batches, never the dataset. Every random draw is keyed by (seed, source id,
copy), and every file is written in row order, so the bytes do not depend on the
batch size, the number of workers or the device.

Atomicity: everything is written into a temporary directory beside ``out`` and
renamed into place at the end (``pipeline.core.atomic``). A run killed with SIGKILL
leaves only that hidden temporary directory, which DVC does not track (it is not
the declared out) and which the next run deletes (``pipeline.core.atomic.clean_stale``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from pipeline.core.atomic import atomic_dir
from pipeline.config import AugmentParams
from pipeline.record import SPLITS, Dataset
from pipeline.version.card import VersionCard
from pipeline.version.job import close_split, finish, prepare, render_rows


def write_version(dataset: Dataset, assignment: dict[str, str], params: AugmentParams, out: Path,
                  inputs: Iterable[Path] = ()) -> VersionCard:
    """Write the dataset version into ``out`` atomically and return its card.

    ``out`` is claimed first (``pipeline.core.outputs``): apart from the dataset and from
    ``inputs`` (the split directory), and empty or a version written before. Under
    ``torchrun`` the rows are rendered by every rank (``pipeline.version.sharded``)."""
    from pipeline.core.ranks import world_size

    if world_size() > 1:
        from pipeline.version.sharded import write_sharded

        return write_sharded(dataset, assignment, params, out, inputs)
    job = prepare(dataset, assignment, params, out, inputs)
    with atomic_dir(job.out, "version", job.inputs) as tmp, \
            open(tmp / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for split in SPLITS:
            sw = job.split_writer(tmp, split, manifest)
            render_rows(job, split, job.plan.rows(split), sw, job.plan.count(split))
            close_split(job, split, sw.close(), sw.total, sw.total_sq, sw.pixels, sw.source.hexdigest(),
                        sw.counts)
        manifest.close()
        card = finish(job, tmp)
    return card
