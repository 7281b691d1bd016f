"""A version's writing machinery, shared by the single-process writer (``writer``) and
the sharded one (``sharded``): ``prepare`` claims the output, checks the version fits
and builds the pipeline, the renderer and the card's head into a ``VersionJob``;
``render_rows`` streams rows through the renderer into a split's files (decode threads
ahead, one writer thread behind); ``close_split`` and ``finish`` complete the card.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from pipeline.config import AugmentParams
from pipeline.core.outputs import claim_dir
from pipeline.core.progress import bar as progress_bar
from pipeline.record import Dataset
from pipeline.version import card as cards
from pipeline.version.decode import Decoded
from pipeline.version.plan import Plan, Row, batches, output_geometry, reference_size
from pipeline.version.render import Rendered, Renderer, pin_backend
from pipeline.version.shards import NpyWriter, write_png

LOOKAHEAD = 2  # batches decoded ahead of the transform
MIX_ARRAYS = ("<split>_mix_labels.npy: int64, the mixup/cutmix partner's class (= <split>_labels.npy when "
              "not mixed; -1 without image labels); <split>_mix_weights.npy: float32, the weight of "
              "<split>_labels.npy's class (1.0 when not mixed). Soft label = w * onehot(label) + "
              "(1 - w) * onehot(mix_label)")


class _SplitWriter:
    """Files of one split, appended in row order (called from the writer thread only)."""

    def __init__(self, tmp: Path, split: str, n: int, hwc: tuple, packed: bool, manifest,
                 counts: cards.SplitCounts, start: int = 0, source=None, png_sha=None):
        self.tmp, self.split, self.packed, self.manifest = tmp, split, packed, manifest
        self.images = NpyWriter(tmp / f"{split}_images.npy", np.uint8, (n, *hwc)) if packed else None
        self.pixels = 0  # pixels written (rows may differ in size at native resolution)
        self.labels = NpyWriter(tmp / f"{split}_labels.npy", np.int64, (n,))
        # mixup/cutmix: the partner's label and the weight of ``labels`` (1.0, same label: not mixed)
        self.mix_labels = NpyWriter(tmp / f"{split}_mix_labels.npy", np.int64, (n,))
        self.mix_weights = NpyWriter(tmp / f"{split}_mix_weights.npy", np.float32, (n,))
        self.index = start  # a rank's share starts inside the split (pipeline.version.sharded)
        self.counts = counts
        self.total = np.zeros(hwc[2], dtype=np.int64)
        self.total_sq = np.zeros(hwc[2], dtype=np.int64)
        # What the hashes are fed (a rank's share logs it for rank 0 instead: ``sharded.HashFeed``)
        self.source = source or hashlib.sha256()
        self.last_source = None
        self.png_sha = png_sha or hashlib.sha256()

    def write(self, batch: list[Row], r: Rendered, shas: list[str]):
        arr = r.pixels
        # Exact integer sums: the same totals however the rows are grouped.
        for part in [arr] if isinstance(arr, np.ndarray) else arr:
            flat = part.reshape(-1, part.shape[-1]).astype(np.int64)
            self.total += flat.sum(0)
            self.total_sq += (flat * flat).sum(0)
            self.pixels += len(flat)
        if self.images is not None:
            self.images.write(np.asarray(arr))
        self.labels.write(np.asarray(r.labels, dtype=np.int64))
        self.mix_labels.write(np.asarray([m[1] for m in r.mix], dtype=np.int64))
        self.mix_weights.write(np.asarray([m[2] for m in r.mix], dtype=np.float32))
        for row, vrow, sha, img in zip(batch, r.rows, shas, arr):
            assert vrow.index == self.index, "rows reach the writer in plan order"
            if vrow.file is not None:
                self.png_sha.update(write_png(self.tmp / vrow.file, img).encode())
            self.manifest.write(vrow.to_json() + "\n")
            self.counts.add(vrow)
            if row.sample.id != self.last_source:  # one entry per source image, in id order
                self.source.update(f"{row.sample.id}\t{sha}\n".encode())
                self.last_source = row.sample.id
            self.index += 1

    def close(self) -> dict[str, str]:
        files = {f"{self.split}_labels.npy": self.labels.close(),
                 f"{self.split}_mix_labels.npy": self.mix_labels.close(),
                 f"{self.split}_mix_weights.npy": self.mix_weights.close()}
        if self.images is not None:
            files[f"{self.split}_images.npy"] = self.images.close()
        else:
            files[f"images/{self.split}"] = self.png_sha.hexdigest()
        return files


@dataclass
class VersionJob:
    """Everything a version's writer prepared before the first pixel (the same on every rank)."""
    dataset: Dataset
    assignment: dict[str, str]
    params: AugmentParams
    out: Path
    inputs: list
    hwc: tuple[int, int, int]
    packed: bool
    plan: Plan
    renderer: Renderer
    workers: int
    params_dump: dict  # the params the card records
    pipeline_dump: dict  # the pipeline as it runs
    mix_ops: tuple[str, ...]
    splits: dict[str, cards.SplitSummary] = field(default_factory=dict)  # filled by close_split
    files: dict[str, str] = field(default_factory=dict)
    source_lines: list[str] = field(default_factory=list)  # "<split>\t<sha of its source images>\n"
    card: cards.VersionCard | None = None  # built by finish

    def split_writer(self, tmp: Path, split: str, manifest, n: int | None = None, start: int = 0,
                     source=None, png_sha=None) -> _SplitWriter:
        return _SplitWriter(tmp, split, self.plan.count(split) if n is None else n, self.hwc, self.packed,
                            manifest, cards.SplitCounts(list(self.mix_ops)), start, source, png_sha)


def prepare(dataset: Dataset, assignment: dict[str, str], params: AugmentParams, out: Path,
            inputs: Iterable[Path] = (), device=None) -> VersionJob:
    """Claim ``out`` (read-only checks), check the version fits, build the pipeline and the card's head."""
    from pipeline.augment.registry import dump_pipeline
    from pipeline.core.device import cpu_cores, resolve_device
    from pipeline.version.preflight import check_fits

    out = Path(out)
    inputs = [dataset.root, *inputs]
    claim_dir(out, "version", inputs)
    check_fits(dataset, assignment, params, out)  # memory and disk, before any work
    device = device or resolve_device(params.device)
    h, w, c = output_geometry(dataset, params)  # h, w None: each row at its source's size
    ref_h, ref_w = reference_size(dataset, h, w)
    pipe = version_pipeline(params, device, ref_h, ref_w)
    pipe.check_offline(ref_h, ref_w, classification=dataset.kind == "classification")
    packed = h is not None and w is not None and h * w <= params.pack_max_pixels
    plan = Plan(dataset, assignment, params)
    renderer = Renderer(dataset, pipe, h, w, c, params.seed, packed, str(device), params.resize, params.pad_value)
    workers = params.workers or cpu_cores()
    return VersionJob(dataset, assignment, params, out, inputs, (h, w, c), packed, plan, renderer, workers,
                      # Knobs that cannot change a byte stay out of the card, so it is identical too.
                      params.model_dump(mode="json", exclude={"batch_size", "batch_pixels", "workers", "device"}),
                      # The pipeline as it ran: defaults filled in, backend resolved (trace never re-decides).
                      dump_pipeline(pipe), tuple(op.name for op in pipe.ops if op.kind == "mixing"))


def render_rows(job: VersionJob, split: str, rows: Iterable[Row], sw: _SplitWriter, total: int,
                show: bool = True) -> None:
    """Render ``rows`` (``total`` rows of ``split``, in plan order) and append them to ``sw``."""
    renderer, pool_of_split = job.renderer, job.plan.by_split[split]
    with ThreadPoolExecutor(job.workers, thread_name_prefix="decode") as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="write") as writer:
        def decode_many(wanted: list, hw: tuple[int, int]) -> dict[str, Decoded]:
            futures = {s.id: pool.submit(renderer.decode, s, hw) for s in {s.id: s for s in wanted}.values()}
            return {sid: f.result() for sid, f in futures.items()}

        pending: deque[tuple[list[Row], dict[str, Future]]] = deque()
        last_write: Future | None = None
        bar = progress_bar(f"augment {split}", total, "img", show)

        def submit(batch: list[Row]) -> None:
            uniq = {r.sample.id: r.sample for r in batch}
            pending.append((batch, {sid: pool.submit(renderer.decode, s) for sid, s in uniq.items()}))

        for batch in batches(iter(rows), job.params.batch_size, job.params.batch_pixels,
                             lambda r: math.prod(renderer.size_of(r.sample))):
            submit(batch)
            if len(pending) <= LOOKAHEAD:
                continue
            last_write = _step(pending, renderer, decode_many, sw, writer, last_write, bar, pool_of_split)
        while pending:
            last_write = _step(pending, renderer, decode_many, sw, writer, last_write, bar, pool_of_split)
        if last_write is not None:
            last_write.result()
        bar.close()


def close_split(job: VersionJob, split: str, files: dict[str, str], total, total_sq, pixels: int,
                source_sha: str, counts: cards.SplitCounts) -> None:
    """Record a finished split for the card: its files' hashes, pixel statistics and counts."""
    job.files.update(files)
    mean, std = cards.pixel_stats(list(map(int, total)), list(map(int, total_sq)), pixels)
    job.splits[split] = counts.summary(job.plan.count(split), mean, std, job.dataset.kind == "detection")
    job.source_lines.append(f"{split}\t{source_sha}\n")


def finish(job: VersionJob, tmp: Path) -> cards.VersionCard:
    """The version's last files: classes.json, card.json and CARD.md (manifest.jsonl written)."""
    dataset = job.dataset
    h, w, c = job.hwc
    source_images = hashlib.sha256("".join(job.source_lines).encode())
    files = {**job.files, "manifest.jsonl": cards.file_sha256(tmp / "manifest.jsonl")}
    (tmp / "classes.json").write_text(json.dumps(list(dataset.classes), indent=1) + "\n")
    source = cards.CardSource(
        # Relative to the version, resolved: the same bytes however the paths were typed.
        dataset=os.path.relpath(Path(dataset.root).resolve(), job.out.resolve()),
        manifest_sha256=cards.file_sha256(dataset.root / "manifest.jsonl"),
        classes_sha256=cards.file_sha256(dataset.root / "classes.json"),
        splits_sha256=cards.assignment_sha256(job.assignment),
        images_sha256=source_images.hexdigest(),
    )
    job.card = cards.VersionCard(
        kind=dataset.kind, storage="packed" if job.packed else "files", image_shape=(h, w, c),
        classes=tuple(dataset.classes), seed=job.params.seed, params=job.params_dump, pipeline=job.pipeline_dump,
        mix_ops=job.mix_ops, mix_arrays=MIX_ARRAYS, lineage=cards.lineage(), splits=dict(job.splits),
        files=files, source=source)
    (tmp / "card.json").write_text(job.card.to_json())
    (tmp / "CARD.md").write_text(cards.render_markdown(job.card), encoding="utf-8")
    return job.card


def _step(pending, renderer: Renderer, decode_many, sw: _SplitWriter, writer, last_write, bar, pool) -> Future:
    """Render the oldest pending batch and hand it to the writer thread (one write in flight)."""
    batch, futures = pending.popleft()
    decoded = {sid: f.result() for sid, f in futures.items()}
    rendered = renderer.render(batch, decoded, pool, decode_many)
    shas = [decoded[r.sample.id].sha256 for r in batch]
    if last_write is not None:
        last_write.result()  # bounded: at most one batch waits to be written
    bar.update(len(batch))
    return writer.submit(sw.write, batch, rendered, shas)


def version_pipeline(params: AugmentParams, device, h: int, w: int):
    """The pipeline a version of ``params`` runs at (h, w) on ``device``, backend pinned:
    the writer and the preview build it here, trace rebuilds it from the card."""
    from pipeline.augment.registry import build_pipeline

    pipe = build_pipeline(params.pipeline, min_visibility=params.min_visibility,
                          min_area=params.min_area, backend=params.backend)
    return pin_backend(pipe, device, h, w)
