"""Which output rows a version holds, in which order.

Rows are ordered by (split, source id, copy); copy 0 is the original (kept for
val/test, and for train when ``keep_originals``), copies 1..n are augmented. The
order depends only on ids, never on file order, batch size or workers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterator

from pipeline.config import AugmentParams
from pipeline.core.errors import InputError
from pipeline.record import BUFFER, SPLITS, Dataset, Sample


@dataclass(frozen=True)
class Row:
    sample: Sample
    copy: int  # 0 = original
    augmented: bool
    split: str = ""
    index: int = 0  # position in the split's files

    @property
    def id(self) -> str:
        return f"{self.sample.id}#{self.copy}"


class Plan:
    """The rows of each split, generated lazily (a row list per split would grow with N)."""

    def __init__(self, dataset: Dataset, assignment: dict[str, str], params: AugmentParams):
        self.params = params
        self.by_split: dict[str, list[Sample]] = {s: [] for s in SPLITS}
        for s in sorted(dataset.samples, key=lambda s: s.id):
            split = assignment.get(s.id)
            if split == BUFFER:  # a tile between two splits' blocks (split.block): in no split
                continue
            if split not in self.by_split:
                raise InputError(f"sample {s.id!r} has no split; re-run the split stage")
            self.by_split[split].append(s)

    def copies(self, split: str) -> list[tuple[int, bool]]:
        if split != "train":
            return [(0, False)]
        first = [(0, False)] if self.params.keep_originals else []
        return first + [(c, True) for c in range(1, self.params.copies + 1)]

    def count(self, split: str) -> int:
        return len(self.by_split[split]) * len(self.copies(split))

    def rows(self, split: str) -> Iterator[Row]:
        copies = self.copies(split)
        index = 0
        for s in self.by_split[split]:
            for c, aug in copies:
                yield Row(s, c, aug, split, index)
                index += 1


def output_geometry(dataset: Dataset, params: AugmentParams) -> tuple[int | None, int | None, int]:
    """(height, width, channels) of every output image; height and width are None when
    ``image_size`` is null and the sources differ in size: each row then keeps its
    source's size (native resolution, stored as files)."""
    if not dataset.samples:
        raise InputError(f"{dataset.root}: the dataset has no samples")
    channels = params.channels or max(s.channels for s in dataset.samples)
    if params.image_size:
        return params.image_size[0], params.image_size[1], channels
    sizes = Counter((s.height, s.width) for s in dataset.samples)
    if len(sizes) > 1:
        return None, None, channels
    (h, w), = sizes
    return h, w, channels


def reference_size(dataset: Dataset, h: int | None, w: int | None) -> tuple[int, int]:
    """The size a version's pipeline is checked and its backend chosen at: the output
    size, or at native resolution the largest source."""
    if h is not None and w is not None:
        return h, w
    s = max(dataset.samples, key=lambda s: (s.height * s.width, s.height, s.width))
    return s.height, s.width


def batches(rows: Iterator[Row], size: int, max_pixels: int | None = None,
            pixels: Callable[[Row], int] = lambda r: 0) -> Iterator[list[Row]]:
    """Consecutive rows, at most ``size`` of them and at most ``max_pixels`` (one row
    always goes, however large): memory per batch is bounded by pixels, not a count."""
    batch: list[Row] = []
    held = 0
    for r in rows:
        n = pixels(r)
        if batch and max_pixels is not None and held + n > max_pixels:
            yield batch
            batch, held = [], 0
        batch.append(r)
        held += n
        if len(batch) == size:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch
