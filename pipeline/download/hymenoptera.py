"""Hymenoptera (ants vs bees), the PyTorch transfer-learning tutorial's ImageFolder zip.

The zip holds ``hymenoptera_data/{train,val}/{ants,bees}/*.jpg``; the two split
folders are moved to ``out/train`` and ``out/val`` unchanged (JPEG bytes as
published; ingest decodes and checks them).

No checksum is published for this file (torchvision does not ship it and the
tutorial gives none), so without ``--checksums`` its bytes are not verified:
``pipeline download`` says so and prints the SHA-256 it got, to pin with
``--checksums`` next time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipeline.core.atomic import atomic_dir
from pipeline.download import inputs_of
from pipeline.download.archive import safe_extract
from pipeline.download.remote import BadDownload, FetchOptions, Remote, obtain

URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
NAME = "hymenoptera_data.zip"
ROOT = "hymenoptera_data"
SPLITS = ("train", "val")
CLASSES = ("ants", "bees")


def remotes() -> list[Remote]:
    return [Remote(NAME, (URL,), None)]


def fetch(out: Path, opts: FetchOptions) -> Path:
    """Download (or take from cache/--from) and write ``out/{train,val}/{ants,bees}/*.jpg``."""
    archive = obtain("hymenoptera", remotes(), opts)[NAME]
    with atomic_dir(Path(out), "download", inputs_of(opts)) as tmp:
        root = safe_extract(archive, tmp / ".archive") / ROOT
        for split in SPLITS:
            found = sorted(p.name for p in (root / split).iterdir() if p.is_dir()) if (root / split).is_dir() else []
            if found != list(CLASSES):
                raise BadDownload(f"{NAME}: expected {ROOT}/{split}/ with class folders "
                                  f"{', '.join(CLASSES)}; found {found or 'nothing'}", archive)
            os.replace(root / split, tmp / split)
        shutil.rmtree(tmp / ".archive")
    return Path(out)
