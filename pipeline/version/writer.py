"""The augment stage: stream a canonical dataset into a dataset version, atomically.

Per split, rows are cut into batches of ``batch_size``. A thread pool decodes the
next batches' images while the current batch is transformed; one writer thread
appends the results to the split's files in row order. Memory holds a few
batches, never the dataset. Every random draw is keyed by (seed, source id,
copy), and every file is written in row order, so the bytes do not depend on the
batch size, the number of workers or the device.

Atomicity: everything is written into a temporary directory beside ``out`` and
renamed into place at the end (``pipeline.atomic``). A run killed with SIGKILL
leaves only that hidden temporary directory, which DVC does not track (it is not
the declared out) and which the next run deletes (``pipeline.atomic.clean_stale``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

import numpy as np

from pipeline.atomic import atomic_dir
from pipeline.config import AugmentParams
from pipeline.outputs import claim_dir
from pipeline.record import Dataset
from pipeline.seeding import sample_key
from pipeline.version import card as cards
from pipeline.version.decode import Decoded, decode
from pipeline.version.manifest import exact_params
from pipeline.version.plan import SPLITS, Plan, Row, batches, output_geometry
from pipeline.version.shards import NpyWriter, write_png
from pipeline.version.targets import mix_of, partner_batch, row_objects, sample_targets, to_device

LOOKAHEAD = 2  # batches decoded ahead of the transform
MIX_ARRAYS = ("<split>_mix_labels.npy: int64, the mixup/cutmix partner's class (= <split>_labels.npy when "
              "not mixed; -1 without image labels); <split>_mix_weights.npy: float32, the weight of "
              "<split>_labels.npy's class (1.0 when not mixed). Soft label = w * onehot(label) + "
              "(1 - w) * onehot(mix_label)")


def _bar(desc: str, total: int):
    from tqdm import tqdm

    return tqdm(desc=desc, total=total, unit="img", mininterval=0.1 if sys.stderr.isatty() else 2.0,
                disable=os.environ.get("PIPELINE_NO_PROGRESS") == "1", dynamic_ncols=True)


class _SplitWriter:
    """Files of one split, appended in row order (called from the writer thread only)."""

    def __init__(self, tmp: Path, split: str, n: int, hwc: tuple[int, int, int], packed: bool, manifest):
        self.tmp, self.split, self.packed, self.manifest = tmp, split, packed, manifest
        self.images = NpyWriter(tmp / f"{split}_images.npy", np.uint8, (n, *hwc)) if packed else None
        self.labels = NpyWriter(tmp / f"{split}_labels.npy", np.int64, (n,))
        # mixup/cutmix: the partner's label and the weight of ``labels`` (1.0, same label: not mixed)
        self.mix_labels = NpyWriter(tmp / f"{split}_mix_labels.npy", np.int64, (n,))
        self.mix_weights = NpyWriter(tmp / f"{split}_mix_weights.npy", np.float32, (n,))
        self.index = 0
        self.mixed = 0  # rows whose label is a mixup/cutmix blend
        self.total = np.zeros(hwc[2], dtype=np.int64)
        self.total_sq = np.zeros(hwc[2], dtype=np.int64)
        self.source = hashlib.sha256()
        self.last_source = None
        self.png_sha = hashlib.sha256()

    def write(self, batch: list[Row], arr: np.ndarray, labels: list[int], mix: list[tuple[int, int, float]],
              rows: list[dict], shas: list[str]):
        flat = arr.reshape(-1, arr.shape[-1]).astype(np.int64)
        self.total += flat.sum(0)
        self.total_sq += (flat * flat).sum(0)
        if self.images is not None:
            self.images.write(arr)
        self.labels.write(np.asarray(labels, dtype=np.int64))
        self.mix_labels.write(np.asarray([m[1] for m in mix], dtype=np.int64))
        self.mix_weights.write(np.asarray([m[2] for m in mix], dtype=np.float32))
        self.mixed += sum(1 for m in mix if m[2] != 1.0)
        for r, row, sha, img in zip(batch, rows, shas, arr):
            row["index"] = self.index
            if not self.packed:
                row["file"] = f"images/{self.split}/{self.index:07d}.png"
                self.png_sha.update(write_png(self.tmp / row["file"], img).encode())
            self.manifest.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
            if r.sample.id != self.last_source:  # one entry per source image, in id order
                self.source.update(f"{r.sample.id}\t{sha}\n".encode())
                self.last_source = r.sample.id
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


def write_version(dataset: Dataset, assignment: dict[str, str], params: AugmentParams, out: Path,
                  inputs: Iterable[Path] = ()) -> dict:
    """Write the dataset version into ``out`` atomically and return its card.

    ``out`` is claimed first (``pipeline.outputs``): apart from the dataset and from
    ``inputs`` (the split directory), and empty or a version written before."""
    import torch

    from pipeline.augment.registry import build_pipeline, dump_pipeline
    from pipeline.augment.rng import keys_tensor
    from pipeline.device import resolve_device

    out = Path(out)
    inputs = [dataset.root, *inputs]
    claim_dir(out, "version", inputs)
    device = resolve_device(params.device)
    pipe = build_pipeline(params.pipeline, min_visibility=params.min_visibility,
                          min_area=params.min_area, backend=params.backend)
    h, w, c = output_geometry(dataset, params)
    pipe.check_offline(h, w, classification=dataset.kind == "classification")
    lineage = {**cards.lineage(), "augment_backend": pipe.resolved_backend(device, h, w)}
    packed = h * w <= params.pack_max_pixels
    plan = Plan(dataset, assignment, params)
    class_index = {name: i for i, name in enumerate(dataset.classes)}
    workers = params.workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                 else os.cpu_count() or 1)
    card: dict = {
        "format": cards.FORMAT, "kind": dataset.kind, "storage": "packed" if packed else "files",
        "image_shape": [h, w, c], "classes": list(dataset.classes), "seed": params.seed,
        # Knobs that cannot change a byte stay out of the card, so it is identical too.
        "params": params.model_dump(mode="json", exclude={"batch_size", "workers", "device"}),
        "pipeline": dump_pipeline(pipe), "lineage": lineage, "splits": {}, "files": {},
        "mix": {"ops": [op.name for op in pipe.ops if op.kind == "mixing"], "arrays": MIX_ARRAYS},
    }
    source_images = hashlib.sha256()

    def decode_row(s) -> Decoded:
        return decode(dataset.read_image(s), h, w, c)

    def transform(batch: list[Row], decoded: dict[str, Decoded], pool_samples: list):
        imgs = torch.from_numpy(np.stack([decoded[r.sample.id].pixels for r in batch])).to(device)
        samples = [r.sample for r in batch]
        resized = sample_targets(samples, [decoded[s.id].size for s in samples], h, w, dataset.classes)
        aug = [i for i, r in enumerate(batch) if r.augmented]
        params_of: dict[int, list] = {}
        partners_of: dict[int, list[str]] = {}
        if aug and pipe.ops:
            keys = keys_tensor([sample_key(params.seed, batch[i].sample.id, batch[i].copy) for i in aug], device)
            drawn = pipe.sample(keys, h, w)
            idx = torch.tensor(aug)
            parts, partner_ids = partner_batch(pipe, drawn, pool_samples, decode_many, h, w, dataset.classes,
                                           device)
            out, moved = pipe.transform(imgs[idx.to(device)], to_device(resized.select(idx), device), drawn, parts)
            imgs[idx.to(device)] = out
            moved = to_device(moved, "cpu")
            drawn = [{k: v.cpu() for k, v in d.items()} for d in drawn]  # one copy, not one per value
            for j, i in enumerate(aug):
                params_of[i] = exact_params(pipe.ops, drawn, j)
                if partner_ids:
                    partners_of[i] = partner_ids[j]
        rows, mix = [], []
        moved_at = {i: j for j, i in enumerate(aug)} if aug and pipe.ops else {}
        for i, r in enumerate(batch):
            t, k = (moved, moved_at[i]) if i in moved_at else (resized, i)
            objects, dropped = row_objects(t, k, r.sample, dataset.classes, resized, i, partners_of.get(i, ()))
            label, mix_label, weight = mix_of(t, k)
            mix.append((label, mix_label, weight))
            row = {"id": r.id, "source_id": r.sample.id, "copy": r.copy, "split": "",
                   "label": r.sample.label, "ops": params_of.get(i, []), "objects": objects,
                   "mix_label": dataset.classes[mix_label] if mix_label >= 0 else None, "mix_weight": weight}
            if dropped:
                row["dropped"] = dropped
            if i in partners_of:
                row["partners"] = partners_of[i]
            rows.append(row)
        return imgs.permute(0, 2, 3, 1).contiguous().cpu().numpy(), rows, mix

    def decode_many(wanted: list) -> dict[str, Decoded]:
        futures = {s.id: pool.submit(decode_row, s) for s in {s.id: s for s in wanted}.values()}
        return {sid: f.result() for sid, f in futures.items()}

    with atomic_dir(out, "version", inputs) as tmp, ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool, \
            ThreadPoolExecutor(1, thread_name_prefix="write") as writer, \
            open(tmp / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for split in SPLITS:
            n = plan.count(split)
            sw = _SplitWriter(tmp, split, n, (h, w, c), packed, manifest)
            pending: deque[tuple[list[Row], dict[str, Future]]] = deque()
            last_write: Future | None = None
            bar = _bar(f"augment {split}", n)

            def submit(batch: list[Row]) -> None:
                uniq = {r.sample.id: r.sample for r in batch}
                pending.append((batch, {sid: pool.submit(decode_row, s) for sid, s in uniq.items()}))

            it = batches(plan.rows(split), params.batch_size)
            for batch in it:
                submit(batch)
                if len(pending) <= LOOKAHEAD:
                    continue
                last_write = _step(pending, transform, sw, split, class_index, writer, last_write, bar,
                                   plan.by_split[split])
            while pending:
                last_write = _step(pending, transform, sw, split, class_index, writer, last_write, bar,
                                   plan.by_split[split])
            if last_write is not None:
                last_write.result()
            bar.close()
            card["files"].update(sw.close())
            mean, std = cards.pixel_stats(sw.total.tolist(), sw.total_sq.tolist(), n * h * w)
            card["splits"][split] = {"samples": n, "per_class": plan.per_class(split),
                                     "pixel_mean": mean, "pixel_std": std, "mixed": sw.mixed}
            source_images.update(f"{split}\t{sw.source.hexdigest()}\n".encode())
        manifest.close()
        card["files"]["manifest.jsonl"] = cards.file_sha256(tmp / "manifest.jsonl")
        (tmp / "classes.json").write_text(json.dumps(list(dataset.classes), indent=1) + "\n")
        card["source"] = {
            "dataset": str(dataset.root),
            "manifest_sha256": cards.file_sha256(dataset.root / "manifest.jsonl"),
            "classes_sha256": cards.file_sha256(dataset.root / "classes.json"),
            "splits_sha256": cards.assignment_sha256(assignment),
            "images_sha256": source_images.hexdigest(),
        }
        (tmp / "card.json").write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
        (tmp / "CARD.md").write_text(cards.render_markdown(card), encoding="utf-8")
    return card


def _step(pending, transform, sw: _SplitWriter, split, class_index, writer, last_write, bar, pool) -> Future:
    """Transform the oldest pending batch and hand it to the writer thread (one write in flight)."""
    batch, futures = pending.popleft()
    decoded = {sid: f.result() for sid, f in futures.items()}
    arr, rows, mix = transform(batch, decoded, pool)
    for row in rows:
        row["split"] = split
    # -1: no image-level label (detection data); the objects carry the classes.
    labels = [class_index[r.sample.label] if r.sample.label is not None else -1 for r in batch]
    shas = [decoded[r.sample.id].sha256 for r in batch]
    if last_write is not None:
        last_write.result()  # bounded: at most one batch waits to be written
    bar.update(len(batch))
    return writer.submit(sw.write, batch, arr, labels, mix, rows, shas)

