"""A labelme polygon set on a real photo: crops of scikit-image's ``coins`` (303x384,
grey, 24 coins on a tray), one PNG and one labelme JSON per crop.

The polygons come from a classical segmentation, not from a person: watershed on the
Sobel gradient from dark (tray) and bright (coin) markers, holes filled, regions under
``MIN_COIN`` pixels dropped (scikit-image's own coins example); each crop's instances
are the regions of the cropped label image, traced by ``measure.find_contours`` and
simplified by ``measure.approximate_polygon``. A coin cut by a crop's edge is the part
inside (a polygon along the edge), as an annotator would draw it; a part under
``min_part`` pixels is left out, as an annotator would.

The JSON is what labelme's ``LabelFile.save`` writes (labelme/label_file.py): ``version``,
``flags``, ``shapes`` [{label, points, group_id, description, shape_type, flags, mask}],
``imagePath`` relative to the JSON, ``imageData`` null, ``imageHeight``, ``imageWidth``.
Points are in the record's coordinates (pixel ``i`` spans ``[i, i + 1)``), as labelme's
canvas gives them.

Used by the segmentation end-to-end test and by ``benchmarks/segment_coins.py``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Iterable

import numpy as np

LABEL = "coin"
MIN_COIN = 200  # pixels: the segmentation's specks (one of 2 px) are not coins
TOLERANCE = 0.75  # approximate_polygon's tolerance in pixels
LABELME_VERSION = "5.5.0"


@functools.lru_cache(maxsize=1)
def coin_labels() -> np.ndarray:
    """(303, 384) int32: 0 the tray, 1..24 the coins, in scikit-image's scan order."""
    from scipy import ndimage as ndi
    from skimage import data, filters, measure, segmentation

    photo = data.coins()
    markers = np.zeros(photo.shape, np.uint8)
    markers[photo < 30], markers[photo > 150] = 1, 2
    coins = ndi.binary_fill_holes(segmentation.watershed(filters.sobel(photo), markers) == 2)
    labels = measure.label(coins)
    small = np.flatnonzero(np.bincount(labels.ravel()) < MIN_COIN)
    labels[np.isin(labels, small[small > 0])] = 0
    return measure.label(labels > 0).astype(np.int32)


def polygons(labels: np.ndarray, min_part: int) -> list[list[list[float]]]:
    """One polygon ([[x, y], ...], record coordinates) per labelled region of at least
    ``min_part`` pixels, in label order: the outer contour of each region."""
    from skimage import measure

    out = []
    for k in np.unique(labels[labels > 0]):
        region = labels == k
        if region.sum() < min_part:
            continue
        # Padded so a region touching the crop's edge closes along it; find_contours gives
        # (row, col) of pixel centres, the record's coordinates are +0.5 (and -1 for the pad).
        contours = measure.find_contours(np.pad(region, 1).astype(np.float32), 0.5)
        ring = max(contours, key=len)
        ring = measure.approximate_polygon(ring, TOLERANCE)[:-1]  # closed: the last repeats the first
        h, w = labels.shape
        out.append([[float(np.clip(c - 0.5, 0, w)), float(np.clip(r - 0.5, 0, h))] for r, c in ring])
    return out


def labelme_json(image_name: str, height: int, width: int, rings: Iterable[list[list[float]]]) -> dict:
    """A labelme file as ``LabelFile.save`` writes it (imageData null: the image is beside it)."""
    shapes = [{"label": LABEL, "points": ring, "group_id": None, "description": "", "shape_type": "polygon",
               "flags": {}, "mask": None} for ring in rings]
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_name,
            "imageData": None, "imageHeight": height, "imageWidth": width}


def windows(size: tuple[int, int], stride: tuple[int, int], area: tuple[int, int, int, int] | None = None):
    """(y0, x0, h, w) crops of ``size`` every ``stride`` over ``area`` (y0, x0, y1, x1; default
    the whole photo), the last row and column flush with the area's far edge."""
    y_lo, x_lo, y_hi, x_hi = area or (0, 0, *coin_labels().shape)
    h, w = size

    def starts(lo, hi, n, step):
        last = hi - n
        return sorted({*range(lo, last + 1, step), last})

    return [(y, x, h, w) for y in starts(y_lo, y_hi, h, stride[0]) for x in starts(x_lo, x_hi, w, stride[1])]


def write_coins(root: Path, crops: Iterable[tuple[int, int, int, int]], folder: str = "",
                min_part: int = 150, prefix: str = "coins") -> list[Path]:
    """Write each crop (y0, x0, h, w) of the coins photo as ``<folder>/<prefix>_<y0>_<x0>.png``
    with its labelme JSON beside it; returns the image paths."""
    from PIL import Image
    from skimage import data

    photo, labels = data.coins(), coin_labels()
    out_dir = Path(root) / folder
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for y0, x0, h, w in crops:
        name = f"{prefix}_{y0:03d}_{x0:03d}"
        Image.fromarray(photo[y0:y0 + h, x0:x0 + w]).save(out_dir / f"{name}.png")
        doc = labelme_json(f"{name}.png", h, w, polygons(labels[y0:y0 + h, x0:x0 + w], min_part))
        (out_dir / f"{name}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=2))
        paths.append(out_dir / f"{name}.png")
    return paths
