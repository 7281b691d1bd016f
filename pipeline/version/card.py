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
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from pipeline import __version__

FORMAT = "pipeline.dataset_version/1"
# The code that renders a version's bytes, relative to the package's parent; the
# augment stage lists the same paths as deps in dvc.yaml (a test keeps them equal).
RENDER_CODE = ("pipeline/augment", "pipeline/backends", "pipeline/version", "pipeline/config.py", "pipeline/imagestore.py",
               "pipeline/packindex.py", "pipeline/record.py", "pipeline/seeding.py")


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
        self.images_per_class.update({o["label"] for o in row.objects} if row.label is None else {})
        self.objects_per_class.update(o["label"] for o in row.objects)
        self.objects_per_image.append(len(row.objects))
        for o in row.objects:
            x1, y1, x2, y2 = o["box"]
            self.box_w.append(x2 - x1)
            self.box_h.append(y2 - y1)
        self.mixed_by_op.update(op["op"] for op in row.ops if op["op"] in self.mixing_ops and op.get("applied"))
        self.dropped_by_reason.update(d["reason"] for d in row.dropped)
        self.mixed += row.mix_weight != 1.0

    def to_json(self, detection: bool) -> dict:
        out = {"per_class": dict(sorted(self.images_per_class.items())), "mixed": self.mixed,
               "mixed_by_op": {op: self.mixed_by_op.get(op, 0) for op in sorted(self.mixing_ops)}}
        if detection:
            aspect = [w / h for w, h in zip(self.box_w, self.box_h) if h > 0]
            small = sum(1 for w, h in zip(self.box_w, self.box_h) if w * h < 32 * 32)  # COCO's "small"
            out.update(objects_per_class=dict(sorted(self.objects_per_class.items())),
                       small_objects_share=round(small / len(self.box_w), 4) if self.box_w else None,
                       objects_per_image=_summary(self.objects_per_image), box_width=_summary(self.box_w),
                       box_height=_summary(self.box_h), box_aspect=_summary(aspect),
                       dropped_by_reason=dict(sorted(self.dropped_by_reason.items())))
        return out


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


def lineage() -> dict:
    return {"package_version": __version__, "code_sha256": code_sha256()}


def render_markdown(card: dict) -> str:
    """CARD.md: the same facts as card.json, as a page a person reads."""
    h, w, c = card["image_shape"]
    lines = [
        "# Dataset version card", "",
        f"- format: `{card['format']}`, {card['kind']}, storage: {card['storage']}",
        f"- images: {f'{h}x{w}' if h is not None else 'each at its source size'}, {c} channel(s); classes ({len(card['classes'])}): "
        + ", ".join(f"`{x}`" for x in card["classes"]),
        f"- seed: {card['seed']}; copies: {card['params']['copies']}; "
        f"originals kept: {card['params']['keep_originals']}",
        f"- built by pipeline {card['lineage']['package_version']}, rendering code "
        f"`{card['lineage']['code_sha256'][:16]}`", "",
        "## Source", "",
    ]
    lines += [f"- {k}: `{v}`" for k, v in sorted(card["source"].items())]
    lines += ["", "## Splits", "", "| split | samples | pixel mean | pixel std |", "|---|---|---|---|"]
    for name, s in card["splits"].items():
        lines.append(f"| {name} | {s['samples']} | {s['pixel_mean']} | {s['pixel_std']} |")
    detection = card["kind"] == "detection"
    heading = "Images per class (images holding the class)" if detection else "Samples per class"
    tables = [(heading, "per_class")] + ([("Objects per class", "objects_per_class")] if detection else [])
    for title, key in tables:
        lines += ["", f"### {title}", "", "| class | " + " | ".join(card["splits"]) + " |",
                  "|---" * (len(card["splits"]) + 1) + "|"]
        for cls in card["classes"]:
            lines.append(f"| {cls} | " + " | ".join(str(s.get(key, {}).get(cls, 0))
                                                  for s in card["splits"].values()) + " |")
    if detection:
        lines += ["", "### Objects", ""]
        for name, s in card["splits"].items():
            drops = ", ".join(f"{k} {v}" for k, v in s.get("dropped_by_reason", {}).items()) or "none"
            lines.append(f"- {name}: objects per image {s.get('objects_per_image')}; small (< 32x32 px) "
                         f"{s.get('small_objects_share')}; box width "
                         f"{s.get('box_width')}, height {s.get('box_height')}, aspect {s.get('box_aspect')}; "
                         f"dropped: {drops}")
    lines += ["", "## Augmentation pipeline", ""]
    ops = card["pipeline"]["ops"]
    lines += [f"{i + 1}. `{json.dumps(op, sort_keys=True)}`" for i, op in enumerate(ops)] or ["(none)"]
    if card.get("mix", {}).get("ops"):
        for op in card["mix"]["ops"]:
            counts = ", ".join(f"{k} {s.get('mixed_by_op', {}).get(op, 0)}" for k, s in card["splits"].items())
            lines += ["", f"Rows {op} applied to: {counts}."]
        soft = ", ".join(f"{k} {s.get('mixed', 0)}" for k, s in card["splits"].items())
        lines += [f"Rows with a soft (blended) image label: {soft}. {card['mix']['arrays']}."]
    lines += ["", "## Files (sha256)", ""]
    lines += [f"- `{k}`: `{v}`" for k, v in sorted(card["files"].items())]
    return "\n".join(lines) + "\n"
