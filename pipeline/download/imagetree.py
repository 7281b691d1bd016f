"""Write decoded dataset arrays as an ImageFolder tree: ``<split>/<class>/<n>.png``.

``n`` is the image's index within its official split file(s), zero-padded, so the
tree (and every sample id ingest derives from it) is the same on every run.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline.core.errors import DownloadError
from pipeline.core.progress import progress


def class_dir(name: str) -> str:
    """Directory name of a class: ``/`` (as in Fashion-MNIST's ``T-shirt/top``) becomes ``_``."""
    safe = name.replace("/", "_").replace("\\", "_").strip()
    if not safe or safe.startswith("."):
        raise DownloadError(f"class name {name!r} cannot be a directory name")
    return safe


def write_split(root: Path, split: str, class_names: list[str], images, labels, source: str) -> dict[str, int]:
    """Write ``images`` (uint8 ``(N, H, W)`` or ``(N, H, W, 3)``) with integer ``labels``.

    Returns the number of images written per class. ``source`` names the file the
    arrays came from, for errors.
    """
    import numpy as np
    from PIL import Image

    if len(images) != len(labels):
        raise DownloadError(f"{source}: {len(images)} images but {len(labels)} labels")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise DownloadError(f"{source}: label {int(labels.max())} out of range for "
                            f"{len(class_names)} classes")
    dirs = [class_dir(c) for c in class_names]
    if len(set(dirs)) != len(dirs):
        raise DownloadError(f"{source}: class names collide as directory names: {dirs}")
    for d in dirs:
        (root / split / d).mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(len(images))))

    def save(i: int) -> None:
        path = root / split / dirs[labels[i]] / f"{i:0{width}d}.png"
        Image.fromarray(np.ascontiguousarray(images[i])).save(path, compress_level=1)

    # Tens of thousands of tiny files: the time goes to file creation and zlib, both of
    # which release the GIL, so a few threads overlap them (3-6x on a 2-core machine).
    with ThreadPoolExecutor(max_workers=min(8, 2 * (os.cpu_count() or 1))) as pool:
        for _ in progress(pool.map(save, range(len(images)), chunksize=256), desc=f"{split} png",
                          total=len(images), unit="img"):
            pass
    return {c: int((labels == k).sum()) for k, c in enumerate(dirs)}
