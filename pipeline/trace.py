"""``pipeline trace``: from one output sample of a dataset version back to its source.

The manifest row names the canonical sample and the copy, and records every
parameter each op drew, exactly. Tracing prints the user's source file (through
the canonical ``Source`` record) and those parameters, then re-renders the sample
from the source image and the recorded parameters alone (no seed, no RNG) and
compares the pixels with the stored ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import InputError
from pipeline.record import Dataset, Sample, load_dataset, read_jsonl, source_paths


@dataclass(frozen=True)
class Trace:
    row: dict
    sample: Sample
    dataset: Dataset
    stored: np.ndarray  # uint8 (H, W, C) as written in the version
    rendered: np.ndarray  # uint8 (H, W, C) re-rendered from the recorded parameters
    dataset_changed: bool  # the canonical manifest differs from the one the version was built from

    @property
    def identical(self) -> bool:
        return self.stored.shape == self.rendered.shape and bool((self.stored == self.rendered).all())


def read_card(version: Path) -> dict:
    path = Path(version) / "card.json"
    if not path.is_file():
        raise InputError(f"{path}: not a dataset version (run `pipeline augment` first)")
    return json.loads(path.read_text(encoding="utf-8"))


def find_row(version: Path, sample_id: str) -> dict:
    """The manifest row of output sample ``sample_id`` (``<source id>#<copy>``), streamed."""
    for row in read_jsonl(Path(version) / "manifest.jsonl"):
        if row["id"] == sample_id:
            return row
    raise InputError(f"{version}/manifest.jsonl: no output sample {sample_id!r} "
                     "(ids look like '<source id>#<copy>', e.g. 'mnist5k/train/3/00012.png#1')")


def stored_pixels(version: Path, row: dict) -> np.ndarray:
    if "file" in row:
        from PIL import Image

        a = np.asarray(Image.open(Path(version) / row["file"]))
        return a[:, :, None] if a.ndim == 2 else a
    images = np.load(Path(version) / f"{row['split']}_images.npy", mmap_mode="r")
    return np.array(images[row["index"]])


def render(dataset: Dataset, sample: Sample, row: dict, card: dict) -> np.ndarray:
    """Re-render one output sample from its source image and its recorded op parameters."""
    import torch

    from pipeline.augment.registry import build_pipeline
    from pipeline.version.decode import decode
    from pipeline.version.manifest import drawn_from_rows

    h, w, c = card["image_shape"]
    img = torch.from_numpy(decode(dataset.read_image(sample), h, w, c).pixels)[None]
    if row["ops"]:
        pipe = build_pipeline(card["pipeline"])
        partners = None
        if pipe.partner_slots():  # mixing: the recorded partners' resized source images, as the writer used
            by_id = {s.id: s for s in dataset.samples}
            missing = [p for p in row.get("partners", []) if p not in by_id]
            if missing or len(row.get("partners", [])) != pipe.partner_slots():
                raise InputError(f"manifest row {row['id']!r}: mixing partner(s) {missing or 'unrecorded'} "
                                 "not in the canonical dataset; pass the --dataset it was built from")
            partners = [(torch.from_numpy(decode(dataset.read_image(by_id[p]), h, w, c).pixels)[None], None)
                         for p in row["partners"]]
        img = pipe.apply(img, drawn_from_rows(pipe.ops, [row["ops"]]), partners)
    return img[0].permute(1, 2, 0).contiguous().numpy()


def trace(version: Path, sample_id: str, dataset_dir: Path | None = None) -> Trace:
    from pipeline.version.card import file_sha256

    card = read_card(version)
    row = find_row(version, sample_id)
    root = Path(dataset_dir or card["source"]["dataset"])
    if not (root / "manifest.jsonl").is_file():
        raise InputError(f"{root}: the canonical dataset this version was built from is not there; "
                         "pass --dataset DIR")
    dataset = load_dataset(root)
    sample = next((s for s in dataset.samples if s.id == row["source_id"]), None)
    if sample is None:
        raise InputError(f"{root}: sample {row['source_id']!r} is not in the canonical dataset")
    changed = file_sha256(root / "manifest.jsonl") != card["source"]["manifest_sha256"]
    return Trace(row, sample, dataset, stored_pixels(version, row), render(dataset, sample, row, card), changed)


def _mix_text(row: dict) -> str:
    w = row.get("mix_weight", 1.0)
    return "" if w == 1.0 else f"  (soft: {soft_label_text(row['label'], row['mix_label'], w)})"


def soft_label_text(label, mix_label, weight: float) -> str:
    """``0.63·cat + 0.37·dog``: a mixed sample's soft label, for captions and traces."""
    return f"{weight:.2f}·{label} + {1 - weight:.2f}·{mix_label}"


def format_trace(t: Trace) -> str:
    src = t.sample.source
    root = source_paths(t.dataset.root).get(src.root, src.root)  # the path given, else the name
    where = f"{root.rstrip('/')}/{src.path}" if root else src.path
    lines = [
        f"output sample   {t.row['id']}  (split {t.row['split']}, index {t.row['index']})",
        f"source file     {where}  (format {src.format})",
    ]
    if src.annotation:
        lines.append(f"annotation      {src.annotation}")
    lines += [
        f"canonical       {t.sample.id}  ->  {t.dataset.image_location(t.sample)}",
        f"copy            {t.row['copy']}" + ("  (original, no ops)" if not t.row["ops"] else ""),
        f"label           {t.row['label']}" + _mix_text(t.row),
    ]
    if t.row.get("partners"):
        lines.append(f"mixed with      {', '.join(t.row['partners'])}")
    for o in t.row.get("objects", []):
        lines.append(f"object          {o['label']} box {o['box']}" + ("" if o.get("visible", True) else " (outside)")
                     + (f" (from {o['partner']})" if "partner" in o else ""))
    for o in t.row.get("dropped", []):
        lines.append(f"dropped         {o['label']} source box {o['source_box']}: {o['reason']}")
    for i, op in enumerate(t.row["ops"]):
        rest = ", ".join(f"{k}={v!r}" for k, v in op.items() if k != "op")
        lines.append(f"op {i + 1}            {op['op']}: {rest}")
    if t.dataset_changed:
        lines.append("warning         the canonical dataset changed since this version was built")
    verdict = "identical pixels" if t.identical else "DIFFERENT pixels"
    lines.append(f"re-rendered     from the recorded parameters: {verdict} "
                 f"({t.rendered.shape[0]}x{t.rendered.shape[1]}x{t.rendered.shape[2]})")
    return "\n".join(lines)
