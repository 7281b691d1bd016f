"""The dataset card: ``card.json`` for programs, ``CARD.md`` for people.

Everything in the card is a function of the inputs and params, so any two runs
that render the same data write the same bytes, in any clone and at any commit.
The card names no git commit and no time: a commit that does not change a byte
(a README edit, a refactor) must not make a new version, and a fresh clone must
reproduce the committed ``dvc.lock``. The code that built a version is identified
by ``lineage.code_sha256``, a hash of the source files that render its bytes (the
augment stage's code dependencies in ``dvc.yaml``), and the package version.
``files`` holds the sha256 of every data file (images, labels, manifest). Keys read by training:
``image_shape``, ``classes``, ``splits.<split>.pixel_mean`` / ``pixel_std``.

``VersionCard`` is the card as a frozen record: built once, when a version is
finished (``version.job.finish``), written with ``to_json`` and read back with
``from_json`` by every command that takes a version, each field by attribute.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.core.resize_modes import DEFAULT_RESIZE, PAD_GREY

FORMAT = "pipeline.dataset_version/1"
# The code that renders a version's bytes, relative to the package's parent; the
# augment stage lists the same paths as deps in dvc.yaml (a test keeps them equal).
RENDER_CODE = ("pipeline/__init__.py", "pipeline/config.py", "pipeline/datasets.py", "pipeline/record.py",
               "pipeline/split.py", "pipeline/split_blocks.py", "pipeline/tvweights.py", "pipeline/augment",
               "pipeline/backends", "pipeline/version", "pipeline/core", "pipeline/images", "pipeline/reports")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def assignment_sha256(assignment: dict[str, str]) -> str:
    text = json.dumps(dict(sorted(assignment.items())), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _summary(values: list[float]) -> dict:
    if not values:
        return {}
    v = sorted(values)
    return {"min": round(v[0], 3), "median": round(v[len(v) // 2], 3), "max": round(v[-1], 3),
            "mean": round(sum(v) / len(v), 3)}


class SplitCounts:
    """What one split of a version holds, counted from its rows as written."""

    def __init__(self, mixing_ops: list[str]):
        self.mixing_ops = set(mixing_ops)
        self.images_per_class: Counter = Counter()
        self.objects_per_class: Counter = Counter()
        self.mixed_by_op: Counter = Counter()
        self.dropped_by_reason: Counter = Counter()
        self.objects_per_image: list[int] = []
        self.box_w: list[float] = []
        self.box_h: list[float] = []
        self.mixed = 0  # rows whose label is a blend (mixup/cutmix on image labels)

    def add(self, row) -> None:
        """Count one ``VersionRow``."""
        if row.label is not None:
            self.images_per_class[row.label] += 1
        self.images_per_class.update({o.label for o in row.objects} if row.label is None else {})
        self.objects_per_class.update(o.label for o in row.objects)
        self.objects_per_image.append(len(row.objects))
        for o in row.objects:
            x1, y1, x2, y2 = o.box
            self.box_w.append(x2 - x1)
            self.box_h.append(y2 - y1)
        self.mixed_by_op.update(op["op"] for op in row.ops if op["op"] in self.mixing_ops and op.get("applied"))
        self.dropped_by_reason.update(d.reason for d in row.dropped)
        self.mixed += row.mix_weight != 1.0

    def summary(self, samples: int, mean: list[float], std: list[float], detection: bool) -> "SplitSummary":
        """The split's entry in the card: its size, pixel statistics and these counts."""
        stats = None
        if detection:
            aspect = [w / h for w, h in zip(self.box_w, self.box_h) if h > 0]
            small = sum(1 for w, h in zip(self.box_w, self.box_h) if w * h < 32 * 32)  # COCO's "small"
            stats = ObjectStats(objects_per_class=dict(sorted(self.objects_per_class.items())),
                                small_objects_share=round(small / len(self.box_w), 4) if self.box_w else None,
                                objects_per_image=_summary(self.objects_per_image), box_width=_summary(self.box_w),
                                box_height=_summary(self.box_h), box_aspect=_summary(aspect),
                                dropped_by_reason=dict(sorted(self.dropped_by_reason.items())))
        return SplitSummary(samples=samples, pixel_mean=tuple(mean), pixel_std=tuple(std),
                            per_class=dict(sorted(self.images_per_class.items())), mixed=self.mixed,
                            mixed_by_op={op: self.mixed_by_op.get(op, 0) for op in sorted(self.mixing_ops)},
                            objects=stats)


@dataclass(frozen=True)
class ObjectStats:
    """A detection split's objects: per class, per image, box sizes, and what was dropped why."""

    objects_per_class: dict[str, int]
    small_objects_share: float | None  # boxes under 32x32 px (COCO's "small"); None without boxes
    objects_per_image: dict[str, float]  # min, median, max, mean ({} without rows)
    box_width: dict[str, float]
    box_height: dict[str, float]
    box_aspect: dict[str, float]
    dropped_by_reason: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"objects_per_class": self.objects_per_class, "small_objects_share": self.small_objects_share,
                "objects_per_image": self.objects_per_image, "box_width": self.box_width,
                "box_height": self.box_height, "box_aspect": self.box_aspect,
                "dropped_by_reason": self.dropped_by_reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ObjectStats":
        return cls(**{k: d[k] for k in ("objects_per_class", "small_objects_share", "objects_per_image", "box_width",
                                         "box_height", "box_aspect", "dropped_by_reason")})


@dataclass(frozen=True)
class SplitSummary:
    """One split of a version: samples, pixel mean/std per channel in [0, 1], counts."""

    samples: int
    pixel_mean: tuple[float, ...]
    pixel_std: tuple[float, ...]
    per_class: dict[str, int]  # samples per class (detection: images holding the class)
    mixed: int = 0  # rows whose label is a blend
    mixed_by_op: dict[str, int] = field(default_factory=dict)
    objects: ObjectStats | None = None  # detection versions only

    def to_dict(self) -> dict[str, Any]:
        d = {"samples": self.samples, "pixel_mean": list(self.pixel_mean), "pixel_std": list(self.pixel_std),
             "per_class": self.per_class, "mixed": self.mixed, "mixed_by_op": self.mixed_by_op}
        return {**d, **self.objects.to_dict()} if self.objects is not None else d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SplitSummary":
        return cls(samples=int(d["samples"]), pixel_mean=tuple(d["pixel_mean"]), pixel_std=tuple(d["pixel_std"]),
                   per_class=dict(d.get("per_class", {})), mixed=int(d.get("mixed", 0)),
                   mixed_by_op=dict(d.get("mixed_by_op", {})),
                   objects=ObjectStats.from_dict(d) if "objects_per_class" in d else None)


@dataclass(frozen=True)
class CardSource:
    """The inputs a version was built from."""

    dataset: str  # the canonical dataset, relative to the version
    manifest_sha256: str
    classes_sha256: str
    splits_sha256: str
    images_sha256: str  # over every source image file's sha256, in row order

    def to_dict(self) -> dict[str, str]:
        return {"dataset": self.dataset, "manifest_sha256": self.manifest_sha256,
                "classes_sha256": self.classes_sha256, "splits_sha256": self.splits_sha256,
                "images_sha256": self.images_sha256}


@dataclass(frozen=True)
class CodeLineage:
    package_version: str
    code_sha256: str  # see code_sha256()

    def to_dict(self) -> dict[str, str]:
        return {"package_version": self.package_version, "code_sha256": self.code_sha256}


@dataclass(frozen=True)
class VersionCard:
    """``card.json`` as a record (see the module docstring)."""

    kind: str  # classification | detection
    storage: str  # packed | files
    image_shape: tuple[int | None, int | None, int]  # (None, None, C): each row at its source's size
    classes: tuple[str, ...]
    seed: int
    params: dict[str, Any]  # augment params, less the knobs that cannot change a byte
    pipeline: dict[str, Any]  # registry.dump_pipeline: defaults filled in, backend resolved
    mix_ops: tuple[str, ...]  # the mixing ops, by name
    mix_arrays: str  # what the mix arrays hold
    lineage: CodeLineage
    splits: dict[str, SplitSummary]  # in the order they were written
    files: dict[str, str]  # sha256 of every data file
    source: CardSource
    format: str = FORMAT

    @property
    def resize(self) -> tuple[str, int]:
        """(augment.resize, augment.pad_value) the version's images were brought to size with."""
        return self.params.get("resize", DEFAULT_RESIZE), self.params.get("pad_value", PAD_GREY)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "kind": self.kind, "storage": self.storage,
                "image_shape": list(self.image_shape), "classes": list(self.classes), "seed": self.seed,
                "params": self.params, "pipeline": self.pipeline,
                "mix": {"ops": list(self.mix_ops), "arrays": self.mix_arrays},
                "lineage": self.lineage.to_dict(), "splits": {k: v.to_dict() for k, v in self.splits.items()},
                "files": self.files, "source": self.source.to_dict()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VersionCard":
        """KeyError, TypeError or ValueError for a card that lacks a field or has one of the wrong shape."""
        shape = tuple(d["image_shape"])
        if len(shape) != 3:
            raise ValueError(f"image_shape has {len(shape)} sides")
        return cls(kind=d["kind"], storage=d["storage"], image_shape=shape,  # type: ignore[arg-type]
                   classes=tuple(d["classes"]), seed=d["seed"], params=dict(d["params"]),
                   pipeline=dict(d["pipeline"]), mix_ops=tuple(d.get("mix", {}).get("ops", ())),
                   mix_arrays=d.get("mix", {}).get("arrays", ""), lineage=CodeLineage(**d["lineage"]),
                   splits={k: SplitSummary.from_dict(v) for k, v in d["splits"].items()},
                   files=dict(d["files"]), source=CardSource(**d["source"]), format=d["format"])

    @classmethod
    def from_json(cls, text: str) -> "VersionCard":
        return cls.from_dict(json.loads(text))


def pixel_stats(total: list[int], total_sq: list[int], pixels: int) -> tuple[list[float], list[float]]:
    """Mean and std per channel in [0, 1], from exact integer sums (order-independent)."""
    pixels = max(pixels, 1)
    mean = [t / pixels for t in total]
    std = [max(sq / pixels - m * m, 0.0) ** 0.5 for sq, m in zip(total_sq, mean)]
    return [round(m / 255.0, 6) for m in mean], [round(s / 255.0, 6) for s in std]


def code_sha256() -> str:
    """sha256 over the rendering code's ``.py`` files (relative path and bytes, sorted by path).

    The same in every clone and install of the same sources; a README edit or a
    change elsewhere in the package leaves it (and so the version) unchanged.
    """
    top = Path(__file__).resolve().parents[2]
    files = []
    for entry in RENDER_CODE:
        path = top / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.relative_to(top).as_posix()):
        h.update(f"{f.relative_to(top).as_posix()}\0{f.stat().st_size}\0".encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def lineage() -> CodeLineage:
    return CodeLineage(__version__, code_sha256())


def render_markdown(card: VersionCard) -> str:
    """CARD.md: the same facts as card.json, as a page a person reads."""
    h, w, c = card.image_shape
    lines = [
        "# Dataset version card", "",
        f"- format: `{card.format}`, {card.kind}, storage: {card.storage}",
        f"- images: {f'{h}x{w}' if h is not None else 'each at its source size'}, {c} channel(s); classes ({len(card.classes)}): "
        + ", ".join(f"`{x}`" for x in card.classes),
        f"- seed: {card.seed}; copies: {card.params['copies']}; "
        f"originals kept: {card.params['keep_originals']}",
        f"- built by pipeline {card.lineage.package_version}, rendering code "
        f"`{card.lineage.code_sha256[:16]}`", "",
        "## Source", "",
    ]
    lines += [f"- {k}: `{v}`" for k, v in sorted(card.source.to_dict().items())]
    lines += ["", "## Splits", "", "| split | samples | pixel mean | pixel std |", "|---|---|---|---|"]
    for name, s in card.splits.items():
        lines.append(f"| {name} | {s.samples} | {list(s.pixel_mean)} | {list(s.pixel_std)} |")
    detection = card.kind == "detection"
    heading = "Images per class (images holding the class)" if detection else "Samples per class"
    tables = [(heading, lambda s: s.per_class)]
    if detection:
        tables.append(("Objects per class", lambda s: s.objects.objects_per_class if s.objects else {}))
    for title, counts in tables:
        lines += ["", f"### {title}", "", "| class | " + " | ".join(card.splits) + " |",
                  "|---" * (len(card.splits) + 1) + "|"]
        for cls in card.classes:
            lines.append(f"| {cls} | " + " | ".join(str(counts(s).get(cls, 0)) for s in card.splits.values()) + " |")
    if detection:
        lines += ["", "### Objects", ""]
        for name, s in card.splits.items():
            o = s.objects
            drops = ", ".join(f"{k} {v}" for k, v in (o.dropped_by_reason if o else {}).items()) or "none"
            lines.append(f"- {name}: objects per image {o and o.objects_per_image}; small (< 32x32 px) "
                         f"{o and o.small_objects_share}; box width "
                         f"{o and o.box_width}, height {o and o.box_height}, aspect {o and o.box_aspect}; "
                         f"dropped: {drops}")
    lines += ["", "## Augmentation pipeline", ""]
    ops = card.pipeline["ops"]
    lines += [f"{i + 1}. `{json.dumps(op, sort_keys=True)}`" for i, op in enumerate(ops)] or ["(none)"]
    if card.mix_ops:
        for op in card.mix_ops:
            counts = ", ".join(f"{k} {s.mixed_by_op.get(op, 0)}" for k, s in card.splits.items())
            lines += ["", f"Rows {op} applied to: {counts}."]
        soft = ", ".join(f"{k} {s.mixed}" for k, s in card.splits.items())
        lines += [f"Rows with a soft (blended) image label: {soft}. {card.mix_arrays}."]
    lines += ["", "## Files (sha256)", ""]
    lines += [f"- `{k}`: `{v}`" for k, v in sorted(card.files.items())]
    return "\n".join(lines) + "\n"
