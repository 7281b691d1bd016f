"""The augment stage's output: a dataset version, packed for training.

Layout of the version directory::

    <split>_images.npy   uint8 (N, H, W, C), memory-mappable (np.load(mmap_mode="r"))
    <split>_labels.npy   int64 (N,)
    manifest.jsonl       one row per output sample: id, source id, copy, split,
                         label, and the parameters each op applied
    classes.json         ordered class names (label i = classes[i])
    card.json            counts, pixel mean/std, seed, params, pipeline, lineage

Rows are ordered by (split, source id, copy); copy 0 is the original when
``keep_originals`` is on, copies 1..n are augmented. Every random draw is keyed by
(seed, source id, copy), so the bytes do not depend on the batch size or device.
Images are streamed in batches into memory-mapped files: memory stays bounded.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import __version__
from pipeline.atomic import atomic_dir
from pipeline.config import AugmentParams
from pipeline.errors import InputError
from pipeline.progress import progress
from pipeline.record import Dataset, Sample, write_jsonl
from pipeline.seeding import sample_key

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Row:
    sample: Sample
    copy: int  # 0 = original
    augmented: bool


def plan_rows(dataset: Dataset, assignment: dict[str, str], params: AugmentParams) -> dict[str, list[Row]]:
    rows: dict[str, list[Row]] = {s: [] for s in SPLITS}
    for s in sorted(dataset.samples, key=lambda s: s.id):
        split = assignment.get(s.id)
        if split not in rows:
            raise InputError(f"sample {s.id!r} has no split; re-run the split stage")
        if split != "train":
            rows[split].append(Row(s, 0, False))
            continue
        if params.keep_originals:
            rows[split].append(Row(s, 0, False))
        rows[split].extend(Row(s, c, True) for c in range(1, params.copies + 1))
    return rows


def output_geometry(dataset: Dataset, params: AugmentParams) -> tuple[int, int, int]:
    """(height, width, channels) of every output image."""
    if not dataset.samples:
        raise InputError(f"{dataset.root}: the dataset has no samples")
    channels = params.channels or max(s.channels for s in dataset.samples)
    if params.image_size:
        return params.image_size[0], params.image_size[1], channels
    sizes = Counter((s.height, s.width) for s in dataset.samples)
    if len(sizes) > 1:
        common = ", ".join(f"{h}x{w} ({n})" for (h, w), n in sizes.most_common(3))
        raise InputError(
            f"{dataset.root}: images have {len(sizes)} different sizes (most common: {common}); "
            "set augment.image_size: [height, width] in params.yaml"
        )
    (h, w), = sizes
    return h, w, channels


def load_batch(dataset: Dataset, samples: list[Sample], h: int, w: int, c: int):
    """Decode samples into a uint8 (B, C, H, W) tensor, converted and resized."""
    import torch
    from PIL import Image

    arrays = []
    for s in samples:
        with Image.open(dataset.image_path(s)) as img:
            img = img.convert("L" if c == 1 else "RGB")
            a = np.array(img, dtype=np.uint8)  # a writable copy, as torch wants
        arrays.append(a[:, :, None] if a.ndim == 2 else a)
    out = torch.empty((len(samples), c, h, w), dtype=torch.uint8)
    for i, a in enumerate(arrays):
        t = torch.from_numpy(a).permute(2, 0, 1)
        if t.shape[1:] != (h, w):
            t = torch.nn.functional.interpolate(t[None].float(), size=(h, w), mode="bilinear",
                                                antialias=True, align_corners=False)[0]
            t = t.round().clamp(0, 255).to(torch.uint8)
        out[i] = t
    return out


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def write_version(dataset: Dataset, assignment: dict[str, str], params: AugmentParams, out: Path) -> dict:
    """Write the dataset version into ``out`` atomically and return its card."""
    import torch

    from pipeline.augment.registry import build_pipeline, dump_pipeline
    from pipeline.augment.rng import keys_tensor
    from pipeline.device import resolve_device

    device = resolve_device(params.device)
    pipe = build_pipeline(params.pipeline, min_visibility=params.min_visibility,
                          min_area=params.min_area, backend=params.backend)
    h, w, c = output_geometry(dataset, params)
    pipe.check_offline(h, w)  # mixing ops / size changes need training-time use
    class_index = {name: i for i, name in enumerate(dataset.classes)}
    rows = plan_rows(dataset, assignment, params)
    card: dict = {
        "format": "pipeline.dataset_version/1",
        "image_shape": [h, w, c],
        "classes": list(dataset.classes),
        "seed": params.seed,
        "params": params.model_dump(mode="json"),
        "pipeline": dump_pipeline(pipe),
        "lineage": {"package_version": __version__, "git_commit": git_commit(),
                    "device": str(device.type),
                    "augment_backend": pipe.resolved_backend(device, h, w)},
        "splits": {},
    }
    with atomic_dir(Path(out)) as tmp:
        manifest = []
        for split, split_rows in rows.items():
            n = len(split_rows)
            images = np.lib.format.open_memmap(tmp / f"{split}_images.npy", mode="w+",
                                               dtype=np.uint8, shape=(n, h, w, c))
            labels = np.lib.format.open_memmap(tmp / f"{split}_labels.npy", mode="w+",
                                               dtype=np.int64, shape=(n,))
            total = np.zeros(c, dtype=np.float64)
            total_sq = np.zeros(c, dtype=np.float64)
            bs = params.batch_size
            for start in progress(range(0, n, bs), desc=f"augment {split}", total=-(-n // bs), unit="batch"):
                batch = split_rows[start:start + bs]
                # Decode each source sample once per batch, even with several copies.
                uniq = list(dict.fromkeys(r.sample.id for r in batch))
                by_id = {r.sample.id: r.sample for r in batch}
                decoded = load_batch(dataset, [by_id[i] for i in uniq], h, w, c)
                pos = {sid: i for i, sid in enumerate(uniq)}
                imgs = decoded[[pos[r.sample.id] for r in batch]].to(device)
                aug_idx = [i for i, r in enumerate(batch) if r.augmented]
                applied: dict[int, list] = {}
                if aug_idx and pipe.ops:
                    keys = keys_tensor([sample_key(params.seed, batch[i].sample.id, batch[i].copy)
                                        for i in aug_idx], device)
                    drawn = pipe.sample(keys, h, w)
                    idx = torch.tensor(aug_idx, device=device)
                    imgs[idx] = pipe.apply(imgs[idx], drawn)
                    applied = {i: pipe.describe(pipe.ops, drawn, j) for j, i in enumerate(aug_idx)}
                arr = imgs.permute(0, 2, 3, 1).contiguous().cpu().numpy()
                images[start:start + len(batch)] = arr
                labels[start:start + len(batch)] = [class_index[r.sample.label] for r in batch]
                flat = arr.reshape(-1, c).astype(np.float64)
                total += flat.sum(0)
                total_sq += (flat ** 2).sum(0)
                for i, r in enumerate(batch):
                    manifest.append({
                        "id": f"{r.sample.id}#{r.copy}", "source_id": r.sample.id, "copy": r.copy,
                        "split": split, "label": r.sample.label, "ops": applied.get(i, []),
                    })
            images.flush()
            labels.flush()
            del images, labels
            pixels = max(n * h * w, 1)
            mean = total / pixels
            std = np.sqrt(np.maximum(total_sq / pixels - mean ** 2, 0.0))
            card["splits"][split] = {
                "samples": n,
                "per_class": dict(sorted(Counter(r.sample.label for r in split_rows).items())),
                "pixel_mean": [round(float(v) / 255.0, 6) for v in mean],
                "pixel_std": [round(float(v) / 255.0, 6) for v in std],
            }
        write_jsonl(tmp / "manifest.jsonl", manifest)
        (tmp / "classes.json").write_text(json.dumps(list(dataset.classes), indent=1) + "\n")
        (tmp / "card.json").write_text(json.dumps(card, indent=1, sort_keys=True) + "\n")
    return card
