"""``pipeline trace``: from one output sample of a dataset version back to its source.

The manifest row names the canonical sample and the copy, and records every
parameter each op drew, exactly. Tracing prints the user's source file (through
the canonical ``Source`` record) and those parameters, then re-renders the row
through the writer's own render path (``pipeline.version.render``) with the
pipeline pinned in the card (backend included: nothing is resolved again) and the
row's keys, and checks both the pixels and the row (parameters, partners,
objects) against what the version stores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import InputError
from pipeline.record import Dataset, Sample, load_dataset, read_jsonl, source_paths
from pipeline.version.manifest import VersionRow


@dataclass(frozen=True)
class Trace:
    row: VersionRow  # as stored in the version
    rendered_row: VersionRow  # as the render path gives it again
    sample: Sample
    dataset: Dataset
    stored: np.ndarray  # uint8 (H, W, C) as written in the version
    rendered: np.ndarray  # uint8 (H, W, C) re-rendered
    dataset_changed: bool  # the canonical manifest differs from the one the version was built from

    @property
    def identical(self) -> bool:
        """Same pixels and the same record (parameters, partners, objects)."""
        return self.same_pixels and self.rendered_row == self.row

    @property
    def same_pixels(self) -> bool:
        return self.stored.shape == self.rendered.shape and bool((self.stored == self.rendered).all())


def read_card(version: Path) -> dict:
    from pipeline.version.dataset import AUGMENT_AGAIN, CARD, read_card as read_version_card

    path = Path(version) / CARD
    if not os.path.lexists(path):
        raise InputError(f"{path}: not a dataset version (run `pipeline augment` first)")
    card = read_version_card(version)
    source = card.get("source")
    if not isinstance(source, dict) or not all(isinstance(source.get(k), str) for k in ("dataset", "manifest_sha256")):
        raise InputError(f"{path}: no source dataset and manifest hash recorded; {AUGMENT_AGAIN}")
    return card


def manifest_rows(version: Path):
    """The version's rows, streamed, as typed records."""
    from pipeline.version.dataset import AUGMENT_AGAIN

    yield from read_jsonl(Path(version) / "manifest.jsonl", VersionRow.from_dict, AUGMENT_AGAIN)


def find_row(version: Path, sample_id: str) -> tuple[VersionRow, list[str]]:
    """The row of output sample ``sample_id`` (``<source id>#<copy>``) and the source ids
    of its split (the pool its mixing partners were drawn from), in one streamed pass."""
    found, by_split = None, {}
    for row in manifest_rows(version):
        by_split.setdefault(row.split, set()).add(row.source_id)
        if row.id == sample_id:
            found = row
    if found is None:
        raise InputError(f"{version}/manifest.jsonl: no output sample {sample_id!r} "
                         "(ids look like '<source id>#<copy>', e.g. 'mnist5k/train/3/00012.png#1')")
    return found, sorted(by_split[found.split])


def stored_pixels(version: Path, row: VersionRow) -> np.ndarray:
    if row.file is not None:
        from PIL import Image

        with Image.open(Path(version) / row.file) as img:
            a = np.asarray(img)
        return a[:, :, None] if a.ndim == 2 else a
    images = np.load(Path(version) / f"{row.split}_images.npy", mmap_mode="r")
    return np.array(images[row.index])


def render(dataset: Dataset, sample: Sample, row: VersionRow, card: dict,
           pool_ids: list[str]) -> tuple[np.ndarray, VersionRow]:
    """Re-render one output row through the writer's render path: (pixels, row)."""
    from pipeline.augment.registry import build_pipeline
    from pipeline.version.plan import Row
    from pipeline.version.render import Renderer

    h, w, c = card["image_shape"]
    by_id = {s.id: s for s in dataset.samples}
    missing = [p for p in pool_ids if p not in by_id]
    if missing:
        raise InputError(f"{dataset.root}: sample(s) {', '.join(missing[:3])} of the version's "
                         f"{row.split} split are not in the canonical dataset; pass the --dataset it was built from")
    renderer = Renderer(dataset, build_pipeline(card["pipeline"]), h, w, c, card["seed"],
                        packed=row.file is None, resize=card["params"].get("resize", "stretch"),
                        pad=card["params"].get("pad_value", 114))
    got = renderer.render([Row(sample, row.copy, row.copy > 0, row.split, row.index)],
                          renderer.decode_serial([sample]), [by_id[p] for p in pool_ids])
    return got.pixels[0], got.rows[0]


def trace(version: Path, sample_id: str, dataset_dir: Path | None = None) -> Trace:
    from pipeline.version.card import file_sha256

    card = read_card(version)
    row, pool_ids = find_row(version, sample_id)
    root = Path(dataset_dir) if dataset_dir else Path(version) / card["source"]["dataset"]
    if not (root / "manifest.jsonl").is_file():
        raise InputError(f"{root}: the canonical dataset this version was built from is not there; "
                         "pass --dataset DIR")
    dataset = load_dataset(root)
    sample = next((s for s in dataset.samples if s.id == row.source_id), None)
    if sample is None:
        raise InputError(f"{root}: sample {row.source_id!r} is not in the canonical dataset")
    changed = file_sha256(root / "manifest.jsonl") != card["source"]["manifest_sha256"]
    pixels, rendered_row = render(dataset, sample, row, card, pool_ids)
    return Trace(row, rendered_row, sample, dataset, stored_pixels(version, row), pixels, changed)


def _mix_text(row: VersionRow) -> str:
    w = row.mix_weight
    return "" if w == 1.0 else f"  (soft: {soft_label_text(row.label, row.mix_label, w)})"


def soft_label_text(label, mix_label, weight: float) -> str:
    """``0.63·cat + 0.37·dog``: a mixed sample's soft label, for captions and traces."""
    return f"{weight:.2f}·{label} + {1 - weight:.2f}·{mix_label}"


def format_trace(t: Trace) -> str:
    src = t.sample.source
    root = source_paths(t.dataset.root).get(src.root, src.root)  # the path given, else the name
    where = f"{root.rstrip('/')}/{src.path}" if root else src.path
    r = t.row
    lines = [
        f"output sample   {r.id}  (split {r.split}, index {r.index})",
        f"source file     {where}  (format {src.format})",
    ]
    if src.annotation:
        lines.append(f"annotation      {src.annotation}")
    lines += [
        f"canonical       {t.sample.id}  ->  {t.dataset.image_location(t.sample)}",
        f"copy            {r.copy}" + ("  (original, no ops)" if not r.ops else ""),
        f"label           {r.label}" + _mix_text(r),
    ]
    if r.partners:
        lines.append(f"mixed with      {', '.join(r.partners)}")
    for o in r.objects:
        lines.append(f"object          {o['label']} box {o['box']}" + ("" if o.get("visible", True) else " (outside)")
                     + (f" (from {o['partner']})" if "partner" in o else ""))
    for o in r.dropped:
        lines.append(f"dropped         {o['label']} source box {o['source_box']}: {o['reason']}")
    for i, op in enumerate(r.ops):
        rest = ", ".join(f"{k}={v!r}" for k, v in op.items() if k != "op")
        lines.append(f"op {i + 1}            {op['op']}: {rest}")
    if t.dataset_changed:
        lines.append("warning         the canonical dataset changed since this version was built")
    verdict = "identical pixels" if t.same_pixels else "DIFFERENT pixels"
    lines.append(f"re-rendered     through the version's render path: {verdict} "
                 f"({t.rendered.shape[0]}x{t.rendered.shape[1]}x{t.rendered.shape[2]})")
    if t.rendered_row != r:
        diff = [k for k, v in t.rendered_row.to_dict().items() if r.to_dict().get(k) != v]
        lines.append(f"record          DIFFERENT from the manifest row in: {', '.join(diff)}")
    return "\n".join(lines)
