"""Shared fixtures: small generated image trees in real formats."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("PIPELINE_NO_PROGRESS", "1")

from tests.clone import REPO, reproduced_clone  # noqa: F401  (a session fixture: one repro'd clone)


def class_image(cls: int, i: int, size: int = 16, channels: int = 1) -> np.ndarray:
    """A learnable image: class k is a bright bar at row band k, plus per-image noise."""
    rng = np.random.default_rng(cls * 1000 + i)
    a = rng.integers(0, 40, size=(size, size), dtype=np.uint8)
    band = size // 4
    r0 = (cls * band) % (size - band + 1)
    a[r0:r0 + band, :] = 200 + rng.integers(0, 50)
    if channels == 3:
        a = np.stack([a, a[::-1], a.T], axis=-1)
    return a


def make_imagefolder(root: Path, classes: int = 3, per_class: int = 10, size: int = 16,
                     splits: tuple[str, ...] = (), channels: int = 1) -> Path:
    from PIL import Image

    parts = splits or ("",)
    for k, split in enumerate(parts):
        for c in range(classes):
            d = root / split / f"class{c}" if split else root / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(class_image(c, i + 100 * k, size, channels)).save(d / f"{i:03d}.png")
    return root


def make_version(root: Path, per_class: int, ratios: dict[str, float], pipeline: list[dict] | None = None,
                 copies: int = 0, channels: int = 1, out: str = "v") -> Path:
    """A small 3-class, 16x16 dataset version under ``root``: imagefolder -> ingest ->
    split -> augment, as the stages chain them (``pipeline``: the augment ops)."""
    from pipeline.config import AugmentParams, IngestParams, SplitParams
    from pipeline.ingest import ingest
    from pipeline.split import assign_splits
    from pipeline.version import write_version

    src = make_imagefolder(root / "src", classes=3, per_class=per_class, size=16, channels=channels)
    ds = ingest(src, root / "canonical", IngestParams(workers=1))
    splits = assign_splits(ds, SplitParams(ratios=ratios))
    write_version(ds, splits, AugmentParams(copies=copies, pipeline=pipeline or []), root / out)
    return root / out


def tree_digest(root: Path) -> str:
    """Hash of every path and byte under root: proves a tree was not modified."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def imagefolder(tmp_path: Path) -> Path:
    return make_imagefolder(tmp_path / "src")
