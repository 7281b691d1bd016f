"""One render path: a version's rows turned into pixels and manifest rows.

The augment writer, ``augment --preview`` and ``pipeline trace`` all render through
``Renderer.render``: the same decode and resize, the same pipeline (its backend
resolved once and pinned in the card), the same keys (seed, source id, copy) and
the same mixing partners (picked from the row's split by the row's own keys). So
the preview shows what the version holds, and a trace re-renders it, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from pipeline.augment.pipeline import Pipeline
from pipeline.backends import backend_of, resolve
from pipeline.record import Dataset, Sample
from pipeline.core.resize_modes import DEFAULT_RESIZE, PAD_GREY
from pipeline.version.decode import Decoded, decode
from pipeline.version.manifest import VersionRow, exact_params
from pipeline.version.plan import Row

DecodeMany = Callable[[list[Sample], tuple[int, int]], dict[str, Decoded]]  # (samples, (h, w)) -> by id


def pin_backend(pipe: Pipeline, device, h: int, w: int) -> Pipeline:
    """``pipe`` with ``auto`` resolved for this device and size: what the card records,
    so a trace on another machine renders with the same backend."""
    return replace(pipe, backend=resolve(pipe, device, h, w))


@dataclass(frozen=True)
class Rendered:
    pixels: Sequence[np.ndarray]  # per row uint8 (H, W, C); one (B, H, W, C) array when all share a size
    rows: list[VersionRow]
    labels: list[int]  # class index of ``label``; -1 without an image label
    mix: list[tuple[int, int, float]]  # (label, mix_label, weight of label) as indices


@dataclass(frozen=True)
class Renderer:
    dataset: Dataset
    pipe: Pipeline  # backend pinned (``pin_backend``): its backend runs it
    h: int | None  # None (with w): each row keeps its source's size (native resolution)
    w: int | None
    c: int
    seed: int
    packed: bool = True  # False: rows name their PNG file
    device: str = "cpu"
    resize: str = DEFAULT_RESIZE  # see pipeline.version.resize
    pad: int = PAD_GREY

    def size_of(self, sample: Sample) -> tuple[int, int]:
        """(height, width) of the sample's rows: the output size, or its own."""
        return (self.h, self.w) if self.h is not None and self.w is not None else (sample.height, sample.width)

    def decode(self, sample: Sample, hw: tuple[int, int] | None = None) -> Decoded:
        """The sample decoded at ``hw`` (default: the size of its own rows)."""
        h, w = hw or self.size_of(sample)
        return decode(self.dataset.read_image(sample), h, w, self.c, self.resize, self.pad)

    def decode_serial(self, samples: list[Sample], hw: tuple[int, int] | None = None) -> dict[str, Decoded]:
        return {s.id: self.decode(s, hw) for s in {s.id: s for s in samples}.values()}

    def render(self, batch: Sequence[Row], decoded: dict[str, Decoded], pool: Sequence[Sample],
               decode_many: DecodeMany | None = None) -> Rendered:
        """Render ``batch`` (rows of one split) from its decoded source images (each at
        its rows' size, ``size_of``).

        ``pool``: the split's samples in id order, where mixing partners come from
        (decoded at the size of the row they mix into); ``decode_many`` decodes partners
        (default: one by one in this thread). Rows of different sizes (native
        resolution) are rendered in runs of one size: a row's bytes never depend on its
        batch, so how rows are grouped cannot change them.
        """
        runs: list[tuple[tuple[int, int], list[Row]]] = []
        for r in batch:
            hw = self.size_of(r.sample)
            if runs and runs[-1][0] == hw:
                runs[-1][1].append(r)
            else:
                runs.append((hw, [r]))
        parts = [self._render(rows, hw, decoded, pool, decode_many or self.decode_serial) for hw, rows in runs]
        if len(parts) == 1:
            return parts[0]
        return Rendered([p for part in parts for p in part.pixels], [r for part in parts for r in part.rows],
                        [x for part in parts for x in part.labels], [m for part in parts for m in part.mix])

    def _render(self, batch: Sequence[Row], hw: tuple[int, int], decoded: dict[str, Decoded],
                pool: Sequence[Sample], decode_many: DecodeMany) -> Rendered:
        """Render rows of one output size ``hw``."""
        import torch

        from pipeline.augment.rng import keys_tensor
        from pipeline.core.seeding import sample_key
        from pipeline.version.objects import mix_of, partner_batch, row_objects, sample_targets, to_device

        h, w = hw
        classes, device, pipe = self.dataset.classes, self.device, self.pipe
        imgs = torch.from_numpy(np.stack([decoded[r.sample.id].pixels for r in batch])).to(device)
        samples = [r.sample for r in batch]
        resized = sample_targets(samples, [decoded[s.id].fit for s in samples], h, w, classes)
        aug = [i for i, r in enumerate(batch) if r.augmented]
        params_of: dict[int, list] = {}
        partners_of: dict[int, list[str]] = {}
        moved_at: dict[int, int] = {}
        moved = resized
        if aug and pipe.ops:
            keys = keys_tensor([sample_key(self.seed, batch[i].sample.id, batch[i].copy) for i in aug], device)
            drawn = pipe.sample(keys, h, w)
            idx = torch.tensor(aug)
            parts, partner_ids = partner_batch(pipe, drawn, list(pool), decode_many, h, w, classes, device)
            backend = backend_of(pipe)
            out, moved = backend.run(pipe, imgs[idx.to(device)], to_device(resized.select(idx), device), keys,
                                     drawn, parts)
            imgs[idx.to(device)] = out
            moved = to_device(moved, "cpu")
            drawn = [{k: v.cpu() for k, v in d.items()} for d in drawn]  # one copy, not one per value
            keys = keys.cpu()
            # A backend that draws its own parameters records each sample's seed instead.
            seeds = backend.seeds(keys)
            for j, i in enumerate(aug):
                params_of[i] = exact_params(pipe.ops, drawn, j, keys[j]) if seeds is None else [
                    {"op": op.name, "backend": backend.name, "seed": seeds[j]} for op in pipe.ops]
                moved_at[i] = j
                if partner_ids:
                    partners_of[i] = partner_ids[j]
        class_index = {name: k for k, name in enumerate(classes)}
        rows, labels, mix = [], [], []
        for i, r in enumerate(batch):
            t, k = (moved, moved_at[i]) if i in moved_at else (resized, i)
            objects, dropped = row_objects(t, k, r.sample, classes, resized, i, partners_of.get(i, ()))
            label, mix_label, weight = mix_of(t, k)
            mix.append((label, mix_label, weight))
            labels.append(class_index[r.sample.label] if r.sample.label is not None else -1)
            rows.append(VersionRow(
                id=f"{r.sample.id}#{r.copy}", source_id=r.sample.id, copy=r.copy, split=r.split, index=r.index,
                label=r.sample.label, ops=tuple(params_of.get(i, ())), objects=tuple(objects),
                mix_label=classes[mix_label] if mix_label >= 0 else None, mix_weight=weight,
                partners=tuple(partners_of.get(i, ())), dropped=tuple(dropped),
                file=None if self.packed else f"images/{r.split}/{r.index:07d}.png",
                size=None if self.h is not None else (h, w)))
        pixels = imgs.permute(0, 2, 3, 1).contiguous().cpu().numpy()
        return Rendered(pixels, rows, labels, mix)
