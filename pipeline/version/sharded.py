"""One dataset version rendered by every rank ``torchrun`` started, with the bytes of one process.

A row's pixels and record depend only on its keys (seed, source id, copy) and its
split's partner pool, never on its batch or on which process renders it. So each
rank renders a contiguous share of every split (whole source images, all their
copies: ``Ranks.share`` over the split's samples) with the same ``Renderer``, into
its part directory ``.parts/<rank>/`` inside rank 0's temporary directory: the
share's arrays as ``.npy`` files, its manifest lines, its PNG files, and the lines
the split's hashes are fed (``HashFeed``). Rank 0 then assembles each split in row
order: the arrays' bodies concatenated under one header (hashed as written), the
manifest lines in order (the card's counts recounted from them), PNG files moved
into place, the integer pixel sums added (exact, so order-free), and finishes the
card as the single-process writer does; ``atomic_dir`` renames the result into
place. Other ranks never touch ``out``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from itertools import islice
from pathlib import Path
from typing import Iterable

import numpy as np

from pipeline.core.atomic import atomic_dir
from pipeline.config import AugmentParams
from pipeline.core.ranks import Ranks, join
from pipeline.record import SPLITS, Dataset
from pipeline.version import card as cards
from pipeline.version.manifest import VersionRow
from pipeline.version.shards import NpyWriter
from pipeline.version.job import VersionJob, close_split, finish, prepare, render_rows

PARTS = ".parts"  # inside the temporary directory: one folder per rank, removed before the rename
ARRAYS = ("images", "labels", "mix_labels", "mix_weights")
COPY_BYTES = 1 << 24  # a multiple of every item size


class HashFeed:
    """Stands in for a hash in a rank's ``_SplitWriter``: the bytes it would be fed go to a
    file, and rank 0 feeds every rank's file, in order, to the one real hash."""

    def __init__(self, path: Path):
        self._f = open(path, "wb")

    def update(self, data: bytes) -> None:
        self._f.write(data)

    def hexdigest(self) -> str:
        return ""

    def close(self) -> None:
        self._f.close()


def write_sharded(dataset: Dataset, assignment: dict[str, str], params: AugmentParams, out: Path,
                  inputs: Iterable[Path] = ()) -> cards.VersionCard:
    """``write_version`` on every rank of a torchrun world; returns rank 0's card on every rank."""
    from pipeline.core.device import resolve_device

    device = resolve_device(params.device)
    ranks = join(device.type)
    try:
        job = ranks.sync(lambda: prepare(dataset, assignment, params, out, inputs, device))
        if not params.workers:  # the node's cores are split between its ranks (no byte depends on it)
            job.workers = max(1, job.workers // ranks.local_size)
        with contextlib.ExitStack() as stack:
            def open_tmp() -> str | None:
                if not ranks.main:
                    return None
                tmp = stack.enter_context(atomic_dir(job.out, "version", job.inputs))
                (tmp / PARTS).mkdir()
                return os.path.abspath(tmp)  # the same path on every node (shared storage)

            tmp = Path(ranks.from_main(ranks.sync(open_tmp)))
            ranks.sync(lambda: render_share(job, ranks, tmp / PARTS))
            ranks.sync(lambda: assemble(job, ranks, tmp) if ranks.main else None)
            ranks.sync(stack.close)  # rank 0: the checks again and the rename
        return ranks.from_main(job.card)
    finally:
        ranks.close()


def render_share(job: VersionJob, ranks: Ranks, parts: Path) -> None:
    """Render this rank's share of every split into ``parts/<rank>``."""
    mine = parts / str(ranks.rank)
    mine.mkdir()  # not parents: a removed temporary directory is never made again
    for split in SPLITS:
        per = len(job.plan.copies(split))
        lo, hi = ranks.share(len(job.plan.by_split[split]))
        start, stop = lo * per, hi * per
        source, pngs = HashFeed(mine / f"{split}.sources"), HashFeed(mine / f"{split}.pngs")
        try:
            with open(mine / f"{split}.manifest.jsonl", "w", encoding="utf-8") as manifest:
                sw = job.split_writer(mine, split, manifest, stop - start, start, source, pngs)
                render_rows(job, split, islice(job.plan.rows(split), start, stop), sw, stop - start,
                            show=ranks.main)
                sw.close()
        finally:
            source.close()
            pngs.close()
        (mine / f"{split}.json").write_text(json.dumps({"total": sw.total.tolist(),
                                                        "total_sq": sw.total_sq.tolist(), "pixels": sw.pixels}))


def _copy_body(src: Path, dst: NpyWriter) -> None:
    """Append the data of the ``.npy`` file ``src`` (its header skipped) to ``dst``."""
    with open(src, "rb") as f:
        assert np.lib.format.read_magic(f) == (1, 0)  # NpyWriter writes version 1.0 headers
        np.lib.format.read_array_header_1_0(f)
        for block in iter(lambda: f.read(COPY_BYTES), b""):
            dst.write(np.frombuffer(block, dtype=dst.dtype))


def assemble(job: VersionJob, ranks: Ranks, tmp: Path) -> None:
    """Rank 0: every split's files from the ranks' parts, in row order; then the card."""
    parts = [tmp / PARTS / str(r) for r in range(ranks.size)]
    h, w, c = job.hwc
    with open(tmp / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for split in SPLITS:
            n = job.plan.count(split)
            shapes = {"images": (np.uint8, (n, h, w, c)), "labels": (np.int64, (n,)),
                      "mix_labels": (np.int64, (n,)), "mix_weights": (np.float32, (n,))}
            files: dict[str, str] = {}
            for name in ARRAYS if job.packed else ARRAYS[1:]:
                dtype, shape = shapes[name]
                writer = NpyWriter(tmp / f"{split}_{name}.npy", dtype, shape)
                for part in parts:
                    _copy_body(part / f"{split}_{name}.npy", writer)
                files[f"{split}_{name}.npy"] = writer.close()
            counts = cards.SplitCounts(list(job.mix_ops))
            source, png_sha = hashlib.sha256(), hashlib.sha256()
            total = np.zeros(c, dtype=object)
            total_sq = np.zeros(c, dtype=object)
            pixels = 0
            for part in parts:
                with open(part / f"{split}.manifest.jsonl", encoding="utf-8") as lines:
                    for line in lines:
                        manifest.write(line)
                        counts.add(VersionRow.from_json(line))
                source.update((part / f"{split}.sources").read_bytes())
                png_sha.update((part / f"{split}.pngs").read_bytes())
                stats = json.loads((part / f"{split}.json").read_text())
                total += np.array(stats["total"], dtype=object)
                total_sq += np.array(stats["total_sq"], dtype=object)
                pixels += stats["pixels"]
                folder = part / "images" / split
                if folder.is_dir():
                    (tmp / "images" / split).mkdir(parents=True, exist_ok=True)
                    for png in sorted(folder.iterdir()):
                        os.replace(png, tmp / "images" / split / png.name)
            if not job.packed:
                files[f"images/{split}"] = png_sha.hexdigest()
            close_split(job, split, files, total.tolist(), total_sq.tolist(), pixels, source.hexdigest(), counts)
    shutil.rmtree(tmp / PARTS)
    finish(job, tmp)
