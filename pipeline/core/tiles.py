"""Where the tiles of a large image lie: the grid ingest cuts (``ingest.tile``) and tiled
prediction can walk.

Semantics of SAHI's ``get_slice_bboxes`` and DeepForest's ``split_raster``: windows
``size`` apart minus ``overlap``, from the top-left corner; the last window of a row
(column) is shifted inwards to end at the image's right (bottom) edge, so every
tile is ``size`` x ``size`` whenever the image is at least that large, and no pixel
is left out. A side not larger than ``size`` is one window of the whole side, so an
image smaller than a tile is one window: the image itself. Pure integers, no imports.
"""

from __future__ import annotations

Window = tuple[int, int, int, int]  # (x, y, width, height) in pixels of the image


def starts(side: int, size: int, overlap: int) -> list[int]:
    """Offsets of the windows along one side of ``side`` pixels."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"tile size {size} and overlap {overlap}: need size > 0 and 0 <= overlap < size")
    if side <= size:
        return [0]
    out = list(range(0, side - size, size - overlap))
    return out + [side - size]


def windows(width: int, height: int, size: int, overlap: int) -> list[Window]:
    """The tiles of a ``width`` x ``height`` image, row by row (top to bottom, left to right)."""
    return [(x, y, min(size, width), min(size, height))
            for y in starts(height, size, overlap) for x in starts(width, size, overlap)]


def is_tiled(width: int, height: int, size: int) -> bool:
    """Whether an image is cut at all: one side larger than a tile."""
    return width > size or height > size


def tile_origins(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """``(y, x)`` of every tile's top-left corner, row by row: the same grid as
    ``windows``, in the order tiled prediction walks it."""
    if height < 1 or width < 1:
        raise ValueError(f"an image of {height}x{width} pixels has no tiles")
    return [(y, x) for x, y, _, _ in windows(width, height, tile, overlap)]
