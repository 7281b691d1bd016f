"""Per-sample op parameters as exact JSON data, and back.

A version must be replayable to the same pixels, so the manifest records every
drawn value exactly: a float32 becomes
the Python float of the same value (its ``repr`` round-trips), a bool stays a
bool, an int an int. ``drawn_from_rows`` rebuilds the engine's per-op tensors
from those rows, so ``pipe.apply(images, drawn_from_rows(...))`` re-renders
exactly what the stage wrote.

A manifest row (``VersionRow``; optional keys are left out when empty)::

    {"id": "<source id>#<copy>", "source_id": ..., "copy": 0..n, "split": ...,
     "index": position in the split's arrays, "label": class name,
     "ops": [{"op": name, <param>: value, ...}, ...],   # [] for originals; the first holds "_keys":
                                                       # the sample's key (seed, source id, copy)
     "objects": [{"label", "box", "polygons"?, "visible", "weight"?, "partner"?}],  # output pixels
     "dropped": [{"label", "source_box", "reason"}],     # only when an object was removed
     "mix_label": class name, "mix_weight": weight of label (1.0: not mixed),
     "partners": [source id per mixing slot],          # only for augmented rows with mixing ops
     "file": "images/<split>/<index>.png",              # only when not packed
     "size": [height, width]}                          # only at native resolution (no one size)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class RowObject:
    """An object of an output row, in output pixels (``box`` XYXY, polygons flat)."""

    label: str
    box: tuple[float, ...]
    polygons: tuple[tuple[float, ...], ...] = ()
    visible: bool = True  # False: outside the canvas (kept, not drawn or trained on)
    weight: float = 1.0  # mixup: the share of the object's image
    partner: str | int | None = None  # the mixing partner (source id) it came from; None: the row's own

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"label": self.label, "box": list(self.box), "visible": self.visible}
        if self.polygons:
            d["polygons"] = [list(p) for p in self.polygons]
        if self.weight != 1.0:
            d["weight"] = self.weight
        if self.partner is not None:
            d["partner"] = self.partner
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RowObject":
        return cls(label=d["label"], box=tuple(d["box"]), polygons=tuple(tuple(p) for p in d.get("polygons", ())),
                   visible=bool(d.get("visible", True)), weight=d.get("weight", 1.0), partner=d.get("partner"))


@dataclass(frozen=True)
class DroppedObject:
    """One of the source's own objects that is not in the row, and why."""

    label: str
    source_box: tuple[float, ...]  # in the canonical image's pixels
    reason: str  # the rule it broke, the patch that covered it, or the resize

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "source_box": list(self.source_box), "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DroppedObject":
        return cls(label=d["label"], source_box=tuple(d["source_box"]), reason=d["reason"])


@dataclass(frozen=True)
class VersionRow:
    """One output sample of a version: where it came from and what was done to it.

    Built in one place (``pipeline.version.render``), written as one JSON line, read
    back with ``from_json`` by trace, training and every command that takes a version.
    """

    id: str  # "<source id>#<copy>"
    source_id: str
    copy: int  # 0 = the original
    split: str
    index: int  # position in the split's arrays (or its image file)
    label: str | None  # class name; None for detection data without an image label
    ops: tuple[dict[str, Any], ...] = ()  # the exact parameters each op drew; () for originals
    objects: tuple[RowObject, ...] = ()
    mix_label: str | None = None
    mix_weight: float = 1.0  # the weight of ``label`` (1.0: not mixed)
    partners: tuple[str, ...] = ()  # source id per mixing slot
    dropped: tuple[DroppedObject, ...] = ()  # own objects removed, with the reason
    file: str | None = None  # "images/<split>/<index>.png" when not packed
    size: tuple[int, int] | None = None  # (height, width) when the version keeps each source's size

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "source_id": self.source_id, "copy": self.copy, "split": self.split,
             "index": self.index, "label": self.label, "ops": list(self.ops), "objects": [o.to_dict() for o in self.objects],
             "mix_label": self.mix_label, "mix_weight": self.mix_weight}
        if self.partners:
            d["partners"] = list(self.partners)
        if self.dropped:
            d["dropped"] = [o.to_dict() for o in self.dropped]
        if self.file is not None:
            d["file"] = self.file
        if self.size is not None:
            d["size"] = list(self.size)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VersionRow":
        return cls(id=d["id"], source_id=d["source_id"], copy=int(d["copy"]), split=d["split"],
                   index=int(d["index"]), label=d.get("label"), ops=tuple(d.get("ops", ())),
                   objects=tuple(RowObject.from_dict(o) for o in d.get("objects", ())), mix_label=d.get("mix_label"),
                   mix_weight=float(d.get("mix_weight", 1.0)), partners=tuple(d.get("partners", ())),
                   dropped=tuple(DroppedObject.from_dict(o) for o in d.get("dropped", ())), file=d.get("file"),
                   size=tuple(d["size"]) if d.get("size") else None)

    @classmethod
    def from_json(cls, line: str) -> "VersionRow":
        return cls.from_dict(json.loads(line))


def exact_params(ops, drawn, index: int, key: "torch.Tensor | None" = None) -> list[dict[str, Any]]:
    """The parameters sample ``index`` of a batch received, in op order, unrounded; the
    first op's entry also holds ``key``, the sample's key every draw came from (under
    ``SEED_KEYS``, unless that op keeps its own there)."""
    out = []
    for op, params in zip(ops, drawn):
        d: dict[str, Any] = {"op": op.name}
        for k, v in params.items():
            d[k] = v[index].cpu().tolist()  # float32 -> the same value as a Python float
        out.append(d)
    if out and key is not None:
        from pipeline.augment.base import SEED_KEYS

        out[0].setdefault(SEED_KEYS, key.tolist())
    return out


def _dtype_of(value: Any) -> "torch.dtype":
    import torch

    while isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, bool):
        return torch.bool
    if isinstance(value, int):
        return torch.int64
    return torch.float32


def drawn_from_rows(ops, rows: list[list[dict[str, Any]]], device="cpu") -> list[dict[str, "torch.Tensor"]]:
    """Rebuild a batch's drawn parameters from the ``ops`` lists of manifest rows."""
    import torch

    drawn = []
    for j, op in enumerate(ops):
        entries = [r[j] for r in rows]
        for e in entries:
            if e.get("op") != op.name:
                raise ValueError(f"manifest op {j} is {e.get('op')!r}, the pipeline has {op.name!r}")
        keys = [k for k in entries[0] if k != "op"]
        drawn.append({k: torch.tensor([e[k] for e in entries], dtype=_dtype_of(entries[0][k]), device=device)
                      for k in keys})
    return drawn
