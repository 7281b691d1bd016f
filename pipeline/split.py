"""The split stage: deterministic, stratified train/val/test assignment.

Samples that arrive with a split (an ImageFolder ``train/``/``val/``/``test/``
tree) keep it. The rest are split per class: within a class, samples are ordered
by a key of (seed, sample id), which does not depend on file order, and the class
is cut by the ratios with largest-remainder rounding, so every class is spread
over the splits in proportion.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from pipeline.config import SplitParams
from pipeline.record import Dataset
from pipeline.seeding import key64

SPLITS_FILE = "splits.json"


def _cut(n: int, ratios: dict[str, float]) -> list[tuple[str, int]]:
    """Counts per split for ``n`` items, summing to n (largest remainder)."""
    raw = {k: n * r for k, r in ratios.items()}
    counts = {k: int(v) for k, v in raw.items()}
    left = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - counts[k]), k))[:left]:
        counts[k] += 1
    return [(k, counts[k]) for k in ratios]


def assign_splits(dataset: Dataset, params: SplitParams) -> dict[str, str]:
    """Return ``{sample id: split}`` for every sample."""
    out: dict[str, str] = {}
    groups: dict[str, list[str]] = defaultdict(list)
    for s in dataset.samples:
        if s.split:
            out[s.id] = s.split
        else:
            stratum = s.label if s.label is not None else (s.objects[0].label if s.objects else "")
            groups[stratum].append(s.id)
    for stratum in sorted(groups):
        ids = sorted(groups[stratum], key=lambda i: key64("split", params.seed, i))
        start = 0
        for name, count in _cut(len(ids), params.ratios):
            for i in ids[start:start + count]:
                out[i] = name
            start += count
    return out


def write_splits(dataset: Dataset, params: SplitParams, out: Path) -> dict:
    """Write ``splits.json`` into ``out`` and return the summary written."""
    assignment = assign_splits(dataset, params)
    counts = Counter(assignment.values())
    by_class: dict[str, Counter] = defaultdict(Counter)
    for s in dataset.samples:
        by_class[assignment[s.id]][s.label or ""] += 1
    summary = {
        "seed": params.seed,
        "ratios": params.ratios,
        "counts": dict(sorted(counts.items())),
        "per_class": {k: dict(sorted(v.items())) for k, v in sorted(by_class.items())},
        "assignment": dict(sorted(assignment.items())),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / SPLITS_FILE).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def read_splits(path: Path) -> dict[str, str]:
    from pipeline.errors import InputError

    f = Path(path) / SPLITS_FILE
    if not f.is_file():
        raise InputError(f"{f}: split assignment not found; run `pipeline split` first")
    return json.loads(f.read_text(encoding="utf-8"))["assignment"]
