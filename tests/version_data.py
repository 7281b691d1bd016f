"""Generated canonical datasets for the dataset-version, trace and preview tests.

The annotated dataset is written as Sample records with objects directly (the
VOC/labelme ingesters live on another branch): each image holds bright filled
rectangles on a dark background, annotated with their box and polygon, so a test
can check the transformed annotation still sits on the bright pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.record import Object, Sample, Source, save_dataset

COLOURS = {"square": (255, 64, 64), "bar": (64, 255, 64)}


def make_annotated(root: Path, n: int = 12, h: int = 48, w: int = 64) -> Path:
    """A canonical detection dataset of ``n`` RGB images, one or two objects each."""
    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(n):
        rng = np.random.default_rng(i)
        a = rng.integers(0, 30, size=(h, w, 3), dtype=np.uint8)
        objects = []
        for k, (label, colour) in enumerate(COLOURS.items()):
            if k == 1 and i % 2:
                continue
            bw, bh = (14, 14) if label == "square" else (24, 8)
            x0 = int(rng.integers(4, w - bw - 4))
            y0 = int(rng.integers(4, h - bh - 4))
            a[y0:y0 + bh, x0:x0 + bw] = colour
            poly = (x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh)
            objects.append(Object(label, (x0, y0, x0 + bw, y0 + bh), (tuple(map(float, poly)),)))
        name = f"img{i:03d}.png"
        Image.fromarray(a).save(root / "images" / name)
        samples.append(Sample(id=f"shapes/{name}", image=f"images/{name}", width=w, height=h, channels=3,
                              objects=tuple(objects), source=Source("labelme", f"{name}", root="src",
                                                                    annotation=f"img{i:03d}.json")))
    save_dataset(root, samples, list(COLOURS), [])
    return root


def digests(d: Path) -> dict[str, str]:
    """sha256 of every file under a version directory."""
    import hashlib

    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(d).rglob("*")) if p.is_file()}
