"""``pipeline trace``: from one output sample of a dataset version back to its source.

The manifest row names the canonical sample and the copy, and records every
parameter each op drew, exactly. Tracing prints the user's source file (through
the canonical ``Source`` record; when that file is gone, the stored copy as
``images/00000.tar:<member>``) and those parameters (never the engine's internal
values), then re-renders the row
through the writer's own render path (``pipeline.version.render``) with the
pipeline pinned in the card (backend included: nothing is resolved again) and the
row's keys, and checks both the pixels and the row (parameters, partners,
objects) against what the version stores.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.datasets import load_dataset
from pipeline.core.errors import InputError
from pipeline.record import Dataset, Sample, read_jsonl, source_paths
from pipeline.version.card import VersionCard
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


def read_card(version: Path) -> VersionCard:
    from pipeline.version.dataset import AUGMENT_AGAIN, CARD, read_card as read_version_card

    path = Path(version) / CARD
    if not os.path.lexists(path):
        raise InputError(f"{path}: not a dataset version (run `pipeline augment` first)")
    card = read_version_card(version)
    if not all(isinstance(v, str) for v in (card.source.dataset, card.source.manifest_sha256)):
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


def render(dataset: Dataset, sample: Sample, row: VersionRow, card: VersionCard,
           pool_ids: list[str]) -> tuple[np.ndarray, VersionRow]:
    """Re-render one output row through the writer's render path: (pixels, row)."""
    from pipeline.augment.registry import build_pipeline
    from pipeline.version.plan import Row
    from pipeline.version.render import Renderer

    h, w, c = card.image_shape
    by_id = {s.id: s for s in dataset.samples}
    missing = [p for p in pool_ids if p not in by_id]
    if missing:
        raise InputError(f"{dataset.root}: sample(s) {', '.join(missing[:3])} of the version's "
                         f"{row.split} split are not in the canonical dataset; pass the --dataset it was built from")
    resize, pad = card.resize
    renderer = Renderer(dataset, build_pipeline(card.pipeline), h, w, c, card.seed,
                        packed=row.file is None, resize=resize, pad=pad)
    got = renderer.render([Row(sample, row.copy, row.copy > 0, row.split, row.index)],
                          renderer.decode_serial([sample]), [by_id[p] for p in pool_ids])
    return got.pixels[0], got.rows[0]


def trace(version: Path, sample_id: str, dataset_dir: Path | None = None) -> Trace:
    from pipeline.version.card import file_sha256

    card = read_card(version)
    row, pool_ids = find_row(version, sample_id)
    root = Path(dataset_dir) if dataset_dir else Path(version) / card.source.dataset
    if not (root / "manifest.jsonl").is_file():
        raise InputError(f"{root}: the canonical dataset this version was built from is not there; "
                         "pass --dataset DIR")
    dataset = load_dataset(root)
    sample = next((s for s in dataset.samples if s.id == row.source_id), None)
    if sample is None:
        raise InputError(f"{root}: sample {row.source_id!r} is not in the canonical dataset")
    changed = file_sha256(root / "manifest.jsonl") != card.source.manifest_sha256
    pixels, rendered_row = render(dataset, sample, row, card, pool_ids)
    return Trace(row, rendered_row, sample, dataset, stored_pixels(version, row), pixels, changed)


def _mix_text(row: VersionRow) -> str:
    w = row.mix_weight
    return "" if w == 1.0 else f"  (soft: {soft_label_text(row.label, row.mix_label, w)})"


def soft_label_text(label, mix_label, weight: float) -> str:
    """``0.63·cat + 0.37·dog``: a mixed sample's soft label, for captions and traces."""
    return f"{weight:.2f}·{label} + {1 - weight:.2f}·{mix_label}"


def recorded_source(t: Trace) -> str:
    """The source file's path as ingest was given it (``report.json``), else by source name."""
    src = t.sample.source
    root = source_paths(t.dataset.root).get(src.root, src.root)
    return f"{root.rstrip('/')}/{src.path}" if root else src.path


def source_file(t: Trace) -> Path | None:
    """The user's original file where it can be opened from here; None when it is gone.

    ``report.json`` holds the source path as it was typed, relative to wherever ingest
    ran: it is looked for from the current directory, then from each folder above the
    canonical dataset (``dvc repro`` runs ingest at the repository root, above the dataset).
    """
    if not t.sample.source.path:
        return None
    given = Path(recorded_source(t))
    if given.is_absolute() or given.is_file():
        return given if given.is_file() else None
    for base in Path(os.path.abspath(t.dataset.root)).parents:
        if (base / given).is_file():
            shown = os.path.relpath(base / given)
            return base / given if shown.startswith("..") else Path(shown)
    return None


def shown_params(op: dict) -> dict:
    """An op's drawn parameters as a user reads them: no ``op`` name, no ``applied`` flag,
    no keys (``SEED_KEYS``: the sample's key, or the keys a noise field comes from)."""
    from pipeline.augment.base import SEED_KEYS

    return {k: v for k, v in op.items() if k not in ("op", "applied", SEED_KEYS)}


def _op_text(op: dict) -> str:
    if op.get("applied") is False:
        return f"{op['op']}: not applied"
    params = shown_params(op)
    return f"{op['op']}: " + (", ".join(f"{k}={json.dumps(v)}" for k, v in params.items()) or "applied")


def stored_copy(t: Trace) -> str:
    """Where the canonical dataset stores the image: ``<dataset>/images/00000.tar:<member>``
    (the pack, then the member ``tar -xf`` extracts from it), or the plain file's path."""
    from pipeline.images.imagestore import split_ref

    packed = split_ref(t.sample.image)
    return f"{t.dataset.root}/{packed[0]}:{packed[1]}" if packed else f"{t.dataset.root}/{t.sample.image}"


def _box(box) -> str:
    """``(x1, y1)–(x2, y2)``: a box's corners, in output pixels."""
    x1, y1, x2, y2 = box
    return f"({x1}, {y1})–({x2}, {y2})"


def format_trace(t: Trace) -> str:
    src = t.sample.source
    found = source_file(t)
    where = (f"{found}  (format {src.format})" if found is not None else
             f"{recorded_source(t)}  (format {src.format}; not found from here: the stored copy is below)")
    r = t.row
    lines = [
        f"output sample   {r.id}  (split {r.split}, index {r.index})",
        f"source file     {where}",
    ]
    if src.annotation:
        lines.append(f"annotation      {src.annotation}")
    lines += [
        f"canonical       {t.sample.id}  ->  {stored_copy(t)}",
        *([f"tile            at ({tile.x}, {tile.y}) of {tile.source_id} ({tile.source_width}x{tile.source_height}): "
           "add the offset to its canonical boxes for the source image's pixels"] if (tile := t.sample.tile) else []),
        f"copy            {r.copy}" + ("  (original, no ops)" if not r.ops else ""),
        f"label           {r.label}" + _mix_text(r),
    ]
    if r.partners:
        lines.append(f"mixed with      {', '.join(r.partners)}")
    for o in r.objects:
        lines.append(f"object          {o.label} box {_box(o.box)}" + ("" if o.visible else " (outside)")
                     + (f" (from {o.partner})" if o.partner is not None else ""))
    for o in r.dropped:
        lines.append(f"dropped         {o.label} source box {_box(o.source_box)}: {o.reason}")
    for i, op in enumerate(r.ops):
        lines.append(f"op {i + 1:<13}{_op_text(op)}")
    if t.dataset_changed:
        lines.append("warning         the canonical dataset changed since this version was built")
    verdict = "identical pixels" if t.same_pixels else "DIFFERENT pixels"
    lines.append(f"re-rendered     through the version's render path: {verdict} "
                 f"({t.rendered.shape[0]}x{t.rendered.shape[1]}x{t.rendered.shape[2]})")
    diff = _differences(t)
    if diff:
        lines.append(f"record          DIFFERENT from the manifest row in: {', '.join(diff)}")
    return "\n".join(lines)


def _differences(t: Trace) -> list[str]:
    """The manifest row's fields that the re-rendered row does not reproduce."""
    stored = t.row.to_dict()
    return [k for k, v in t.rendered_row.to_dict().items() if stored.get(k) != v]


def trace_facts(t: Trace) -> dict:
    """The trace as plain data for ``--json``: what ``format_trace`` shows, with exact values."""
    r, src = t.row, t.sample.source
    found = source_file(t)
    return {
        "id": r.id, "split": r.split, "index": r.index, "copy": r.copy,
        "source": {"file": str(found) if found is not None else None, "recorded": recorded_source(t),
                   "format": src.format, "annotation": src.annotation or None},
        "canonical": {"id": t.sample.id, "image": stored_copy(t),
                      **({"tile": t.sample.tile.to_json()} if t.sample.tile is not None else {})},
        "label": r.label, "mix_label": r.mix_label, "mix_weight": r.mix_weight, "partners": list(r.partners),
        "objects": [o.to_dict() for o in r.objects], "dropped": [o.to_dict() for o in r.dropped],
        "ops": [{"op": op["op"], **({"applied": op["applied"]} if "applied" in op else {}), **shown_params(op)}
                for op in r.ops],
        "dataset_changed": t.dataset_changed, "same_pixels": t.same_pixels, "identical": t.identical,
        "record_differs_in": _differences(t),
    }
