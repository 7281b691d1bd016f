"""The dataset card: ``card.json`` for programs, ``CARD.md`` for people.

Everything in the card is a function of the inputs and params, so any two runs
that render the same data write the same bytes, in any clone and at any commit.
The card names no git commit and no time: a commit that does not change a byte
(a README edit, a refactor) must not make a new version, and a fresh clone must
reproduce the committed ``dvc.lock``. The code that built a version is identified
by ``lineage.code_sha256``, a hash of the source files that render its bytes (the
augment stage's code dependencies in ``dvc.yaml``), and the package version.
``files`` holds the sha256 of every data file (images, labels, manifest). Keys read by training (issue 7):
``image_shape``, ``classes``, ``splits.<split>.pixel_mean`` / ``pixel_std``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline import __version__

FORMAT = "pipeline.dataset_version/1"
# The code that renders a version's bytes, relative to the package's parent; the
# augment stage lists the same paths as deps in dvc.yaml (a test keeps them equal).
RENDER_CODE = ("pipeline/augment", "pipeline/version", "pipeline/imagestore.py", "pipeline/record.py",
               "pipeline/seeding.py")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def assignment_sha256(assignment: dict[str, str]) -> str:
    text = json.dumps(dict(sorted(assignment.items())), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
        f"- images: {h}x{w}, {c} channel(s); classes ({len(card['classes'])}): "
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
    lines += ["", "### Samples per class", "", "| class | " + " | ".join(card["splits"]) + " |",
              "|---" * (len(card["splits"]) + 1) + "|"]
    for cls in card["classes"]:
        lines.append(f"| {cls} | " + " | ".join(str(s["per_class"].get(cls, 0))
                                              for s in card["splits"].values()) + " |")
    lines += ["", "## Augmentation pipeline", ""]
    ops = card["pipeline"]["ops"]
    lines += [f"{i + 1}. `{json.dumps(op, sort_keys=True)}`" for i, op in enumerate(ops)] or ["(none)"]
    if card.get("mix", {}).get("ops"):
        mixed = ", ".join(f"{k} {s.get('mixed', 0)}" for k, s in card["splits"].items())
        lines += ["", f"Mixed rows ({', '.join(card['mix']['ops'])}): {mixed}. {card['mix']['arrays']}."]
    lines += ["", "## Files (sha256)", ""]
    lines += [f"- `{k}`: `{v}`" for k, v in sorted(card["files"].items())]
    return "\n".join(lines) + "\n"
