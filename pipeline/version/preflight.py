"""Before a version is written: will it fit in memory and on disk?

The version writer streams rows in batches, so memory holds a few batches and the
disk receives every row: ``images x H x W x C`` bytes of packed arrays (PNG files
for large images are smaller, never larger than that bound by much). A size that
cannot fit is refused here, with the numbers and the knob to turn, before any
decoding starts (unchecked, a 100000x100000 ``image_size`` fails deep inside numpy
after minutes, asking for 120 GB).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.config import AugmentParams
from pipeline.core.device import available_memory
from pipeline.core.errors import InputError
from pipeline.record import Dataset

# Bytes held per image of a batch while it is transformed: the uint8 decode of the
# batches decoded ahead and the one being written (4), plus float32 working copies
# of the transform (2 x 4 bytes).
BATCH_BYTES_PER_PIXEL_BYTE = 12
GiB = 1 << 30


def free_disk(path: Path) -> int | None:
    """Free bytes on the file system that will hold ``path`` (its nearest existing parent)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def check_fits(dataset: Dataset, assignment: dict[str, str], params: AugmentParams, out: Path) -> None:
    """Raise ``InputError`` when the version cannot fit in memory or on ``out``'s disk."""
    from pipeline.record import SPLITS
    from pipeline.version.plan import Plan, output_geometry, reference_size

    h, w, c = output_geometry(dataset, params)
    plan = Plan(dataset, assignment, params)
    rows = sum(plan.count(s) for s in SPLITS)
    if h is None or w is None:  # native resolution: each row at its source's size
        h, w = reference_size(dataset, h, w)  # the largest
        shape = f"up to {h}x{w}x{c}"
        need_disk = sum(s.height * s.width * c * len(plan.copies(split))
                        for split in SPLITS for s in plan.by_split[split])
    else:
        shape = f"{h}x{w}x{c}"
        need_disk = rows * h * w * c
    per_image = h * w * c
    batch = min(params.batch_size, max(1, params.batch_pixels // (h * w)), max(rows, 1))
    need_memory = batch * per_image * BATCH_BYTES_PER_PIXEL_BYTE
    memory = available_memory()
    if memory is not None and need_memory > memory:
        raise InputError(
            f"augment: a batch of {batch} images of {shape} needs about {_gib(need_memory)} of memory, "
            f"{_gib(memory)} is available; lower augment.batch_size, augment.batch_pixels or augment.image_size")
    disk = free_disk(out)
    if disk is not None and need_disk > disk:
        raise InputError(
            f"augment: {out}: the version holds {rows} images of {shape}, about {_gib(need_disk)}, "
            f"but its file system has {_gib(disk)} free; free space, or lower augment.copies "
            "or augment.image_size")
