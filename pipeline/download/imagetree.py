"""Write decoded dataset arrays as an ImageFolder tree: ``<split>/<class>/<n>.png``.

``n`` is the image's index within its official split file(s), zero-padded, so the
tree (and every sample id ingest derives from it) is the same on every run.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import DownloadError
from pipeline.progress import progress


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
    for i in progress(range(len(images)), desc=f"{split} png", total=len(images), unit="img"):
        path = root / split / dirs[labels[i]] / f"{i:0{width}d}.png"
        Image.fromarray(np.ascontiguousarray(images[i])).save(path, compress_level=1)
    return {c: int((labels == k).sum()) for k, c in enumerate(dirs)}
