"""A dataset version read as a dataset: its rows as ``Sample`` records.

A version is a canonical dataset plus training arrays. Each manifest row becomes a
``Sample`` (id ``<source id>#<copy>``, the output size, the label, the objects in
output pixels, its split) whose ``lineage`` says where it came from (source id,
copy, the op parameters, partners, dropped objects and why, the soft label). Its
image is read through the same ``Dataset.read_image`` as a canonical one:
``<split>_images.npy/<index>.png`` is the row of the packed array, encoded as PNG on
demand (exact: PNG is lossless); unpacked versions name their PNG files. So every
command that takes a dataset (``stats``, ``export``, ``augment --preview``) takes a
version too.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path, PurePosixPath

import numpy as np

from pipeline.core.errors import InputError
from pipeline.record import (CLASSES, Dataset, Lineage, Object, Sample, Source, read_classes, read_json,
                             read_jsonl)
from pipeline.version.card import VersionCard
from pipeline.version.manifest import VersionRow

CARD = "card.json"
ARRAY_SUFFIX = "_images.npy"


def is_version(root: Path) -> bool:
    """A directory with a ``card.json`` (of whatever kind: a FIFO there is refused when read)."""
    return os.path.lexists(Path(root) / CARD)


def array_ref(split: str, index: int) -> str:
    return f"{split}{ARRAY_SUFFIX}/{index:07d}.png"


class VersionImages:
    """Images of a version (a ``record.ImageSource``): rows of the packed arrays (as PNG
    bytes) or its PNG files."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._arrays: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {"root": self.root}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"])  # type: ignore[misc]

    def pixels(self, ref: str, channels: int | None = None) -> np.ndarray:
        """uint8 (H, W, C) of an image reference, without encoding: as written, with the
        version's channels (``channels`` is the sample's, the same)."""
        parts = PurePosixPath(ref).parts
        if len(parts) == 2 and parts[0].endswith(ARRAY_SUFFIX):
            with self._lock:
                if parts[0] not in self._arrays:
                    try:
                        self._arrays[parts[0]] = np.load(self.root / parts[0], mmap_mode="r")
                    except (OSError, ValueError) as err:
                        raise InputError(f"{self.root / parts[0]}: cannot read the version's images ({err})") from None
                arr = self._arrays[parts[0]]
            return np.array(arr[int(PurePosixPath(parts[1]).stem)])
        from PIL import Image

        with Image.open(io.BytesIO(self.read(ref))) as img:
            a = np.asarray(img)
        return a[:, :, None] if a.ndim == 2 else a

    def read(self, ref: str) -> bytes:
        parts = PurePosixPath(ref).parts
        if len(parts) == 2 and parts[0].endswith(ARRAY_SUFFIX):
            from PIL import Image

            a = self.pixels(ref)
            buf = io.BytesIO()
            Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a).save(buf, format="PNG")
            return buf.getvalue()
        try:
            return (self.root / ref).read_bytes()
        except OSError as err:
            raise InputError(f"{self.root / ref}: cannot read the version's image ({err.strerror})") from None


def row_sample(row: VersionRow, shape: tuple[int | None, int | None, int], card: VersionCard) -> Sample:
    """The ``Sample`` of one manifest row (objects in output pixels, lineage typed)."""
    h, w = row.size if row.size is not None else shape[:2]
    c = shape[2]
    shown = [o for o in row.objects if o.visible]
    objects = tuple(Object(o.label, o.box, o.polygons) for o in shown)
    lineage = Lineage(source_id=row.source_id, copy=row.copy, ops=row.ops, partners=row.partners,
                      dropped=tuple(d.to_dict() for d in row.dropped), mix_label=row.mix_label,
                      mix_weight=row.mix_weight, object_partners=tuple("" if o.partner is None else o.partner
                                                                       for o in shown),
                      object_weights=tuple(o.weight for o in shown))
    return Sample(id=row.id, image=row.file or array_ref(row.split, row.index), width=w, height=h, channels=c,
                  label=row.label, objects=objects, split=row.split,
                  source=Source("version", row.source_id, "version"),
                  lineage=lineage)


AUGMENT_AGAIN = "re-run `pipeline augment` to write the version again"


def read_card(root: Path) -> VersionCard:
    """A version's ``card.json``, read by the guarded reader; one ``InputError`` naming
    the file for a card that is not a JSON object or lacks a field."""
    path = Path(root) / CARD
    card = read_json(path, AUGMENT_AGAIN)
    if not isinstance(card, dict):
        raise InputError(f"{path}: not a JSON object; {AUGMENT_AGAIN}")
    try:
        return VersionCard.from_dict(card)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{path}: not a complete card ({type(err).__name__}: {err}); {AUGMENT_AGAIN}") from None


def load_version(root: Path) -> Dataset:
    """A dataset version as a ``Dataset`` of its output rows."""
    root = Path(root)
    card = read_card(root)
    classes = read_classes(root / CLASSES, AUGMENT_AGAIN)
    shape = card.image_shape
    samples = tuple(read_jsonl(root / "manifest.jsonl", lambda d: row_sample(VersionRow.from_dict(d), shape, card),
                               AUGMENT_AGAIN))
    return Dataset(root=root, samples=samples, classes=classes, images=VersionImages(root))
